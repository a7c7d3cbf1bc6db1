"""Items 3, 4 and 5 of issue 14: what a crashing worker leaves and what it is told.

- A worker killed with SIGKILL leaves no process behind: the SDK's forked heartbeat process
  is killed with it by the worker's supervisor (it used to ping, answered 401, forever).
- A handler that kills its process during its first job is a crash after a job-take (the
  template starts fine): the reason quotes its last error line, the crash-loop breaker does
  not hold the next worker back, the job is retried and then failed "out of retries", and
  ``inProgress`` is 0 afterwards (it went to -1).
- A worker that exits before its first job says so, with its last error line.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.scaling_kit import final, health, make_endpoint, run, status, wait_for
from tests.faults.kit import CRASH_HANDLER, FAST_ENV, attempts, server, worker_processes

pytestmark = pytest.mark.e2e

OOM = "RuntimeError: CUDA error: out of memory"


def _worker_reason(data_dir: Path, worker_id: str) -> str:
    with sqlite3.connect(f"file:{data_dir / 'runplane.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT reason FROM workers WHERE id = ?", (worker_id,)).fetchone()
    return row[0] if row and row[0] else ""


def test_a_killed_worker_leaves_no_process_behind(tmp_path: Path) -> None:
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, workersMax=1)
            job = run(c, eid, {"block": True})
            pid = int(wait_for(lambda: (state / f"{job}.pid").exists()
                               and (state / f"{job}.pid").read_text(), 60, "the handler"))
            worker = wait_for(lambda: status(c, eid, job).get("workerId"), 30, "the take")
            # The SDK's heartbeat process is a second process of the same worker.
            wait_for(lambda: len(worker_processes(worker)) >= 2, 15,
                     "the worker and its heartbeat process")
            os.kill(pid, signal.SIGKILL)  # the handler's process only, as the OOM killer would
            wait_for(lambda: not worker_processes(worker), 10,
                     "every process of the killed worker to be gone")
            (state / "release").touch()
            done = final(c, eid, job)
            assert done["status"] == "COMPLETED" and done["retries"] == 1, done
    finally:
        srv.stop()


def test_a_crash_during_the_first_job_is_the_handlers_and_not_a_crash_loop(
        tmp_path: Path) -> None:
    srv = server(tmp_path, {**FAST_ENV, "RUNPLANE_JOB_MAX_RETRIES": "2"})
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, code=CRASH_HANDLER, workersMax=1)
            t0 = time.monotonic()
            job = run(c, eid, {"crash": OOM})
            failed = final(c, eid, job, timeout=60)
            # Three workers each took the job and crashed: none was held back by the breaker
            # (whose backoff is 60 s here).
            assert time.monotonic() - t0 < 45
            assert failed["status"] == "FAILED" and "out of retries (2)" in failed["error"]
            assert attempts(state, job) == 3 and failed["retries"] == 2
            reason = _worker_reason(srv.data_dir, failed["workerId"])
            assert reason == f"crashed with exit code 1 after taking a job: {OOM}", reason
            h = health(c, eid)
            assert h["jobs"]["inProgress"] == 0 and h["jobs"]["failed"] == 1, h
            assert not h.get("reason", "").startswith("crash loop"), h
    finally:
        srv.stop()


def test_an_exit_before_the_first_job_quotes_the_last_error_line(tmp_path: Path) -> None:
    code = ("import sys\nprint('loading the model', flush=True)\n"
            "print(\"ModuleNotFoundError: No module named 'torch'\", file=sys.stderr)\n"
            "sys.exit(3)\n")
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, _ = make_endpoint(c, tmp_path, code=code, workersMax=1)
            run(c, eid, {})
            h = wait_for(lambda: (h := health(c, eid)).get("reason", "").startswith("crash loop")
                         and h, 60, "the breaker to open")
            assert ("exited with code 3 before its first job: ModuleNotFoundError: No module "
                    "named 'torch'") in h["reason"], h
    finally:
        srv.stop()
