"""Releases: every saved configuration of an endpoint, and what changed in each.

Each version an endpoint is stored at (its creation, every change through /v1 or /v2, every
change of its template) is one release. A release keeps a snapshot of the endpoint's
settings and its template's container settings at that version; its diff is the difference
to the release before, in RunPod's field names: top-level (``workersMax``, ``gpuTypeIds``)
or template-scoped (``template.imageName``, ``template.env``), as REST v2's
``ReleaseDiffEntry`` describes. Endpoints stored before releases existed get their current
version recorded the first time their releases are read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from runplane.clock import Clock, iso
from runplane.ids import new_id
from runplane.schemas.endpoints import SPEC_FIELDS, Endpoint
from runplane.store.tables import endpoint_releases

# The template settings a worker runs with (what a release of its endpoint changes).
TEMPLATE_FIELDS = (
    "imageName", "dockerEntrypoint", "dockerStartCmd", "env", "ports", "containerDiskInGb",
    "containerRegistryAuthId", "volumeInGb", "volumeMountPath",
)


def snapshot_of(endpoint: Endpoint) -> dict[str, Any]:
    """What a release of ``endpoint`` keeps: its settings and its template's."""
    body = endpoint.model_dump(include={"name", "templateId", *SPEC_FIELDS})
    template = endpoint.template.model_dump() if endpoint.template is not None else {}
    for name in TEMPLATE_FIELDS:
        body[f"template.{name}"] = template.get(name)
    return body


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """``{field, old, new}`` for every field that differs (all of them for the first
    release, from null)."""
    before = before or {}
    fields = list(after) + [k for k in before if k not in after]
    return [{"field": k, "old": before.get(k), "new": after.get(k)}
            for k in fields if before.get(k) != after.get(k)]


class ReleaseLog:
    """Writes a release per stored endpoint version and reads an endpoint's history."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, endpoint: Endpoint, user_id: str | None) -> None:
        """Keep ``endpoint``'s configuration as the release of its version (once: a version
        already recorded stays as it was first saved)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(endpoint_releases).values(
                    id=new_id(), endpoint_id=endpoint.id, version=endpoint.version,
                    created_at=self._clock.now(), user_id=user_id,
                    snapshot=snapshot_of(endpoint)))
        except IntegrityError:
            pass  # that version is recorded already (or the endpoint was just deleted)

    def history(self, endpoint: Endpoint) -> list[dict[str, Any]]:
        """The endpoint's releases, newest first: ``{id, version, createdAt,
        createdByUserId, diff}``."""
        rows = self._rows(endpoint.id)
        if not rows or rows[-1].version != endpoint.version:
            self.record(endpoint, None)
            rows = self._rows(endpoint.id)
        out: list[dict[str, Any]] = []
        previous: dict[str, Any] | None = None
        for row in rows:
            out.append({"id": row.id, "version": row.version, "createdAt": iso(row.created_at),
                        "createdByUserId": row.user_id, "diff": diff(previous, row.snapshot)})
            previous = row.snapshot
        out.reverse()
        return out

    def _rows(self, endpoint_id: str) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(
                select(endpoint_releases).where(endpoint_releases.c.endpoint_id == endpoint_id)
                .order_by(endpoint_releases.c.version)).all())
