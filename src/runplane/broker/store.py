"""The broker's SQL: prebuilt statements (so the writer can batch them) and row mapping.

The statements the job hot path writes for every job (insert, take, finish, delete) and the
worker heartbeat are :class:`Hot`: besides the Core statement they carry their SQLite text,
which the writer runs through the DB-API's ``executemany`` (a prepared statement, no
SQLAlchemy compilation or bind processing per row). Any other database runs the Core
statement. Both take the same parameter dicts.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, bindparam, delete, func, insert, null, select, update

from runplane.broker.models import (
    FINAL_STATES,
    IN_PROGRESS,
    IN_QUEUE,
    Job,
    Worker,
)
from runplane.store.tables import job_chunks, jobs, workers
from runplane.worker_state import WorkerState


class Hot:
    """A Core statement plus the same statement as SQLite text with ``?`` placeholders for the
    parameters ``order`` names; ``json`` names the JSON columns (encoded as the engine's JSON
    serializer does: orjson, None as ``null``). ``key`` is the parameter naming the row."""

    __slots__ = ("_get", "_json", "core", "key", "sql")

    def __init__(self, core: Any, sql: str, order: tuple[str, ...], json: tuple[str, ...] = (),
                 key: str = "_id") -> None:
        self.core = core
        self.sql = sql
        self.key = key
        self._get = itemgetter(*order) if len(order) > 1 else (lambda p, _n=order[0]: (p[_n],))
        self._json = tuple(order.index(name) for name in json)

    def rows(self, params: list[dict[str, Any]]) -> list[Any]:
        """The DB-API rows for ``executemany``, in placeholder order."""
        get = self._get
        if not self._json:
            return [get(p) for p in params]
        out = []
        for p in params:
            row = list(get(p))
            for i in self._json:
                row[i] = orjson.dumps(row[i]).decode()
            out.append(row)
        return out


# -- jobs ----------------------------------------------------------------------------------


def _update_job(**values: Any) -> Any:
    """``UPDATE jobs SET ... WHERE id = :_id``."""
    return update(jobs).where(jobs.c.id == bindparam("_id")).values(**values)


def _update_worker(**values: Any) -> Any:
    """``UPDATE workers SET ... WHERE id = :_id``."""
    return update(workers).where(workers.c.id == bindparam("_id")).values(**values)


_JOB_COLUMNS = (
    "id", "endpoint_id", "user_id", "status", "payload", "sync", "low_priority",
    "execution_timeout_ms", "webhook", "created_at", "expires_at", "retries", "stream_delivered",
    "idempotency_key",
)
INSERT_JOB = Hot(
    insert(jobs),
    f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({', '.join('?' * len(_JOB_COLUMNS))})",
    _JOB_COLUMNS, json=("payload",), key="id",
)

TAKE_JOB = Hot(
    _update_job(
        status=IN_PROGRESS,
        worker_id=bindparam("worker_id"),
        started_at=bindparam("started_at"),
        delay_ms=bindparam("delay_ms"),
    ),
    f"UPDATE jobs SET status = '{IN_PROGRESS}', worker_id = ?, started_at = ?, delay_ms = ? WHERE id = ?",
    ("worker_id", "started_at", "delay_ms", "_id"),
)

REQUEUE_JOB = _update_job(
    status=IN_QUEUE, worker_id=None, started_at=None, delay_ms=None, retries=bindparam("retries")
)

_FINISH_COLUMNS = ("status", "output", "error", "finished_at", "retain_until", "execution_ms", "retries")
FINISH_JOB = Hot(
    _update_job(**{name: bindparam(name) for name in _FINISH_COLUMNS}),
    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _FINISH_COLUMNS)} WHERE id = ?",
    (*_FINISH_COLUMNS, "_id"), json=("output",),
)

PROGRESS_JOB = _update_job(output=bindparam("output"))

STREAM_CURSOR = _update_job(stream_delivered=bindparam("stream_delivered"))

RESET_JOB = _update_job(
    status=IN_QUEUE, worker_id=None, started_at=None, finished_at=None, retain_until=None,
    delay_ms=None, execution_ms=None, output=None, error=None, stream_delivered=0,
)

DELETE_JOB = Hot(
    delete(jobs).where(jobs.c.id == bindparam("_id")), "DELETE FROM jobs WHERE id = ?", ("_id",)
)
DELETE_CHUNKS = Hot(
    delete(job_chunks).where(job_chunks.c.job_id == bindparam("_id")),
    "DELETE FROM job_chunks WHERE job_id = ?", ("_id",),
)
INSERT_CHUNK = insert(job_chunks)

# -- workers -------------------------------------------------------------------------------

WORKER_SEEN = Hot(
    _update_worker(last_seen_at=bindparam("last_seen_at")),
    "UPDATE workers SET last_seen_at = ? WHERE id = ?", ("last_seen_at", "_id"),
)

WORKER_STATUS = _update_worker(
    status=bindparam("status"), last_status_change_at=bindparam("at"), reason=bindparam("reason")
)

WORKER_FIRST_TAKE = _update_worker(first_take_at=bindparam("first_take_at"))

WORKER_DESIRED = _update_worker(
    desired_status=bindparam("desired_status"), reason=bindparam("reason")
)

WORKER_EXITED = _update_worker(
    status=WorkerState.EXITED,
    desired_status=WorkerState.EXITED,
    stopped_at=bindparam("at"),
    last_status_change_at=bindparam("at"),
    reason=bindparam("reason"),
)


def job_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "endpoint_id": job.endpoint_id,
        "user_id": job.user_id,
        "status": job.status,
        "payload": job.payload,
        "sync": job.sync,
        "low_priority": job.low_priority,
        "execution_timeout_ms": job.execution_timeout_ms,
        "webhook": job.webhook,
        "created_at": job.created_at,
        "expires_at": job.expires_at,
        "retries": job.retries,
        "stream_delivered": 0,
        "idempotency_key": job.idempotency_key,
    }


# Job fields read from a row as they are (the others: sync, low_priority, settled).
_ROW_FIELDS = (
    "id", "endpoint_id", "user_id", "payload", "created_at", "expires_at",
    "execution_timeout_ms", "webhook", "status", "worker_id", "started_at", "finished_at",
    "retain_until", "retries", "output", "error", "stream_delivered", "idempotency_key",
)


def job_from_row(row: Any, nchunks: int = 0) -> Job:
    """The record of a job's row; ``nchunks`` of its stream chunks are stored (they stay
    there: ``chunks_in_store``)."""
    m = row._mapping
    return Job(
        **{name: m[name] for name in _ROW_FIELDS},
        sync=bool(m["sync"]),
        low_priority=bool(m["low_priority"]),
        settled=m["status"] in FINAL_STATES,
        nchunks=nchunks,
        chunks_in_store=bool(nchunks),
    )


def finish_params(job: Job) -> dict[str, Any]:
    return {
        "_id": job.id,
        "status": job.status,
        "output": job.output,
        "error": job.error,
        "finished_at": job.finished_at,
        "retain_until": job.retain_until,
        "execution_ms": job.execution_ms(),
        "retries": job.retries,
    }


def load_job(engine: Engine, job_id: str) -> Job | None:
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return job_from_row(row) if row else None


def job_id_for_key(engine: Engine, user_id: str, key: str) -> str | None:
    """The id of ``user_id``'s job submitted with idempotency key ``key``, if its row lives."""
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.id).where(
            jobs.c.user_id == user_id, jobs.c.idempotency_key == key)).scalar()


def load_chunks(engine: Engine, job_id: str, start: int) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(job_chunks.c.output)
            .where(job_chunks.c.job_id == job_id, job_chunks.c.seq >= start)
            .order_by(job_chunks.c.seq)
        ).all()
    return [r[0] for r in rows]


def load_active(engine: Engine) -> list[Job]:
    """Queued and running jobs, oldest first, each with its size (its input's JSON bytes:
    the budgets count it again) and the seq its next stream chunk takes; the chunks themselves
    stay in the store (``chunks_in_store``): memory holds none of them after a restart."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(jobs).where(jobs.c.status.in_([IN_QUEUE, IN_PROGRESS])).order_by(jobs.c.created_at)
        ).all()
        counts: dict[str, int] = {}
        ids = [row.id for row in rows if row.status == IN_PROGRESS]
        for i in range(0, len(ids), 500):
            for job_id, next_seq in conn.execute(
                select(job_chunks.c.job_id, func.max(job_chunks.c.seq) + 1)
                .where(job_chunks.c.job_id.in_(ids[i : i + 500]))
                .group_by(job_chunks.c.job_id)
            ):
                counts[job_id] = next_seq
    out = [job_from_row(row, counts.get(row.id, 0)) for row in rows]
    for job in out:
        job.size = len(orjson.dumps(job.payload))
    return out


def load_counters(engine: Engine) -> dict[str, dict[str, int]]:
    """Per endpoint: retained final jobs by state and the retries they record."""
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for ep, status, n, retries in conn.execute(
            select(jobs.c.endpoint_id, jobs.c.status, func.count(), func.sum(jobs.c.retries))
            .group_by(jobs.c.endpoint_id, jobs.c.status)
        ):
            c = out.setdefault(ep, {"COMPLETED": 0, "FAILED": 0, "retried": 0})
            if status in FINAL_STATES:
                c[status] = c.get(status, 0) + n
            c["retried"] += int(retries or 0)
    return out


def expired_ids(engine: Engine, now: float, limit: int = 5000) -> list[str]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(jobs.c.id).where(jobs.c.retain_until < now).limit(limit)
            )
        ]


def list_jobs(
    engine: Engine, endpoint_id: str, statuses: tuple[str, ...], limit: int,
    *, oldest_first: bool = False, with_payload: bool = False,
) -> list[Job]:
    """An endpoint's jobs in ``statuses``, newest first (or oldest first), at most ``limit``.

    For listings (GET /v1/endpoints/{id}/jobs). Without ``with_payload`` the payload (which may
    be megabytes) is not read: the jobs come back with ``payload=None``.
    """
    columns: list[ColumnElement[Any]] = [c for c in jobs.c if with_payload or c.name != "payload"]
    if not with_payload:
        columns.append(null().label("payload"))
    order = jobs.c.created_at.asc() if oldest_first else jobs.c.created_at.desc()
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .where(jobs.c.endpoint_id == endpoint_id, jobs.c.status.in_(statuses))
            .order_by(order)
            .limit(limit)
        ).all()
    return [job_from_row(r) for r in rows]


def load_workers(engine: Engine, now: float) -> list[Worker]:
    """Every worker not EXITED, as of a restart at ``now``: a worker seen before is given a
    fresh heartbeat grace period (``last_seen_at = now``)."""
    with engine.connect() as conn:
        rows = conn.execute(select(workers).where(workers.c.status != WorkerState.EXITED)).all()
    out = []
    for r in rows:
        m = r._mapping
        out.append(Worker(
            id=m["id"], endpoint_id=m["endpoint_id"], user_id=m["user_id"],
            token_hash=m["token_hash"], status=WorkerState(m["status"]),
            desired_status=WorkerState(m["desired_status"]),
            manual=bool(m["manual"]), created_at=m["created_at"], first_take_at=m["first_take_at"],
            last_seen_at=now if m["last_seen_at"] is not None else None, reason=m["reason"],
            parked=m["status"] == WorkerState.PARKED, idle_since=now,
            status_changed_at=m["last_status_change_at"],
        ))
    return out
