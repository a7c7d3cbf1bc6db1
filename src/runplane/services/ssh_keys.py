"""A user's SSH public keys (REST v2 ``/v2/account/ssh-keys``).

Stored per user and replaced as a whole, as RunPod's PUT does. They are what a pod's SSH
server would authorize; runplane's pods do not run one yet (docs/migration.md), so today the
keys are kept and answered, and handed to nothing.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select

from runplane.clock import Clock
from runplane.errors import Invalid
from runplane.services.users import Principal
from runplane.store.tables import ssh_keys

# More keys than anyone authorizes, few enough that a body stays small.
MAX_KEYS = 100
_KINDS = ("ssh-", "ecdsa-", "sk-")


def normalized(keys: list[str]) -> list[str]:
    """The keys trimmed, without repeats, in the order given; Invalid for one that is not
    ``<type> <base64> [comment]`` or when there are too many."""
    out: list[str] = []
    for i, key in enumerate(keys):
        key = key.strip()
        parts = key.split()
        if len(parts) < 2 or not parts[0].startswith(_KINDS) or "\n" in key or "\r" in key:
            raise Invalid(f"keys[{i}]: not an SSH public key ('ssh-ed25519 AAAA... comment')",
                          f"keys[{i}]")
        if key not in out:
            out.append(key)
    if len(out) > MAX_KEYS:
        raise Invalid(f"keys: at most {MAX_KEYS} keys", "keys")
    return out


class SshKeyService:
    """Reads and replaces a user's SSH keys."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def keys_of(self, principal: Principal) -> list[str]:
        """The caller's keys (an empty list before the first PUT)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(ssh_keys.c.public_keys)
                               .where(ssh_keys.c.user_id == principal.user_id)).first()
        return list(row.public_keys) if row else []

    def replace(self, principal: Principal, keys: list[str]) -> list[str]:
        """Make ``keys`` the caller's whole set (an empty list removes them all)."""
        keys = normalized(keys)
        with self._engine.begin() as conn:
            conn.execute(delete(ssh_keys).where(ssh_keys.c.user_id == principal.user_id))
            conn.execute(insert(ssh_keys).values(user_id=principal.user_id, public_keys=keys,
                                                 updated_at=self._clock.now()))
        return keys
