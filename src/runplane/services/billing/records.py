"""Usage records and the /v1/billing reports built from them.

Writers (the controller for workers and pods, NetworkVolumeService for volumes) call
``record_usage`` for each billed interval; a record may stay open (``end_at=None``) and
accrue at ``usd_per_hr`` until ``close_open`` ends it. Reports aggregate per UTC bucket.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, and_, insert, or_, select, update

from runplane.clock import Clock
from runplane.schemas.billing import BillingQuery
from runplane.services.billing.buckets import Usage, aggregate
from runplane.services.users import Principal
from runplane.store.tables import usage_records

KINDS = ("endpoint", "pod", "networkvolume")
# Grouping names of the spec -> columns of usage_records.
_GROUP_COLUMNS = {"endpointId": "resource_id", "podId": "pod_id", "gpuTypeId": "gpu_type_id"}


class BillingService:
    """Writes usage records; answers the three billing reports."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def record_usage(
        self,
        *,
        user_id: str,
        kind: str,
        resource_id: str,
        start_at: float,
        end_at: float | None = None,
        usd_per_hr: float = 0.0,
        amount_usd: float | None = None,
        time_billed_ms: int | None = None,
        pod_id: str | None = None,
        gpu_type_id: str | None = None,
        data_center_id: str | None = None,
        template_id: str | None = None,
        image_name: str | None = None,
        disk_gb: int = 0,
        conn: Connection | None = None,
    ) -> int:
        """Store one billed interval and return its id.

        A closed interval (``end_at`` given) is priced now: ``amount_usd`` if given, else
        ``usd_per_hr`` over its length; ``time_billed_ms`` defaults to its length. An open
        one accrues at ``usd_per_hr`` until ``close_open``. Pass ``conn`` to write inside
        the caller's transaction.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if end_at is not None:
            if end_at < start_at:
                raise ValueError("end_at is before start_at")
            if amount_usd is None:
                amount_usd = usd_per_hr * (end_at - start_at) / 3600
            if time_billed_ms is None:
                time_billed_ms = int(round((end_at - start_at) * 1000))
        values = dict(
            user_id=user_id, kind=kind, resource_id=resource_id, pod_id=pod_id,
            gpu_type_id=gpu_type_id, data_center_id=data_center_id, template_id=template_id,
            image_name=image_name, start_at=start_at, end_at=end_at, usd_per_hr=usd_per_hr,
            amount_usd=amount_usd, time_billed_ms=time_billed_ms, disk_gb=disk_gb,
        )
        if conn is not None:
            return _inserted_id(conn.execute(insert(usage_records).values(**values)))
        with self._engine.begin() as own:
            return _inserted_id(own.execute(insert(usage_records).values(**values)))

    def close_open(
        self, kind: str, resource_id: str, end_at: float, conn: Connection | None = None
    ) -> int:
        """End every open interval of a resource at ``end_at``, pricing it; returns how many."""
        def run(c: Connection) -> int:
            rows = c.execute(
                select(usage_records.c.id, usage_records.c.start_at, usage_records.c.usd_per_hr)
                .where(usage_records.c.kind == kind, usage_records.c.resource_id == resource_id,
                       usage_records.c.end_at.is_(None))
            ).all()
            for r in rows:
                end = max(end_at, r.start_at)
                c.execute(update(usage_records).where(usage_records.c.id == r.id).values(
                    end_at=end,
                    amount_usd=r.usd_per_hr * (end - r.start_at) / 3600,
                    time_billed_ms=int(round((end - r.start_at) * 1000)),
                ))
            return len(rows)

        if conn is not None:
            return run(conn)
        with self._engine.begin() as own:
            return run(own)

    # -- reports -----------------------------------------------------------------------

    def endpoint_report(self, principal: Principal, q: BillingQuery) -> list[dict[str, Any]]:
        """GET /v1/billing/endpoints: workers' cost per bucket, grouped as asked."""
        clauses = []
        if q.resource_id:
            clauses.append(usage_records.c.resource_id == q.resource_id)
        if q.gpu_type_ids:
            clauses.append(usage_records.c.gpu_type_id.in_(q.gpu_type_ids))
        if q.data_center_ids:
            clauses.append(usage_records.c.data_center_id.in_(q.data_center_ids))
        if q.image_name:
            clauses.append(usage_records.c.image_name == q.image_name)
        if q.template_id:
            clauses.append(usage_records.c.template_id == q.template_id)
        return self._report(principal, "endpoint", q, clauses, q.grouping or "endpointId")

    def pod_report(self, principal: Principal, q: BillingQuery) -> list[dict[str, Any]]:
        """GET /v1/billing/pods: pods' cost per bucket, grouped by GPU type or pod."""
        clauses = []
        if q.pod_id:
            clauses.append(usage_records.c.resource_id == q.pod_id)
        if q.gpu_type_ids:
            clauses.append(usage_records.c.gpu_type_id.in_(q.gpu_type_ids))
        return self._report(principal, "pod", q, clauses, q.grouping or "gpuTypeId")

    def network_volume_report(self, principal: Principal, q: BillingQuery) -> list[dict[str, Any]]:
        """GET /v1/billing/networkvolumes: storage cost per bucket (spec's record shape)."""
        records = self._report(principal, "networkvolume", q, [], None)
        for record in records:
            del record["timeBilledMs"]
            # runplane has one storage class; the high-performance tier is always empty.
            record["highPerformanceStorageAmount"] = 0.0
            record["highPerformanceStorageDiskSpaceBilledGb"] = 0
        return records

    def usages(self, principal: Principal, kind: str, start: float, end: float,
               resource_id: str | None = None) -> list[Usage]:
        """The caller's (everyone's for an admin) usage of ``kind`` overlapping [start, end),
        each grouped by ``<resource id>\t<gpu|cpu>`` (REST v2's breakdowns)."""
        conditions = [
            usage_records.c.kind == kind,
            usage_records.c.start_at < end,
            or_(usage_records.c.end_at.is_(None), usage_records.c.end_at >= start),
        ]
        if resource_id:
            conditions.append(usage_records.c.resource_id == resource_id)
        if not principal.is_admin:
            conditions.append(usage_records.c.user_id == principal.user_id)
        with self._engine.connect() as conn:
            rows = conn.execute(select(usage_records).where(and_(*conditions))).all()
        return [Usage(resource_id=r.resource_id, start=r.start_at, end=r.end_at,
                      usd_per_hr=r.usd_per_hr, amount=r.amount_usd,
                      time_billed_ms=r.time_billed_ms, disk_gb=r.disk_gb,
                      group=f"{r.resource_id}\t{'gpu' if r.gpu_type_id else 'cpu'}")
                for r in rows]

    def _report(
        self, principal: Principal, kind: str, q: BillingQuery, clauses: list[Any],
        grouping: str | None,
    ) -> list[dict[str, Any]]:
        conditions = [
            usage_records.c.kind == kind,
            usage_records.c.start_at < q.end,
            or_(usage_records.c.end_at.is_(None), usage_records.c.end_at >= q.start),
            *clauses,
        ]
        if not principal.is_admin:
            conditions.append(usage_records.c.user_id == principal.user_id)
        group_column = _GROUP_COLUMNS[grouping] if grouping else None
        with self._engine.connect() as conn:
            rows = conn.execute(select(usage_records).where(and_(*conditions))).all()
        usages = [
            Usage(
                resource_id=r.resource_id, start=r.start_at, end=r.end_at,
                usd_per_hr=r.usd_per_hr, amount=r.amount_usd, time_billed_ms=r.time_billed_ms,
                disk_gb=r.disk_gb, group=getattr(r, group_column) if group_column else None,
            )
            for r in rows
        ]
        return aggregate(usages, q.start, q.end, q.bucket_size, self._clock.now(), grouping)


def _inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an insert wrote."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
