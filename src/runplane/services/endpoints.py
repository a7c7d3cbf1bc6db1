"""Serverless endpoints: settings, their template and volumes, and the version that tells
the controller to roll workers.

Rules (docs/control-plane.md): the template must be a serverless template of the endpoint's
owner (``endpoint_rules.usable_template``); volumes must be the owner's, in one of the endpoint's data centers, at most one per data
center; without ``dataCenterIds`` an endpoint may run in every data center, or only in its
volumes' data centers when it has volumes. Every change bumps ``version`` by one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from runplane.catalog.catalog import Catalog
from runplane.clock import Clock, iso
from runplane.errors import Invalid, NotFound
from runplane.ids import new_id
from runplane.schemas.endpoints import (
    QUEUE,
    SPEC_FIELDS,
    Endpoint,
    EndpointCreate,
    EndpointKind,
    EndpointUpdate,
)
from runplane.schemas.templates import Template
from runplane.services import endpoint_rules as rules
from runplane.services.access import can_see
from runplane.services.releases import ReleaseLog
from runplane.services.templates import TEMPLATE_COLUMNS, TemplateService, template_from_row
from runplane.services.users import Principal
from runplane.services.volumes import NetworkVolumeService
from runplane.store.tables import endpoint_volumes, endpoints, templates, users

# A job's execution timeout when neither it nor its endpoint sets one (RunPod's default).
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000


class EndpointService:
    """CRUD for endpoints plus the lookups other components build on."""

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        clock: Clock,
        templates: TemplateService,
        volumes: NetworkVolumeService,
        releases: ReleaseLog,
    ) -> None:
        self._engine = engine
        # Every version stored here is a release (REST v2's /releases).
        self._releases = releases
        self._catalog = catalog
        self._clock = clock
        self._templates = templates
        self._volumes = volumes
        # endpoint id -> owner; the job API asks this on every request. Entries are added on
        # create or first lookup and dropped on delete (owners never change).
        self._owners: dict[str, str] = {}
        # Every endpoint with its template, loaded once and kept in step by every write that
        # goes through this process (endpoint writes here, template writes via on_change).
        # Reads (GET, the controller's tick, includeWorkers) then cost no SQL; the store stays
        # the truth and is what a restart reloads. One server process owns the store.
        # Loaded now, not on the first request, so no request waits for 10,000 rows.
        self._cache: dict[str, Endpoint] | None = None
        self._endpoints()
        templates.on_change.append(self._template_changed)

    # -- reads -------------------------------------------------------------------------

    def get(self, endpoint_id: str) -> Endpoint | None:
        """Internal lookup with the template loaded; no ownership check."""
        return self._endpoints().get(endpoint_id)

    def get_for(self, principal: Principal, endpoint_id: str) -> Endpoint:
        """The caller's endpoint (any for an admin); 404 for missing and others' alike."""
        found = self.get(endpoint_id)
        if found is None or not can_see(principal, found.userId):
            raise NotFound("endpoint", endpoint_id)
        return found

    def list_for(self, principal: Principal) -> list[Endpoint]:
        """The caller's endpoints (everyone's for an admin), oldest first."""
        return [e for e in self.list_all() if can_see(principal, e.userId)]

    def list_all(self) -> list[Endpoint]:
        """Every endpoint of every user, oldest first (the controller's desired state)."""
        return list(self._endpoints().values())

    def owner_of(self, endpoint_id: str) -> str | None:
        """The user owning an endpoint, from memory; None if there is no such endpoint."""
        owner = self._owners.get(endpoint_id)
        if owner is None:
            endpoint = self.get(endpoint_id)
            if endpoint is not None:
                owner = self._owners[endpoint_id] = endpoint.userId
        return owner

    def execution_timeout_ms(self, endpoint_id: str) -> int:
        """The endpoint's ``executionTimeoutMs`` (10 minutes when unset), from memory: a
        change through /v1 applies to the jobs taken after it."""
        endpoint = self.get(endpoint_id)
        value = endpoint.executionTimeoutMs if endpoint is not None else None
        return value if isinstance(value, int) and value > 0 else DEFAULT_EXECUTION_TIMEOUT_MS

    # -- writes ------------------------------------------------------------------------

    def create(self, principal: Principal, body: EndpointCreate,
               kind: EndpointKind = QUEUE) -> Endpoint:
        """Validate against the catalog, the template and the volumes, then store. ``kind``
        (REST v2's ``type``; v1 has none) is fixed for the endpoint's life."""
        given = body.model_dump(exclude_unset=True)
        template = self.usable_template(body.templateId, principal.user_id)
        s: dict[str, Any] = body.model_dump()
        s["type"] = kind
        gpu = body.computeType == "GPU"
        if s["gpuTypeIds"] is None:
            s["gpuTypeIds"] = list(self._catalog.gpu_types) if gpu else []
        if s["cpuFlavorIds"] is None:
            s["cpuFlavorIds"] = [] if gpu else list(self._catalog.cpu_flavors)
        requested = rules.requested_volume_ids(given) or ("networkVolumeIds", [])
        volumes = self._volumes_for(principal.user_id, *requested)
        if s["dataCenterIds"] is None:
            # With volumes, workers must run where the data is.
            s["dataCenterIds"] = (
                [dc for _, dc in volumes] if volumes else list(self._catalog.default_data_centers)
            )
        s["networkVolumeIds"] = [volume_id for volume_id, _ in volumes]
        self._validate(s, requested[0], volumes)
        endpoint_id = new_id()
        with self._engine.begin() as conn:
            conn.execute(insert(endpoints).values(
                id=endpoint_id,
                user_id=principal.user_id,
                template_id=template.id,
                name=body.name or template.name,
                version=0,
                created_at=self._clock.now(),
                spec=_spec(s),
            ))
            _link_volumes(conn, endpoint_id, s["networkVolumeIds"])
        self._owners[endpoint_id] = principal.user_id
        created = self._reload(endpoint_id)
        self._releases.record(created, principal.user_id)
        return created

    def update(self, principal: Principal, endpoint_id: str, body: EndpointUpdate) -> Endpoint:
        """Apply the fields sent; any actual change bumps ``version`` by one."""
        current = self.get_for(principal, endpoint_id)
        given = body.given()
        s = current.model_dump(exclude={"template"}) | given
        if "templateId" in given and given["templateId"] != current.templateId:
            self.usable_template(given["templateId"], current.userId)
        requested = rules.requested_volume_ids(given)
        if requested is None:
            volumes = self._volumes_for(current.userId, "networkVolumeIds", current.networkVolumeIds)
            field = "dataCenterIds"
        else:
            volumes = self._volumes_for(current.userId, *requested)
            field = requested[0]
        s["networkVolumeIds"] = [volume_id for volume_id, _ in volumes]
        if s["computeType"] == "CPU":
            s["gpuTypeIds"] = s.get("gpuTypeIds") or []
        self._validate(s, field, volumes)
        before = current.model_dump(exclude={"template", "version"})
        after = {k: s[k] for k in before}
        if after == before:
            return current
        with self._engine.begin() as conn:
            conn.execute(
                update(endpoints).where(endpoints.c.id == endpoint_id).values(
                    template_id=s["templateId"],
                    name=s["name"],
                    version=endpoints.c.version + 1,
                    spec=_spec(s),
                )
            )
            if s["networkVolumeIds"] != current.networkVolumeIds:
                conn.execute(delete(endpoint_volumes).where(endpoint_volumes.c.endpoint_id == endpoint_id))
                _link_volumes(conn, endpoint_id, s["networkVolumeIds"])
        updated = self._reload(endpoint_id)
        self._releases.record(updated, principal.user_id)
        return updated

    def releases(self, principal: Principal, endpoint_id: str) -> list[dict[str, Any]]:
        """The caller's endpoint's releases, newest first (``ReleaseLog.history``)."""
        return self._releases.history(self.get_for(principal, endpoint_id))

    def delete(self, principal: Principal, endpoint_id: str) -> None:
        """Delete the endpoint (its volume links and worker rows go with it)."""
        self.get_for(principal, endpoint_id)
        with self._engine.begin() as conn:
            conn.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))
        self._owners.pop(endpoint_id, None)
        self._endpoints().pop(endpoint_id, None)

    # -- cache -------------------------------------------------------------------------

    def _endpoints(self) -> dict[str, Endpoint]:
        """The cache, loaded from the store on first use (insertion order = creation order)."""
        if self._cache is None:
            with self._engine.connect() as conn:
                rows = conn.execute(_select().order_by(endpoints.c.created_at, endpoints.c.id)).all()
            self._cache = {row.endpoint_id: _from_row(row) for row in rows}
        return self._cache

    def _load(self, endpoint_id: str) -> Endpoint | None:
        """Read one endpoint from the store and put it in the cache (after a write)."""
        with self._engine.connect() as conn:
            row = conn.execute(_select().where(endpoints.c.id == endpoint_id)).first()
        cache = self._endpoints()
        if row is None:
            cache.pop(endpoint_id, None)
            return None
        endpoint = cache[endpoint_id] = _from_row(row)
        return endpoint

    def _template_changed(self, template_id: str) -> None:
        """A template update bumped its endpoints' versions: re-read them."""
        if self._cache is None:
            return
        with self._engine.connect() as conn:
            rows = conn.execute(_select().where(endpoints.c.template_id == template_id)).all()
        for row in rows:
            endpoint = self._cache[row.endpoint_id] = _from_row(row)
            self._releases.record(endpoint, None)

    # -- helpers -----------------------------------------------------------------------

    def _validate(self, s: dict[str, Any], volume_field: str, volumes: list[tuple[str, str]]) -> None:
        rules.check_catalog_names(self._catalog, s)
        if s["computeType"] == "CPU":
            # GPU settings do not apply to CPU workers (spec: "ignored"); CPU ones are
            # likewise dropped for GPU endpoints once checked.
            s["gpuTypeIds"], s["gpuCount"] = [], 0
        else:
            s["cpuFlavorIds"] = []
        rules.check_consistency(s)
        rules.check_volume_placement(volume_field, volumes, s["dataCenterIds"])
        rules.apply_compute_type(self._catalog, s)

    def usable_template(self, template_id: str, owner_id: str) -> Template:
        """The template an endpoint of ``owner_id`` may run (``endpoint_rules.usable_template``,
        the one rule every surface goes through); Invalid naming ``templateId`` otherwise."""
        return rules.usable_template(self._templates.get(template_id), template_id, owner_id)

    def _volumes_for(self, owner_id: str, field: str, ids: list[str]) -> list[tuple[str, str]]:
        out = []
        for i, volume_id in enumerate(ids):
            volume = self._volumes.get(volume_id)
            if volume is None or volume.userId != owner_id:
                name = f"{field}[{i}]" if field == "networkVolumeIds" else field
                raise Invalid(f"{name}: no network volume {volume_id!r}", name)
            out.append((volume.id, volume.dataCenterId))
        return out

    def _reload(self, endpoint_id: str) -> Endpoint:
        endpoint = self._load(endpoint_id)
        assert endpoint is not None
        return endpoint


def _select():  # type: ignore[no-untyped-def]
    return (
        select(
            endpoints.c.id.label("endpoint_id"),
            endpoints.c.user_id.label("endpoint_user_id"),
            endpoints.c.template_id,
            endpoints.c.name.label("endpoint_name"),
            endpoints.c.version,
            endpoints.c.created_at,
            endpoints.c.spec.label("endpoint_spec"),
            *TEMPLATE_COLUMNS,
        )
        .join(templates, templates.c.id == endpoints.c.template_id)
        .join(users, users.c.id == templates.c.user_id)
    )


def _from_row(row: Row[Any]) -> Endpoint:
    # model_construct: the row was validated on the way in; this is the hot read path.
    return Endpoint.model_construct(
        id=row.endpoint_id,
        userId=row.endpoint_user_id,
        name=row.endpoint_name,
        templateId=row.template_id,
        version=row.version,
        createdAt=iso(row.created_at),
        template=template_from_row(row),
        **row.endpoint_spec,
    )


def _spec(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s[k] for k in SPEC_FIELDS}


def _link_volumes(conn: Connection, endpoint_id: str, volume_ids: list[str]) -> None:
    if volume_ids:
        conn.execute(
            insert(endpoint_volumes),
            [{"endpoint_id": endpoint_id, "network_volume_id": v} for v in volume_ids],
        )
