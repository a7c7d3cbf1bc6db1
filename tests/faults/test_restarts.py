"""Items 2 and 9 of issue 14: restarts that cost no work.

Workers outlive the server: after SIGKILL and start, or SIGTERM and start, the running
worker is still the same process, the new server takes it over and its job completes
without a retry and without running twice; a result that arrives while the server is down
is lost by the SDK (it does not send it again), so that job runs again with the retry
counted. With ``shutdown = "drain"`` (the warm
shutdown) SIGTERM lets the running job finish, takes its result, then stops every worker.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.scaling_kit import final, make_endpoint, pid_alive, run, status, wait_for
from tests.faults.kit import attempts, controller_env, job_row, server, worker_ids_of

pytestmark = pytest.mark.e2e


def _running(c, eid: str, state: Path, inp: dict) -> tuple[str, dict, int]:
    job = run(c, eid, inp)
    pid_file = state / f"{job}.pid"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the handler"))
    held = wait_for(lambda: (s := status(c, eid, job))["status"] == "IN_PROGRESS" and s, 30,
                    "the job to be taken")
    return job, held, pid


def _sigterm(srv) -> None:
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=60)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_restart_keeps_the_running_worker_and_its_job(tmp_path: Path, how: str) -> None:
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, workersMax=1)
            # Long enough to end after the restart: the SDK drops a result it cannot send.
            job, held, pid = _running(c, eid, state, {"sleep": 15, "echo": "kept"})

        srv.kill() if how == "SIGKILL" else _sigterm(srv)
        assert pid_alive(pid), "the worker died with the server"
        srv.start()

        with srv.client() as c:
            done = final(c, eid, job, timeout=30)
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "kept", done
            assert done["retries"] == 0 and done["workerId"] == held["workerId"], done
            assert attempts(state, job) == 1
            # Scaling resumed with the adopted worker counted: the next job runs on it.
            after = final(c, eid, run(c, eid, {"echo": "next"}))
            assert after["status"] == "COMPLETED" and after["workerId"] == held["workerId"]
        # No orphan: every process left is the one worker's (it used to leave its SDK
        # heartbeat process behind on every server SIGKILL).
        assert worker_ids_of(srv) == {held["workerId"]}
    finally:
        srv.stop()


def test_a_result_sent_while_the_server_is_down_is_run_again_counting_a_retry(
        tmp_path: Path) -> None:
    """The SDK does not send a result again after a refused connection (it retries 5xx
    answers only), so a job that ends while no server listens is lost by its worker: its
    pings stop listing it and it runs again with the retry counted, never silently."""
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, workersMax=1)
            job, _, _ = _running(c, eid, state, {"block": True, "echo": "late"})
        srv.kill()
        (state / "release").touch()  # the handler returns while nobody listens
        wait_for(lambda: attempts(state, job) == 1 and time.sleep(1.5) is None, 10, "its end")
        srv.start()
        with srv.client() as c:
            done = final(c, eid, job, timeout=60)
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "late", done
            assert attempts(state, job) == 2 and done["retries"] == 1, done
    finally:
        srv.stop()


def test_warm_shutdown_finishes_the_running_job_then_stops_the_workers(tmp_path: Path) -> None:
    srv = server(tmp_path, controller_env(shutdown="drain", drain_timeout_s=30))
    try:
        with srv.client() as c:
            eid, state = make_endpoint(c, tmp_path, workersMax=1)
            job, _, pid = _running(c, eid, state, {"sleep": 3, "echo": "drained"})
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            refused = c.post(f"/v2/{eid}/run", json={"input": {}})
            assert refused.status_code == 503 and refused.headers.get("retry-after"), refused.text
        assert srv.proc.wait(timeout=30) is not None
        assert job_row(srv.data_dir / "runplane.db", job)["status"] == "COMPLETED"
        assert not pid_alive(pid) and srv.worker_processes() == []
        srv.start()
        with srv.client() as c:
            done = status(c, eid, job)
            assert done["status"] == "COMPLETED" and done["retries"] == 0, done
        assert attempts(state, job) == 1
    finally:
        srv.stop()
