"""The store side of batch jobs: the ``batches`` and ``batch_requests`` rows.

Reads run here, on the caller's thread (small indexed queries); writes are statements for the
job plane's group-commit writer, so a batch's changes commit with (and in order with) the
jobs they concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update

from runplane.broker.broker import new_job_id
from runplane.broker.models import FINAL_STATES, IN_QUEUE
from runplane.broker.writer import Op
from runplane.store.tables import batch_requests, batches

# A request's end, copied from its job.
FINISH_REQUEST = update(batch_requests).where(batch_requests.c.id == bindparam("_id")).values(
    status=bindparam("status"), output=bindparam("output"), error=bindparam("error"),
    started_at=bindparam("started_at"), completed_at=bindparam("completed_at"))
# A batch's columns: ``SET_BATCH.values(...)`` with ``{"_id": batch_id}``.
SET_BATCH = update(batches).where(batches.c.id == bindparam("_id"))


def insert_batch(row: dict[str, Any]) -> Op:
    return (insert(batches), row)


def insert_requests(batch_id: str, first_seq: int, requests: Sequence[Any]) -> list[Op]:
    """Rows for ``requests`` (``NewRequest``s) numbered from ``first_seq``, each with a new
    id: the id of the job it will run as."""
    stmt = insert(batch_requests)
    return [(stmt, {"id": new_job_id(), "batch_id": batch_id, "seq": first_seq + i,
                    "payload": r.payload, "ttl_ms": r.ttl_ms,
                    "execution_timeout_ms": r.execution_timeout_ms, "webhook": r.webhook,
                    "status": IN_QUEUE})
            for i, r in enumerate(requests)]


def delete_request(request_id: str) -> Op:
    return (batch_requests.delete().where(batch_requests.c.id == request_id), None)


def set_requests(batch_id: str, status: str) -> Op:
    return (update(batch_requests).where(batch_requests.c.batch_id == batch_id)
            .values(status=status), None)


class BatchRows:
    """Reads of the batch tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def batch(self, batch_id: str) -> Any:
        """The batch's row, or None."""
        with self._engine.connect() as conn:
            return conn.execute(select(batches).where(batches.c.id == batch_id)).first()

    def page(self, endpoint_id: str, offset: int, limit: int) -> tuple[list[Any], int]:
        """The endpoint's batch rows, newest first, and how many it has."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(batches).where(batches.c.endpoint_id == endpoint_id)
                                .order_by(batches.c.created_at.desc(), batches.c.id.desc())
                                .offset(offset).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(batches).where(
                batches.c.endpoint_id == endpoint_id)).scalar_one()
        return list(rows), total

    def drafts(self, endpoint_id: str) -> int:
        with self._engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(batches).where(
                batches.c.endpoint_id == endpoint_id, batches.c.status == "DRAFT")).scalar_one()

    def requests(self, batch_id: str, offset: int = 0, limit: int | None = None) -> list[Any]:
        """The batch's request rows in the order they were added."""
        query = select(batch_requests).where(batch_requests.c.batch_id == batch_id) \
            .order_by(batch_requests.c.seq).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return list(conn.execute(query).all())

    def has_request(self, batch_id: str, request_id: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(batch_requests.c.id).where(
                batch_requests.c.id == request_id,
                batch_requests.c.batch_id == batch_id)).first() is not None

    def status_counts(self, batch_id: str) -> dict[str, int]:
        """The batch's requests by the status their rows have."""
        with self._engine.connect() as conn:
            return dict(conn.execute(
                select(batch_requests.c.status, func.count())
                .where(batch_requests.c.batch_id == batch_id)
                .group_by(batch_requests.c.status)).all())

    def count(self, batch_id: str) -> int:
        with self._engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(batch_requests).where(
                batch_requests.c.batch_id == batch_id)).scalar_one()

    def next_seq(self, batch_id: str) -> int:
        with self._engine.connect() as conn:
            top = conn.execute(select(func.max(batch_requests.c.seq)).where(
                batch_requests.c.batch_id == batch_id)).scalar()
        return 0 if top is None else top + 1

    def unfinished(self) -> list[Any]:
        """The requests of FINALIZED batches that have not ended, with their batch's
        ``batch_id``, ``endpoint_id`` and ``cancel_requested_at`` (start-up)."""
        with self._engine.connect() as conn:
            return list(conn.execute(
                select(batch_requests.c.id, batches.c.id.label("batch_id"),
                       batches.c.endpoint_id, batches.c.cancel_requested_at)
                .join(batches, batches.c.id == batch_requests.c.batch_id)
                .where(batches.c.status == "FINALIZED",
                       batch_requests.c.status.not_in(tuple(FINAL_STATES)))).all())
