"""Workers that really run and scale: a real server, real runpod SDK workers started by the
controller as processes, real signals. Every wait is a poll with a deadline; nothing asserts
how fast something happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer, free_port
from tests.e2e.scaling_kit import (
    CRASHING_HANDLER,
    FAST_ENV,
    fast_server,
    final,
    health,
    make_endpoint,
    pid_alive,
    run,
    status,
    wait_for,
    workers,
)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[LiveServer]:
    server = fast_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_burst_scales_out_then_back_to_min(srv: LiveServer, tmp_path: Path) -> None:
    n = 3
    with srv.client() as c:
        eid, state = make_endpoint(c, tmp_path, workersMin=0, workersMax=n)
        assert workers(c, eid) == []
        jobs = [run(c, eid, {"block": True, "echo": i}) for i in range(n)]
        # Each job holds its worker until released: all running at once needs n workers.
        running = wait_for(
            lambda: (ss := [status(c, eid, j) for j in jobs])
            and all(s["status"] == "IN_PROGRESS" for s in ss) and ss,
            60, f"{n} jobs running at once")
        assert len({s["workerId"] for s in running}) == n
        assert len(workers(c, eid)) == n
        assert health(c, eid)["workers"]["running"] == n

        (state / "release").touch()
        done = [final(c, eid, j) for j in jobs]
        assert [d["status"] for d in done] == ["COMPLETED"] * n
        assert sorted(d["output"]["echo"] for d in done) == list(range(n))
        assert len({d["output"]["worker"] for d in done}) == n

        # idleTimeout is 1 s: every worker goes, back to workersMin = 0.
        wait_for(lambda: workers(c, eid) == [], 30, "scale-down to workersMin")
        h = health(c, eid)["workers"]
        assert sum(h.values()) == 0, h
        pids = [d["output"]["pid"] for d in done]
        wait_for(lambda: not any(pid_alive(p) for p in pids), 15, "worker processes to exit")


def test_killed_worker_is_replaced_and_its_job_retried(srv: LiveServer, tmp_path: Path) -> None:
    with srv.client() as c:
        eid, state = make_endpoint(c, tmp_path, workersMax=1)
        job = run(c, eid, {"hang_first": True, "echo": "survivor"})
        first = wait_for(lambda: (s := status(c, eid, job))["status"] == "IN_PROGRESS" and s,
                         60, "the job to start")
        pid_file = state / f"{job}.pid"
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, "the pid"))
        os.kill(pid, signal.SIGKILL)

        done = final(c, eid, job)
        assert done["status"] == "COMPLETED", done
        assert done["output"]["attempt"] == 2 and done["output"]["echo"] == "survivor"
        assert done["retries"] == 1
        assert done["workerId"] != first["workerId"]
        assert [w["id"] for w in workers(c, eid)] in ([done["workerId"]], [])


def test_crash_loop_trips_the_breaker_and_the_endpoint_says_so(
        srv: LiveServer, tmp_path: Path) -> None:
    with srv.client() as c:
        eid, _ = make_endpoint(c, tmp_path, code=CRASHING_HANDLER, workersMax=1)
        job = run(c, eid, {"echo": 1})
        h = wait_for(lambda: (h := health(c, eid)).get("reason", "").startswith("crash loop")
                     and h, 60, "the breaker to open")
        assert "exited with code 3 before its first job" in h["reason"]
        assert h["workers"]["throttled"] == 1  # wanted, held back by the breaker's backoff
        ep = c.get(f"/v1/endpoints/{eid}").json()
        assert ep["reason"].startswith("crash loop")
        queued = status(c, eid, job)
        assert queued["status"] == "IN_QUEUE" and queued["reason"].startswith("crash loop")
        # The breaker holds: no new worker is started while it is open.
        assert workers(c, eid) == []
        assert "missing model weights" in "".join(
            p.read_text() for p in (srv.data_dir / "logs").glob("*.log"))


def test_demo_prints_a_curl_line_that_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    data_dir.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **FAST_ENV}
    server = LiveServer(data_dir, free_port(), "", "", "", env, ["--demo"])
    server.start()
    try:
        line = next(ln.strip() for ln in server.log().splitlines()
                    if ln.strip().startswith("curl "))
        assert "Bearer $RUNPLANE_API_KEY" not in line  # a fresh store prints its admin key
        out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        answer = json.loads(out)
        assert answer["status"] == "COMPLETED", answer
        assert answer["output"]["greeting"] == "Hello, runplane!"
    finally:
        server.stop()
