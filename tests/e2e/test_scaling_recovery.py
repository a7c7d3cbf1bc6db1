"""Recovery with real SDK workers: a sync handler past its execution timeout is stopped, and
a job whose worker died while the server was down is re-queued when it comes back."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from tests.e2e.scaling_kit import (
    fast_server,
    final,
    make_endpoint,
    pid_alive,
    run,
    status,
    wait_for,
    workers,
)


def worker_reason(data_dir: Path, worker_id: str) -> str | None:
    """The exit reason the store records for a worker."""
    with sqlite3.connect(f"file:{data_dir / 'runplane.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT reason FROM workers WHERE id = ?", (worker_id,)).fetchone()
    return row[0] if row else None


def test_sync_handler_past_its_execution_timeout_is_stopped(tmp_path: Path) -> None:
    srv = fast_server(tmp_path)
    try:
        with srv.client() as c:
            # 5 s is the smallest executionTimeoutMs the control plane accepts.
            eid, state = make_endpoint(c, tmp_path, workersMax=1, executionTimeoutMs=5000)
            job = run(c, eid, {"sleep": 300})
            pid_file = state / f"{job}.pid"
            pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "start"))
            stuck = status(c, eid, job)["workerId"]

            timed_out = final(c, eid, job, timeout=30)
            assert timed_out["status"] == "TIMED_OUT", timed_out
            # The sync handler never sees job-stop; its pings keep listing the job, so the
            # controller stops the process.
            wait_for(lambda: not pid_alive(pid), 30, "the stuck worker to be stopped")
            assert "execution timeout" in (worker_reason(srv.data_dir, stuck) or "")

            # The endpoint's one slot is free again: the next job runs on a new worker.
            done = final(c, eid, run(c, eid, {"echo": "next"}))
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "next"
            assert done["workerId"] != stuck
    finally:
        srv.stop()


def test_a_job_whose_worker_died_with_the_server_down_is_requeued_on_restart(tmp_path: Path) -> None:
    srv = fast_server(tmp_path)
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, workersMax=1)
            job = run(c, eid, {"hang_first": True, "echo": "kept"})
            pid_file = state / f"{job}.pid"
            pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "start"))
            held = wait_for(lambda: (s := status(c, eid, job))["status"] == "IN_PROGRESS" and s,
                            30, "the job to be taken")

        srv.kill()  # SIGKILL: no shutdown hooks run
        # Workers outlive the server (tests/faults/test_restarts.py); this one dies while
        # the server is down, with its supervisor.
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 15, "the previous run's worker to be gone")
        srv.start()

        with srv.client() as c:
            done = final(c, eid, job)
            assert done["status"] == "COMPLETED", done
            assert done["output"] == {**done["output"], "attempt": 2, "echo": "kept"}
            assert done["retries"] == 1
            assert done["workerId"] != held["workerId"]
            assert held["workerId"] not in [w["id"] for w in workers(c, eid)]
            assert worker_reason(srv.data_dir, held["workerId"]) == "gone after a server restart"
    finally:
        srv.stop()
