"""Who may run code on the server's host: ``local:`` images are the operator's tool.

A ``local:/dir`` (or ``file:///dir``) image runs as a process on this host, so it is refused
for every user but admins and the users the operator names in ``[security]
local_image_users`` ("*": everyone), and, when ``local_image_roots`` is set, for a directory
outside those roots (symlinks resolved). Container images are not affected. Templates and
pods are checked on create and update by their owner (docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runplane.errors import Forbidden
from runplane.providers.base import ImageError
from runplane.providers.runtimes.process import local_image_path
from runplane.security_settings import SecuritySettings
from runplane.services.users import Principal

RULE = ("local: images run as processes on the server's host: only admins and the users named "
        "in the operator's [security] local_image_users may use them")


def is_local_image(image: str | None) -> bool:
    return bool(image) and image.startswith(("local:", "file://"))  # type: ignore[union-attr]


class LocalImagePolicy:
    """``check(principal, image)`` raises ``Forbidden`` (403, field ``imageName``) when the
    caller may not run ``image`` on the host. ``user_name(user_id)`` names a user, so the
    operator can list users by name."""

    def __init__(self, settings: SecuritySettings, user_name: Callable[[str], str | None]) -> None:
        self._users = set(settings.local_image_users)
        self._roots = [Path(os.path.realpath(r)) for r in settings.local_image_roots]
        self._user_name = user_name

    def allows_user(self, principal: Principal) -> bool:
        if principal.is_admin or "*" in self._users or principal.user_id in self._users:
            return True
        return bool(self._users) and self._user_name(principal.user_id) in self._users

    def check(self, principal: Principal, image: str | None) -> None:
        if not is_local_image(image):
            return
        assert image is not None
        if not self.allows_user(principal):
            raise Forbidden(f"imageName: {RULE}", "imageName")
        if self._roots:
            try:
                path = Path(os.path.realpath(local_image_path(image, "runplane", "")))
            except ImageError:  # not a path at all: the runtime check words that
                return
            if not any(path == root or path.is_relative_to(root) for root in self._roots):
                roots = ", ".join(str(r) for r in self._roots)
                raise Forbidden(f"imageName: local: images must lie under the operator's "
                                f"[security] local_image_roots ({roots})", "imageName")
