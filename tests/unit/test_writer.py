"""The group-commit writer: regrouping keeps each row's operations in order, and the SQLite
fast path writes exactly what the Core statements write (JSON columns included)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from runplane.broker import store as sql
from runplane.broker.models import Job
from runplane.broker.writer import Writer, plan
from runplane.store.db import make_engine, upgrade
from runplane.store.tables import jobs


def _flat(runs: list) -> list:
    return [(stmt, p) for stmt, batch in runs for p in batch]


def test_plan_groups_statements_and_keeps_each_rows_order() -> None:
    ops = [
        (sql.TAKE_JOB, {"_id": "a"}),
        (sql.INSERT_JOB, {"id": "b"}),
        (sql.FINISH_JOB, {"_id": "a"}),
        (sql.TAKE_JOB, {"_id": "c"}),
        (sql.FINISH_JOB, {"_id": "c"}),
        (sql.INSERT_JOB, {"id": "d"}),
    ]
    runs = plan(ops)
    # One run per statement and level: take(a, c), insert(b, d), then finish(a, c).
    assert [(stmt, [p.get("_id") or p.get("id") for p in batch]) for stmt, batch in runs] == [
        (sql.TAKE_JOB, ["a", "c"]), (sql.INSERT_JOB, ["b", "d"]), (sql.FINISH_JOB, ["a", "c"]),
    ]
    for row in "abcd":
        mine = [op for op in ops if (op[1].get("_id") or op[1].get("id")) == row]
        assert [op for op in _flat(runs) if op in mine] == mine


def test_plan_barrier_for_operations_without_a_row_key() -> None:
    chunk = (sql.INSERT_CHUNK, {"job_id": "a", "seq": 0, "output": 1})
    ops = [(sql.TAKE_JOB, {"_id": "a"}), chunk, (sql.FINISH_JOB, {"_id": "a"})]
    assert _flat(plan(ops)) == ops


def _job(job_id: str) -> Job:
    return Job(id=job_id, endpoint_id="ep", user_id="u", payload={"id": job_id, "input": {"x": [1, "é"]}},
               created_at=1.0, expires_at=100.0, webhook=None)


def test_sqlite_fast_path_writes_what_core_writes(tmp_path: Path) -> None:
    rows = {}
    for name, fast in (("fast", True), ("core", False)):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        writer = Writer(engine)
        writer._raw = fast
        for job_id, output in (("j1", {"y": 2}), ("j2", None), ("j3", 7)):
            job = _job(job_id)
            writer.write_nowait((sql.INSERT_JOB, sql.job_row(job)))
            job.started_at, job.worker_id = 2.0, "w"
            writer.write_nowait((sql.TAKE_JOB, {"_id": job_id, "worker_id": "w", "started_at": 2.0,
                                                "delay_ms": 1000}))
            job.status, job.output, job.finished_at, job.retain_until = "COMPLETED", output, 3.0, 50.0
            writer.write_nowait((sql.FINISH_JOB, sql.finish_params(job)))
        writer.write_nowait((sql.DELETE_JOB, {"_id": "j3"}))
        writer.flush()
        writer.close()
        with engine.connect() as conn:
            # As stored (JSON text included), and as read back through the table's types.
            rows[name] = ([tuple(r) for r in conn.exec_driver_sql("SELECT * FROM jobs ORDER BY id")],
                          [tuple(r) for r in conn.execute(select(jobs).order_by(jobs.c.id))])
        engine.dispose()
    assert rows["fast"] == rows["core"]
    assert [r[0] for r in rows["fast"][1]] == ["j1", "j2"]
    assert rows["fast"][1][1][jobs.c.keys().index("output")] is None


async def test_when_the_store_cannot_write_requests_fail_fast_and_state_changes_land_later(
        tmp_path: Path) -> None:
    """A full disk (here: SQLite's query_only, which refuses writes the same way, with an
    OperationalError): a request's own write fails at once as Unavailable; a must-land
    write waits, in order, and commits once the store takes writes again."""
    import asyncio

    import pytest
    from sqlalchemy import event

    from runplane.errors import Unavailable

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(engine)
    refuse = {"on": True}

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA query_only={'ON' if refuse['on'] else 'OFF'}")

    engine.pool.dispose()  # the migration's pooled connections predate the listener
    writer = Writer(engine)
    try:
        job = Job(id="j", endpoint_id="e", user_id="u", payload={}, created_at=1.0,
                  expires_at=2.0)
        kept = writer.write_nowait((sql.INSERT_JOB, sql.job_row(job)))
        with pytest.raises(Unavailable, match="the store cannot write"):
            await writer.write((sql.INSERT_JOB, sql.job_row(Job(
                id="k", endpoint_id="e", user_id="u", payload={}, created_at=1.0,
                expires_at=2.0))))
        await asyncio.sleep(0.2)
        assert kept is not None and not kept.done() and writer.pending == 1
        refuse["on"] = False
        engine.pool.dispose()  # new connections read the flag
        await asyncio.wait_for(kept, 10)
        with engine.connect() as conn:
            assert [r.id for r in conn.execute(select(jobs.c.id))] == ["j"]
        assert writer.pending == 0
    finally:
        writer.close()
