"""Users and their API keys.

Keys are ``rpl_`` + 40 random base32 characters (200 bits), shown once and stored as a
SHA-256 hash. A key authenticates as its user; admins see every user's resources.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from runplane.errors import RateLimited
from runplane.ids import new_id
from runplane.services.ratelimit import RateLimiter
from runplane.store.tables import api_keys, users

KEY_PREFIX = "rpl_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (through an API key)."""

    user_id: str
    is_admin: bool = False
    key_id: str | None = None


@dataclass(frozen=True)
class NewKey:
    id: str
    user_id: str
    name: str
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(20)


class UserService:
    """Creates users and keys, and resolves a presented key to a Principal."""

    # Keys are cached briefly so the hot path does not hit SQL on every request; a key
    # revoked from another process (the CLI) stops working within this many seconds.
    CACHE_TTL_S = 2.0

    def __init__(self, engine: Engine, failed_auth: RateLimiter | None = None) -> None:
        self._engine = engine
        # Valid keys only: caching misses would let a flood of bad keys evict everyone's.
        self._cache: dict[str, tuple[float, Principal]] = {}
        # Failed authentications per client address (None: unlimited), and the digests of
        # keys that were valid once: those are always looked up, so a flood of bad keys from
        # a user's own address (a NAT, a proxy) never locks that user out.
        self._failed_auth = failed_auth
        self._known: set[str] = set()

    def create_user(self, name: str, is_admin: bool = False) -> str:
        user_id = "user_" + new_id(24)
        with self._engine.begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first():
                raise ValueError(f"user {name!r} already exists")
            conn.execute(
                insert(users).values(id=user_id, name=name, is_admin=is_admin, created_at=time.time())
            )
        return user_id

    def find_user(self, name_or_id: str) -> dict | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users).where((users.c.name == name_or_id) | (users.c.id == name_or_id))
            ).first()
        return dict(row._mapping) if row else None

    def list_users(self) -> list[dict]:
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(users).order_by(users.c.created_at))]

    def has_admin(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(users.c.id).where(users.c.is_admin.is_(True))).first() is not None

    def create_key(self, user_id: str, name: str = "default") -> NewKey:
        secret = new_secret()
        key_id = new_id(12)
        with self._engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    user_id=user_id,
                    name=name,
                    key_hash=hash_key(secret),
                    prefix=secret[:8],
                    created_at=time.time(),
                )
            )
        return NewKey(key_id, user_id, name, secret)

    def list_keys(self, user_id: str | None = None) -> list[dict]:
        query = select(
            api_keys.c.id, api_keys.c.user_id, api_keys.c.name, api_keys.c.prefix,
            api_keys.c.created_at, api_keys.c.revoked_at,
        ).order_by(api_keys.c.created_at)
        if user_id:
            query = query.where(api_keys.c.user_id == user_id)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def revoke_key(self, key_id: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
        self._cache.clear()
        return bool(done)

    def authenticate(self, secret: str, client: str | None = None) -> Principal | None:
        """The principal a key belongs to, or None for unknown or revoked keys.

        ``client`` (the caller's address) counts failures: past ``failed_auth`` per address a
        key that is not cached is refused with ``RateLimited`` before the store is asked, so
        a flood of bad keys costs a hash and a dict lookup each, not a query.
        """
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit and now - hit[0] < self.CACHE_TTL_S:
            return hit[1]
        failed = self._failed_auth if client is not None else None
        if failed is not None and digest not in self._known:
            wait = failed.wait(client)
            if wait:
                raise RateLimited(wait, "too many failed authentications from this address")
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys.c.id, api_keys.c.user_id, users.c.is_admin)
                .join(users, users.c.id == api_keys.c.user_id)
                .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
            ).first()
        if row is None:
            self._cache.pop(digest, None)
            if failed is not None:
                failed.hit(client)
            return None
        principal = Principal(row.user_id, bool(row.is_admin), row.id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        if len(self._known) < 100_000:
            self._known.add(digest)
        self._cache[digest] = (now, principal)
        return principal

    def bootstrap_admin(self) -> NewKey | None:
        """On first start, create the admin user and return its key (to print once)."""
        if self.has_admin():
            return None
        user_id = self.create_user("admin", is_admin=True)
        return self.create_key(user_id, "bootstrap")
