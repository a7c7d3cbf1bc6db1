"""FlashBoot end to end (docs/flashboot.md): a real server, real runpod SDK workers started by
the controller, really frozen (SIGSTOP) and thawed (SIGCONT). Every wait is a poll with a
deadline; nothing asserts how fast something happened."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import (
    fast_server,
    final,
    health,
    make_endpoint,
    pid_alive,
    run,
    wait_for,
    workers,
)

RTX_4090 = "NVIDIA GeForce RTX 4090"

# Short hold and heartbeat timeout so that a test's parked worker outlives both.
ENV = {"RUNPLANE_JOB_TAKE_HOLD_S": "1", "RUNPLANE_WORKER_HEARTBEAT_TIMEOUT_S": "2",
       # One declared GPU (no driver needed) and a price, for eviction and billing.
       "RUNPLANE_MACHINE": json.dumps({
           "declared_gpus": [{"type": RTX_4090, "count": 1}], "detect_gpus": False,
           "cost_per_vcpu_hr": 3.6, "cost_per_gpu_hr": 36.0})}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[LiveServer]:
    server = fast_server(tmp_path, **ENV)
    try:
        yield server
    finally:
        server.stop()


def parked_worker(c: httpx.Client, eid: str) -> dict[str, Any]:
    """Wait until the endpoint's only worker is parked; returns its Pod object."""
    return wait_for(lambda: (ws := workers(c, eid)) and len(ws) == 1
                    and ws[0]["workerStatus"] == "PARKED" and ws[0], 30, "the worker to park")


def group_stopped(pid: int) -> bool:
    """The worker (handler pid ``pid``) and every process of its group (its supervisor, the
    SDK's heartbeat process) are stopped."""
    group = _pgid(pid)
    procs = [p for p in psutil.process_iter(["pid"]) if group and _pgid(p.pid) == group]
    return bool(procs) and all(p.status() == psutil.STATUS_STOPPED for p in procs)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def billed_ms(c: httpx.Client, eid: str, pod_id: str) -> int:
    r = c.get("/v1/billing/endpoints", params={"grouping": "podId", "endpointId": eid})
    assert r.status_code == 200, r.text
    return sum(row["timeBilledMs"] for row in r.json() if row["podId"] == pod_id)


def test_park_job_resume_result_and_no_charge_while_parked(srv: LiveServer,
                                                          tmp_path: Path) -> None:
    with srv.client() as c:
        eid, _ = make_endpoint(c, tmp_path, flashboot=True)
        first = final(c, eid, run(c, eid, {"echo": 1}))
        assert first["status"] == "COMPLETED", first
        worker, pid = first["output"]["worker"], first["output"]["pid"]

        pod = parked_worker(c, eid)
        assert pod["id"] == worker and pod["desiredStatus"] == "RUNNING"
        assert pod["lastStatusChange"].startswith("PARKED")
        h = health(c, eid)["workers"]
        assert h["parked"] == 1 and h["idle"] == 0 and h["running"] == 0, h
        wait_for(lambda: group_stopped(pid), 10, "the worker's process group to be frozen")
        billed = wait_for(lambda: billed_ms(c, eid, worker), 10, "the run before parking billed")

        # Frozen longer than the job-take hold and the heartbeat timeout: not a crash, and no
        # charge accrues.
        time.sleep(3)
        assert workers(c, eid)[0]["workerStatus"] == "PARKED"
        assert "reason" not in health(c, eid)
        assert billed_ms(c, eid, worker) == billed

        sent = time.monotonic()
        second = final(c, eid, run(c, eid, {"echo": 2}))
        assert second["status"] == "COMPLETED", second
        # The same process, thawed: not a new worker.
        assert (second["output"]["worker"], second["output"]["pid"]) == (worker, pid)
        assert second["output"]["echo"] == 2 and second["output"]["attempt"] == 1
        assert second["retries"] == 0

        parked_worker(c, eid)  # idle again: parked again
        seen = time.monotonic()
        total = wait_for(lambda: (b := billed_ms(c, eid, worker)) > billed and b, 10,
                         "the resumed run billed at its next park")
        # The second interval opened at the resume (after the job was sent), not at the park
        # before it: the parked seconds are not in it.
        assert total - billed <= (seen - sent) * 1000 + 100, (total, billed, seen - sent)


def test_eviction_under_gpu_pressure_from_another_endpoint(srv: LiveServer,
                                                           tmp_path: Path) -> None:
    gpu = {"computeType": "GPU", "gpuTypeIds": [RTX_4090], "gpuCount": 1, "flashboot": True}
    with srv.client() as c:
        a, _ = make_endpoint(c, tmp_path, **gpu, name="a")
        (tmp_path / "b").mkdir()
        b, _ = make_endpoint(c, tmp_path / "b", **gpu, name="b")
        on_a = final(c, a, run(c, a, {"echo": "a"}))
        assert on_a["status"] == "COMPLETED", on_a
        parked = parked_worker(c, a)
        assert parked["gpu"]["count"] == 1  # keeps its GPU while parked

        # The only GPU is held by a's parked worker: b's job evicts it.
        on_b = final(c, b, run(c, b, {"echo": "b"}))
        assert on_b["status"] == "COMPLETED", on_b
        assert on_b["output"]["worker"] != parked["id"]
        wait_for(lambda: not pid_alive(on_a["output"]["pid"]), 15, "a's parked worker to exit")
        assert workers(c, a) == []
        assert f"evicted: endpoint {b} needs its GPUs" in srv.log()

        # And back: b's worker parks, a's next job evicts it and starts a fresh a worker.
        parked_worker(c, b)
        again = final(c, a, run(c, a, {"echo": "a2"}))
        assert again["status"] == "COMPLETED", again
        assert again["output"]["worker"] != parked["id"]
        wait_for(lambda: not pid_alive(on_b["output"]["pid"]), 15, "b's parked worker to exit")


def test_parked_worker_killed_meanwhile_is_noticed_and_replaced(srv: LiveServer,
                                                                tmp_path: Path) -> None:
    with srv.client() as c:
        eid, _ = make_endpoint(c, tmp_path, flashboot=True)
        first = final(c, eid, run(c, eid, {"echo": 1}))
        parked_worker(c, eid)
        os.killpg(os.getpgid(first["output"]["pid"]), signal.SIGKILL)  # e.g. the OOM killer

        wait_for(lambda: workers(c, eid) == [], 30, "the dead parked worker to be retired")
        second = final(c, eid, run(c, eid, {"echo": 2}))
        assert second["status"] == "COMPLETED", second
        assert second["output"]["worker"] != first["output"]["worker"]
        assert second["retries"] == 0
        assert "reason" not in health(c, eid)  # not a crash loop: the breaker is not involved
        assert "exited while parked" in srv.log()

