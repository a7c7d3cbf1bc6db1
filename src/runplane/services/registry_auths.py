"""Container registry credentials used to pull private images.

The password is stored in clear because the provider needs it to log in to the registry; it
is never answered by the API and never logged (the request model keeps it in a SecretStr).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from runplane.clock import Clock
from runplane.errors import Conflict, Invalid, NotFound
from runplane.ids import new_template_id
from runplane.providers.base import ImageError
from runplane.providers.runtimes.container.image import is_container_image, parse_reference
from runplane.schemas.registry import RegistryAuth, RegistryAuthCreate, RegistryAuthUpdate
from runplane.services.access import can_see, owned_by
from runplane.services.users import Principal
from runplane.store.tables import registry_auths, templates

log = logging.getLogger("runplane.services.registry_auths")


class RegistryAuthService:
    """Create, read and delete a user's registry credentials."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, principal: Principal, body: RegistryAuthCreate) -> RegistryAuth:
        """Store new credentials; the name is unique per user (409 otherwise)."""
        auth_id = new_template_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(registry_auths).values(
                        id=auth_id,
                        user_id=principal.user_id,
                        name=body.name,
                        username=body.username,
                        password=body.password.get_secret_value(),
                        created_at=self._clock.now(),
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"name: a container registry auth named {body.name!r} already exists", "name"
            ) from None
        return RegistryAuth(id=auth_id, name=body.name, userId=principal.user_id)

    def get(self, auth_id: str) -> RegistryAuth | None:
        """Internal lookup, no ownership check."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(registry_auths.c.id, registry_auths.c.name, registry_auths.c.user_id)
                .where(registry_auths.c.id == auth_id)
            ).first()
        return RegistryAuth(id=row.id, name=row.name, userId=row.user_id) if row else None

    def get_for(self, principal: Principal, auth_id: str) -> RegistryAuth:
        """The caller's credentials by id; 404 for missing and for other users' alike."""
        auth = self.get(auth_id)
        if auth is None or not can_see(principal, auth.userId):
            raise NotFound("container registry auth", auth_id)
        return auth

    def list_for(self, principal: Principal) -> list[RegistryAuth]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(registry_auths.c.id, registry_auths.c.name, registry_auths.c.user_id)
                .where(owned_by(principal, registry_auths))
                .order_by(registry_auths.c.created_at, registry_auths.c.id)
            ).all()
        return [RegistryAuth(id=r.id, name=r.name, userId=r.user_id) for r in rows]

    def update(self, principal: Principal, auth_id: str, body: RegistryAuthUpdate) -> RegistryAuth:
        """Replace the username and password of the caller's credentials; the name stays."""
        auth = self.get_for(principal, auth_id)
        with self._engine.begin() as conn:
            conn.execute(
                update(registry_auths).where(registry_auths.c.id == auth_id).values(
                    username=body.username, password=body.password.get_secret_value())
            )
        return auth

    def delete(self, principal: Principal, auth_id: str) -> None:
        """Delete; refused (409) while a template still pulls its image with it."""
        self.get_for(principal, auth_id)
        with self._engine.begin() as conn:
            users_of = conn.execute(
                select(func.count()).select_from(templates)
                .where(templates.c.registry_auth_id == auth_id)
            ).scalar_one()
            if users_of:
                raise Conflict(
                    f"container registry auth {auth_id} is used by {users_of} template(s); "
                    "change their containerRegistryAuthId first"
                )
            conn.execute(delete(registry_auths).where(registry_auths.c.id == auth_id))

    def credentials(self, auth_id: str) -> tuple[str, str] | None:
        """(username, password) for the provider pulling an image; never for the API."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(registry_auths.c.username, registry_auths.c.password)
                .where(registry_auths.c.id == auth_id)
            ).first()
        return (row.username, row.password) if row else None

    def bind(self, auth_id: str, image: str) -> None:
        """Bind the credentials to ``image``'s registry host on their first use; ``Invalid``
        when they are bound to another host already (they only ever go to one)."""
        host = registry_host(image)
        if host is None:
            return
        with self._engine.begin() as conn:
            bound = conn.execute(select(registry_auths.c.registry_host)
                                 .where(registry_auths.c.id == auth_id)).scalar()
            if bound is None:
                conn.execute(update(registry_auths).where(registry_auths.c.id == auth_id)
                             .values(registry_host=host))
            elif bound != host:
                raise Invalid(f"containerRegistryAuthId: these credentials are for the registry "
                              f"{bound}, not {host} (create others for {host})",
                              "containerRegistryAuthId")

    def credentials_for(self, auth_id: str, image: str) -> tuple[str, str] | None:
        """The credentials for pulling ``image``: None unless they are bound to its registry
        host (binding them now when they are not bound yet)."""
        try:
            self.bind(auth_id, image)
        except Invalid:
            log.warning("registry credentials %s not sent to %s: bound to another registry",
                        auth_id, registry_host(image))
            return None
        return self.credentials(auth_id)


def registry_host(image: str) -> str | None:
    """The registry host an image is pulled from (``docker.io`` for Docker Hub names), or None
    for what is no container image reference (``local:`` directories, bad references)."""
    if not is_container_image(image):
        return None
    try:
        return (parse_reference(image)["registry"] or "docker.io").lower()
    except ImageError:
        return None
