"""The unprivileged user worker and pod processes run as, when the server runs as root.

A ``local:`` worker or pod is a process on the host; run as root it could read the store
(registry passwords, every job's input) and everything else. With ``[security] worker_user``
(default ``runplane-worker``, created by ``scripts/setup_worker_user.sh``) a root server
starts them through util-linux ``setpriv``, which drops to that user's uid and gid with no
supplementary groups and no way back (``--no-new-privs``), in that user's home. The
supervisor shell stays the server's (it writes the exit code beside the log, in the private
data directory the worker cannot read). A server that is not root runs them as itself.

A configured user that does not exist refuses the start (fail closed): running users' code as
root because a set-up step was skipped is never the fallback.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass

from runplane.providers.base import ImageError


@dataclass(frozen=True)
class RunAs:
    """Who a process runs as: a user's name, ids and home."""

    name: str
    uid: int
    gid: int
    home: str

    def argv(self, setpriv: str) -> list[str]:
        """The prefix that drops to this user before exec'ing the command."""
        return [setpriv, "--reuid", str(self.uid), "--regid", str(self.gid), "--clear-groups",
                "--no-new-privs", "--"]

    def env(self) -> dict[str, str]:
        """The identity variables a process of this user expects."""
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def run_as(user: str, euid: int | None = None) -> RunAs | None:
    """Whom to run workers as: None (the server's own user) unless the server is root and
    ``user`` is set; ``ImageError`` when that user is missing or root itself."""
    if not user or (os.geteuid() if euid is None else euid) != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ImageError(
            f"the worker user {user!r} does not exist: create it with "
            "scripts/setup_worker_user.sh, or name another in [security] worker_user "
            "(workers never run as root)") from None
    if entry.pw_uid == 0:
        raise ImageError(f"the worker user {user!r} is root: [security] worker_user must be "
                         "an unprivileged user")
    return RunAs(user, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def setpriv_path() -> str:
    """util-linux ``setpriv``, needed to drop privileges; ``ImageError`` without it."""
    path = shutil.which("setpriv")
    if path is None:
        raise ImageError("running workers as an unprivileged user needs util-linux setpriv")
    return path
