"""Items 2 and 9 of issue 14: restarts that cost no work.

Workers outlive the server: after SIGKILL and start, or SIGTERM and start, the running
worker is still the same process, the new server takes it over and its job completes
without a retry and without running twice. A result that is ready while the server is down
is sent again until the restarted server takes it (the SDK accelerator's delivery); the SDK
alone drops it (it does not send it again), so that job runs again with the retry counted.
With ``shutdown = "drain"`` (the warm shutdown) SIGTERM lets the running job finish, takes
its result, then stops every worker.
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
            # Ends around the restart: its result may meet the server down or the kept-alive
            # connection to the old one closed, and is sent again (the accelerator).
            job, held, pid = _running(c, eid, state, {"sleep": 2, "echo": "kept"})

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


@pytest.mark.parametrize("accelerated", [True, False])
def test_a_result_ready_while_the_server_is_down(tmp_path: Path, accelerated: bool) -> None:
    """Accelerated (the default), the worker sends the result again until the restarted
    server takes it: the job ran once, no retry. The SDK alone does not send a result again
    after a refused connection (it retries 5xx answers only), so the job is lost by its
    worker: its pings stop listing it and it runs again with the retry counted, never
    silently."""
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            env = {} if accelerated else {"env": {"RUNPLANE_ACCELERATOR": "0"}}
            eid, state = make_endpoint(c, tmp_path, workersMax=1, **env)
            job, _, _ = _running(c, eid, state, {"block": True, "echo": "late"})
        srv.kill()
        (state / "release").touch()  # the handler returns while nobody listens
        wait_for(lambda: attempts(state, job) == 1 and time.sleep(1.5) is None, 10, "its end")
        srv.start()
        with srv.client() as c:
            done = final(c, eid, job, timeout=60)
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "late", done
            runs = 1 if accelerated else 2
            assert attempts(state, job) == runs and done["retries"] == runs - 1, done
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
