"""``strict-resume`` of a scaled-down worker end to end: a real ``runplane serve``, real
FastAPI workers (``examples/lb_worker``) started, scaled to zero and started again by the
controller, clients through ``/lb/{id}/...`` (docs/load-balancing.md "Worker affinity")."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import fast_server, wait_for
from tests.e2e.test_container import IMAGE, _podman_ready
from tests.e2e.test_lb_container import APP
from tests.e2e.test_load_balancing import LB, LIMITS, live, make_lb

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = fast_server(tmp_path_factory.mktemp("lb-resume"), RUNPLANE_LB=json.dumps(LB),
                      RUNPLANE_LIMITS=LIMITS)
    try:
        yield srv
    finally:
        srv.stop()


def pin(mode: str, worker: str) -> dict[str, str]:
    return {"X-Runpod-Worker-Id": f"{mode} {worker}"}


def scaled_to_zero(c: httpx.Client, ep: str) -> tuple[str, str]:
    """The endpoint's first request starts a worker; idle past its idleTimeout (1 s), it is
    stopped (FlashBoot off: not parked). Its id, and when it started (includeWorkers')."""
    r = c.get(f"/lb/{ep}/hello", timeout=90)
    assert r.status_code == 200, r.text
    worker = r.headers["x-runpod-worker-id"]
    started = [w["startedAt"] for w in live(c, ep) if w["id"] == worker]
    wait_for(lambda: live(c, ep) == [], 60, "the worker scaled down")
    return worker, started[0] if started else ""


def kill_worker(worker: str) -> None:
    """SIGKILL the worker's process group (a crash, as far as runplane can tell)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("RUNPOD_POD_ID") == worker:
                os.killpg(os.getpgid(p.pid), signal.SIGKILL)
                return
        except (psutil.Error, ProcessLookupError):
            continue
    raise AssertionError(f"no process of worker {worker}")


def test_strict_resume_starts_a_scaled_down_worker_again(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c, workers={"min": 0, "max": 1, "idleTimeout": 1}, flashboot="OFF")
    worker, first_start = scaled_to_zero(c, ep)
    # strict alone does not start it: it is gone.
    r = c.get(f"/lb/{ep}/hello", headers=pin("strict", worker))
    assert r.status_code == 404 and r.json()["error"] == "affinity_worker_gone", r.text
    assert live(c, ep) == []
    # strict-resume starts it again under its id; the request waits for its health check and
    # is served by it (a fresh process: RUNPOD_POD_ID is the same id).
    r = c.get(f"/lb/{ep}/hello", headers=pin("strict-resume", worker), timeout=90)
    assert r.status_code == 200, r.text
    assert r.headers["x-runpod-worker-id"] == worker and r.json()["worker"] == worker
    # It is the endpoint's worker again, in includeWorkers under that id, started now.
    [shown] = live(c, ep)
    assert shown["id"] == worker and shown["startedAt"] != first_start
    # A crash is not a scale-down: its id is not started again.
    kill_worker(worker)
    wait_for(lambda: live(c, ep) == [], 60, "the crashed worker gone")
    r = c.get(f"/lb/{ep}/hello", headers=pin("strict-resume", worker))
    assert r.status_code == 404 and r.json()["error"] == "affinity_worker_gone", r.text
    assert live(c, ep) == []


def test_another_users_worker_is_never_started(server: LiveServer) -> None:
    alice, bob = server.client(), server.client(server.other_key)
    mine = make_lb(alice, workers={"min": 0, "max": 1, "idleTimeout": 1}, flashboot="OFF")
    theirs = make_lb(bob, workers={"min": 0, "max": 1, "idleTimeout": 1}, flashboot="OFF")
    worker, _ = scaled_to_zero(bob, theirs)
    # Alice names Bob's scaled-down worker on her own endpoint: not hers, gone for her.
    r = alice.get(f"/lb/{mine}/hello", headers=pin("strict-resume", worker))
    assert r.status_code == 404 and r.json()["error"] == "affinity_worker_gone", r.text
    # ... and Bob's endpoint is not hers at all.
    r = alice.get(f"/lb/{theirs}/hello", headers=pin("strict-resume", worker))
    assert r.status_code == 404 and "not found" in r.json()["error"]
    assert live(bob, theirs) == [] and live(alice, mine) == []
    # Bob himself may wake it: it was resumable, only not by her.
    r = bob.get(f"/lb/{theirs}/hello", headers=pin("strict-resume", worker), timeout=90)
    assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == worker


def test_a_container_worker_is_started_again_under_its_id(tmp_path: Path) -> None:
    """The same with a container on its own network: a new container under the old one's
    name (the old one removed on its stop), its port published again."""
    why = _podman_ready()
    if why:
        pytest.skip(why)
    srv = fast_server(tmp_path, RUNPLANE_CONTAINER=json.dumps({"network": "bridge"}),
                      RUNPLANE_LB=json.dumps(LB), RUNPLANE_LIMITS=LIMITS)
    try:
        with srv.client() as c:
            r = c.post("/v2/serverless", json={
                "name": "lb-container", "type": "LOAD_BALANCER", "image": IMAGE,
                "ports": ["8000/http"], "env": {"LOAD_SECONDS": "0.5"}, "flashboot": "OFF",
                "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
                "workers": {"min": 0, "max": 1, "idleTimeout": 1},
                "scaling": {"type": "REQUEST_COUNT", "requestCount": 2}})
            assert r.status_code == 201, r.text
            ep, tpl = r.json()["id"], r.json()["templateId"]
            assert c.patch(f"/v1/templates/{tpl}", json={
                "dockerStartCmd": ["python", "-u", "-c", APP]}).status_code == 200
            worker, _ = scaled_to_zero(c, ep)
            r = c.get(f"/lb/{ep}/hello", headers=pin("strict-resume", worker), timeout=120)
            assert r.status_code == 200, r.text
            assert r.headers["x-runpod-worker-id"] == worker and r.json()["worker"] == worker
    finally:
        srv.stop()
