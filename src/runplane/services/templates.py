"""Templates: the image, command, environment and disks a worker or pod runs with.

Visibility: a user sees their own templates; ``includePublicTemplates`` adds other users'
public templates and ``includeRunpodTemplates`` adds the operator's (public templates owned
by an admin, answered with ``isRunpod: true``). A template is "endpoint-bound" while an
endpoint uses it; plain listings leave those out unless ``includeEndpointBoundTemplates``.
Updating a template bumps the version of every endpoint using it (a rolling release).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from runplane.clock import Clock
from runplane.errors import Conflict, Invalid, NotFound
from runplane.ids import new_template_id
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate
from runplane.services.access import can_see
from runplane.services.host_access import LocalImagePolicy
from runplane.services.registry_auths import RegistryAuthService
from runplane.services.users import Principal
from runplane.store.tables import endpoints, templates, users

# Columns of the row that are not in the JSON spec.
_COLUMN_FIELDS = ("id", "name", "isPublic", "containerRegistryAuthId")

TEMPLATE_COLUMNS = (
    templates.c.id, templates.c.user_id, templates.c.name, templates.c.is_public,
    templates.c.registry_auth_id, templates.c.spec, users.c.is_admin.label("owner_is_admin"),
)


def template_from_row(row: Row[Any]) -> Template:
    """Build the model from a row selected with TEMPLATE_COLUMNS (possibly in a join)."""
    return Template.model_construct(
        id=row.id,
        userId=row.user_id,
        name=row.name,
        isPublic=bool(row.is_public),
        isRunpod=bool(row.is_public and row.owner_is_admin),
        containerRegistryAuthId=row.registry_auth_id or "",
        earned=0,
        runtimeInMin=0,
        **row.spec,
    )


class TemplateService:
    """CRUD for templates with the reference rules above."""

    def __init__(self, engine: Engine, clock: Clock, registry_auths: RegistryAuthService,
                 host_access: LocalImagePolicy) -> None:
        self._engine = engine
        self._clock = clock
        self._registry_auths = registry_auths
        self._host_access = host_access
        # Called with a template id after it changed (endpoint caches listen).
        self.on_change: list[Callable[[str], None]] = []

    # -- reads -------------------------------------------------------------------------

    def get(self, template_id: str) -> Template | None:
        """Internal lookup, no ownership check (the controller reads endpoint templates)."""
        with self._engine.connect() as conn:
            row = conn.execute(_select().where(templates.c.id == template_id)).first()
        return template_from_row(row) if row else None

    def get_for(
        self,
        principal: Principal,
        template_id: str,
        include_public: bool = False,
        include_runpod: bool = False,
    ) -> Template:
        """A template the caller may see (own, or public when asked for); 404 otherwise."""
        found = self.get(template_id)
        if found is None or not (
            can_see(principal, found.userId)
            or (found.isPublic and not found.isRunpod and include_public)
            or (found.isRunpod and include_runpod)
        ):
            raise NotFound("template", template_id)
        return found if can_see(principal, found.userId) else redacted(found)

    def list_for(
        self,
        principal: Principal,
        include_endpoint_bound: bool = False,
        include_public: bool = False,
        include_runpod: bool = False,
    ) -> list[Template]:
        """The caller's templates (all users' for an admin), plus what the flags add."""
        mine = templates.c.user_id == principal.user_id
        if principal.is_admin:
            mine = templates.c.id.is_not(None)
        if not include_endpoint_bound:
            mine = and_(mine, ~exists().where(endpoints.c.template_id == templates.c.id))
        clauses = [mine]
        if include_public:
            clauses.append(and_(templates.c.is_public.is_(True), users.c.is_admin.is_(False)))
        if include_runpod:
            clauses.append(and_(templates.c.is_public.is_(True), users.c.is_admin.is_(True)))
        with self._engine.connect() as conn:
            rows = conn.execute(
                _select().where(or_(*clauses)).order_by(templates.c.created_at, templates.c.id)
            ).all()
        found = [template_from_row(r) for r in rows]
        return [t if can_see(principal, t.userId) else redacted(t) for t in found]

    def endpoints_using(self, conn: Connection, template_id: str) -> int:
        return conn.execute(
            select(func.count()).select_from(endpoints).where(endpoints.c.template_id == template_id)
        ).scalar_one()

    def endpoint_count(self, template_id: str) -> int:
        """How many endpoints run the template."""
        with self._engine.connect() as conn:
            return self.endpoints_using(conn, template_id)

    # -- writes ------------------------------------------------------------------------

    def create(self, principal: Principal, body: TemplateCreate) -> Template:
        """Store a new template; its name is unique per user (409)."""
        values = body.model_dump()
        self._host_access.check(principal, body.imageName)
        self._check_registry_auth(principal, values.get("containerRegistryAuthId"))
        if values.get("containerRegistryAuthId"):
            self._registry_auths.bind(values["containerRegistryAuthId"], body.imageName)
        template_id = new_template_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(templates).values(
                    id=template_id,
                    user_id=principal.user_id,
                    created_at=self._clock.now(),
                    **_columns(values),
                ))
        except IntegrityError:
            raise _name_taken(body.name) from None
        created = self.get(template_id)
        assert created is not None
        return created

    def update(self, principal: Principal, template_id: str, body: TemplateUpdate) -> Template:
        """Apply the fields sent; endpoints using the template get a new version."""
        current = self.get_for(principal, template_id)
        changes = body.given()
        if "imageName" in changes:
            self._host_access.check(principal, changes["imageName"])
        if "containerRegistryAuthId" in changes:
            changes["containerRegistryAuthId"] = changes["containerRegistryAuthId"] or ""
            self._check_registry_auth(principal, changes["containerRegistryAuthId"], current.userId)
        merged = current.model_dump() | changes
        if merged.get("containerRegistryAuthId") and (
                "imageName" in changes or "containerRegistryAuthId" in changes):
            self._registry_auths.bind(merged["containerRegistryAuthId"], merged["imageName"])
        if merged == current.model_dump():
            return current
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(templates).where(templates.c.id == template_id).values(**_columns(merged))
                )
                # A changed template is a new release of every endpoint running it.
                conn.execute(
                    update(endpoints)
                    .where(endpoints.c.template_id == template_id)
                    .values(version=endpoints.c.version + 1)
                )
        except IntegrityError:
            raise _name_taken(merged["name"]) from None
        for listener in self.on_change:
            listener(template_id)
        updated = self.get(template_id)
        assert updated is not None
        return updated

    def delete(self, principal: Principal, template_id: str) -> None:
        """Delete; refused (409) while an endpoint uses the template."""
        self.get_for(principal, template_id)
        with self._engine.begin() as conn:
            in_use = self.endpoints_using(conn, template_id)
            if in_use:
                raise Conflict(
                    f"template {template_id} is used by {in_use} endpoint(s); delete them or "
                    "point them at another template first"
                )
            conn.execute(delete(templates).where(templates.c.id == template_id))
        for listener in self.on_change:
            listener(template_id)

    def _check_registry_auth(
        self, principal: Principal, auth_id: str | None, owner_id: str | None = None
    ) -> None:
        if not auth_id:
            return
        auth = self._registry_auths.get(auth_id)
        # The template owner's own credentials only (an admin editing keeps the owner's).
        if auth is None or auth.userId != (owner_id or principal.user_id):
            raise Invalid(
                f"containerRegistryAuthId: no container registry auth {auth_id!r}",
                "containerRegistryAuthId",
            )


def redacted(template: Template) -> Template:
    """Another user's public template as its readers see it: never its owner's registry
    credentials nor its environment's values (secrets often live there)."""
    return template.model_copy(update={
        "containerRegistryAuthId": "", "env": {k: "" for k in template.env}})


def _select():  # type: ignore[no-untyped-def]
    return select(*TEMPLATE_COLUMNS).join(users, users.c.id == templates.c.user_id)


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Split a full template dict into table columns and the JSON spec."""
    spec = {
        k: v for k, v in values.items()
        if k not in _COLUMN_FIELDS and k not in ("userId", "isRunpod", "earned", "runtimeInMin")
    }
    return {
        "name": values["name"],
        "is_public": values["isPublic"],
        "registry_auth_id": values.get("containerRegistryAuthId") or None,
        "spec": spec,
    }


def _name_taken(name: str) -> Conflict:
    return Conflict(f"name: you already have a template named {name!r}", "name")
