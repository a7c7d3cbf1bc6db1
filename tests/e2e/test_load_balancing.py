"""Load-balancing endpoints end to end: a real ``runplane serve``, real FastAPI workers
(``examples/lb_worker``) started by the controller, clients through ``/lb/{id}/...``."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import fast_server, wait_for

pytestmark = pytest.mark.e2e

WORKER_DIR = Path(__file__).resolve().parents[2] / "examples" / "lb_worker"
# The tests poll REST v2 often: its per-user quota out of the way.
LIMITS = json.dumps({"rest_v2_per_minute": 1_000_000, "rest_v2_per_hour": 1_000_000,
                     "creates_per_minute": 10_000})
LB = {"base_domain": "lb.localhost", "wait_for_worker_s": 60, "max_body_bytes": 1_000_000, "health_interval_s": 0.2,
      "health_interval_starting_s": 0.1, "unhealthy_after": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = fast_server(tmp_path_factory.mktemp("lb"), RUNPLANE_LB=json.dumps(LB),
                      RUNPLANE_LIMITS=LIMITS)
    try:
        yield srv
    finally:
        srv.stop()


def make_lb(c: httpx.Client, **fields: Any) -> str:
    """A LOAD_BALANCER endpoint (REST v2) running the example FastAPI worker."""
    workers = {"min": 0, "max": 3, "idleTimeout": 30, **fields.pop("workers", {})}
    r = c.post("/v2/serverless", json={
        "name": "lb", "type": "LOAD_BALANCER", "image": f"local:{WORKER_DIR}",
        "args": f"{sys.executable} app.py", "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
        "env": {"LOAD_SECONDS": fields.pop("load_seconds", "0.5"), "HOST": "127.0.0.1"},
        "workers": workers,
        "scaling": {"type": "REQUEST_COUNT", "requestCount": fields.pop("per_worker", 2)},
        **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def live(c: httpx.Client, ep: str) -> list[dict[str, Any]]:
    return c.get(f"/v2/serverless/{ep}/workers").json()["workers"]


def idle_workers(c: httpx.Client, ep: str, n: int) -> list[str]:
    """Wait until ``n`` workers are up and healthy; their ids."""
    return wait_for(lambda: (ids := [w["id"] for w in live(c, ep) if w["status"] == "IDLE"])
                    and len(ids) >= n and ids, 60, f"{n} idle workers")


def test_scale_from_zero_stream_and_what_the_worker_sees(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c)
    assert live(c, ep) == []
    # The first request starts the first worker and waits for its health check to say 200.
    r = c.get(f"/lb/{ep}/hello?x=1", timeout=90)
    assert r.status_code == 200, r.text
    worker = r.headers["x-runpod-worker-id"]
    body = r.json()
    assert body["worker"] == worker
    assert "authorization" not in body["headers"]  # the caller's key stays with runplane
    assert body["headers"]["x-forwarded-for"] == "127.0.0.1"
    # Cold start (first 204 to first 200) is in the endpoint's stats.
    # (The controller sees it on its next tick.)
    def with_cold_start() -> dict[str, Any] | None:
        s = c.get(f"/v1/endpoints/{ep}/stats", params={"window": 600}).json()
        return s if any(p["coldStarts"] for p in s["points"]) else None

    stats = wait_for(with_cold_start, 10, "the cold start in the stats")
    assert sum(p["completed"] for p in stats["points"]) >= 1  # requests count like jobs
    # A server-sent event stream arrives event by event, not buffered to its end.
    with c.stream("GET", f"/lb/{ep}/stream", params={"n": 4, "delay": 0.4}) as s:
        assert s.headers["x-runpod-worker-id"] == worker
        assert s.headers["content-type"].startswith("text/event-stream")
        arrivals = []
        for line in s.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.time(), json.loads(line[6:])))
    assert [e["i"] for _, e in arrivals] == [0, 1, 2, 3]
    # The first event was here before the worker wrote the last one.
    assert arrivals[0][0] < arrivals[-1][1]["t"]
    # A body both ways, any method.
    payload = bytes(range(256)) * 1000
    r = c.post(f"/lb/{ep}/echo", content=payload)
    assert r.status_code == 200 and r.content == payload
    assert c.put(f"/lb/{ep}/echo").status_code == 405  # the worker's own answer


def test_websocket_through_the_proxy(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c)
    worker = c.get(f"/lb/{ep}/hello", timeout=90).headers["x-runpod-worker-id"]

    async def talk() -> list[str]:
        url = f"ws://127.0.0.1:{server.port}/lb/{ep}/ws"
        async with connect(url, additional_headers={"Authorization": f"Bearer {server.user_key}"},
                           open_timeout=60) as ws:
            assert ws.response.headers["x-runpod-worker-id"] == worker
            out = []
            for word in ("one", "two", "three"):
                await ws.send(word)
                out.append(await ws.recv())
            return out

    assert asyncio.run(talk()) == [f"{worker}: one", f"{worker}: two", f"{worker}: three"]

    async def refused() -> int:
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/lb/{ep}/ws"):
                return 0
        except InvalidStatus as err:  # the handshake's refusal
            return err.response.status_code

    assert asyncio.run(refused()) == 401


def test_concurrent_requests_scale_up_and_spread_least_in_flight(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c, per_worker=2)
    # 6 requests in flight at 2 per worker: REQUEST_COUNT wants 3 workers.
    results: list[httpx.Response] = []

    def call() -> None:
        with server.client() as own:
            results.append(own.get(f"/lb/{ep}/sleep", params={"s": 4}, timeout=120))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    ids = idle_workers(c, ep, 0) or []
    wait_for(lambda: len(live(c, ep)) >= 3, 60, "3 workers for 6 requests in flight")
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results)
    workers = idle_workers(c, ep, 3)
    # Many concurrent short requests: each worker takes its share (least in flight).
    counts: Counter[str] = Counter()

    async def burst() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers={
                "Authorization": f"Bearer {server.user_key}"}) as ac:
            answers = await asyncio.gather(*(ac.get(f"/lb/{ep}/sleep", params={"s": 0.3})
                                             for _ in range(30)))
        for a in answers:
            assert a.status_code == 200, a.text
            counts[a.headers["x-runpod-worker-id"]] += 1

    asyncio.run(burst())
    assert set(counts) <= set(workers) and len(counts) == 3, (counts, ids)
    assert min(counts.values()) >= 5, counts


def test_affinity_soft_and_strict(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c, workers={"min": 2, "max": 2})
    a, b = idle_workers(c, ep, 2)[:2]
    for wid in (a, b, a):
        r = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": wid})
        assert r.headers["x-runpod-worker-id"] == wid
        r = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": f"strict {wid}"})
        assert r.headers["x-runpod-worker-id"] == wid
    # A soft preference for an unknown worker is served by another; a strict one is not.
    assert c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": "nosuch"}).status_code == 200
    gone = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": "strict nosuch"})
    assert gone.status_code == 404 and gone.json()["error"] == "affinity_worker_gone"
    bad = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": "strict a b"})
    assert bad.status_code == 400


def test_an_unhealthy_worker_is_taken_out_and_replaced(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c, workers={"min": 1, "max": 1})
    [sick] = idle_workers(c, ep, 1)
    r = c.post(f"/lb/{ep}/sick", headers={"X-Runpod-Worker-Id": f"strict {sick}"})
    assert r.status_code == 200 and r.json()["worker"] == sick
    # Its health check now answers 500: out of rotation, then replaced by a new worker.
    [fresh] = wait_for(lambda: (ids := idle_workers(c, ep, 1)) and sick not in ids and ids,
                       60, "a replacement worker")
    r = c.get(f"/lb/{ep}/hello", timeout=60)
    assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == fresh


def test_limits_auth_and_queue_endpoints(server: LiveServer) -> None:
    c = server.client()
    ep = make_lb(c, workers={"min": 1, "max": 1})
    idle_workers(c, ep, 1)
    # Bodies over the limit (1 MB here; RunPod's 30 MB by default), sized or chunked.
    big = b"x" * 1_500_000
    r = c.post(f"/lb/{ep}/echo", content=big)
    assert r.status_code == 413 and "error" in r.json()

    def chunks() -> Iterator[bytes]:
        for _ in range(15):
            yield b"y" * 100_000

    r = c.post(f"/lb/{ep}/echo", content=chunks())
    assert r.status_code == 413, r.text
    assert c.post(f"/lb/{ep}/echo", content=b"z" * 900_000).status_code == 200
    # The key is checked as everywhere; another user's endpoint is not found.
    assert httpx.get(f"{server.url}/lb/{ep}/hello").status_code == 401
    other = server.client(server.other_key).get(f"/lb/{ep}/hello")
    assert other.status_code == 404
    # A queue endpoint's load-balancer path is refused as RunPod refuses it.
    q = c.post("/v2/serverless", json={
        "name": "q", "type": "QUEUE", "image": f"local:{WORKER_DIR}", "args": "python app.py",
        "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}).json()
    r = c.get(f"/lb/{q['id']}/anything")
    assert r.status_code == 400 and r.json() == {"error": "not allowed for QB API"}
    # ... and a load-balancing endpoint takes no jobs.
    r = c.post(f"/v2/{ep}/run", json={"input": {}})
    assert r.status_code == 400 and "not allowed for LB API" in r.json()["error"]
    # With the operator's wildcard domain, {id}.<domain> by Host is the same endpoint.
    r = c.get(f"/v2/serverless/{ep}")
    assert r.json()["requestUrls"]["base"] == f"http://{ep}.lb.localhost"
    r = c.get("/hello", headers={"Host": f"{ep}.lb.localhost:{server.port}"})
    assert r.status_code == 200 and "x-runpod-worker-id" in r.headers
    assert r.json()["headers"]["x-forwarded-host"] == f"{ep}.lb.localhost:{server.port}"


def test_short_waits_no_workers_strict_timeout_and_strict_resume(tmp_path: Path) -> None:
    """With a 1 s wait for a worker: 503 when none comes, 400 worker_timeout for a strict
    request to a worker that is not ready; a parked worker woken by strict-resume, and by
    any request (FlashBoot resumes on arrival, as for queue endpoints); with a 2 s limit on a
    request, 524 for one the worker has not answered by then."""
    srv = fast_server(tmp_path, RUNPLANE_LIMITS=LIMITS, RUNPLANE_LB=json.dumps(
        {**LB, "wait_for_worker_s": 1.0, "request_timeout_s": 2.0}))
    try:
        c = srv.client()
        none = make_lb(c, workers={"min": 0, "max": 0})
        r = c.get(f"/lb/{none}/hello")
        assert r.status_code == 503 and r.json() == {"error": "no workers available"}
        slow = make_lb(c, workers={"min": 1, "max": 1}, load_seconds="600")
        [loading] = wait_for(lambda: [w["id"] for w in live(c, slow)], 30, "a loading worker")
        r = c.get(f"/lb/{slow}/hello", headers={"X-Runpod-Worker-Id": f"strict {loading}"})
        assert r.status_code == 400 and r.json()["error"] == "worker_timeout", r.text
        assert c.get(f"/lb/{slow}/hello").status_code == 503  # answering 204: not ready
        ep = make_lb(c, workers={"min": 0, "max": 1, "idleTimeout": 1}, flashboot="FLASHBOOT")
        # Each try waits 1 s and asks for a worker; one starts and then serves.
        r = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello")).status_code == 200 and r, 60,
                     "the first worker")
        worker = r.headers["x-runpod-worker-id"]

        def parked() -> int:
            return c.get(f"/v2/{ep}/health").json()["workers"].get("parked", 0)

        # Idle past its idleTimeout with FlashBoot: parked, not stopped.
        wait_for(lambda: parked() == 1, 30, "the worker parked")
        r = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": f"strict-resume {worker}"})
        assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == worker
        assert parked() == 0
        wait_for(lambda: parked() == 1, 30, "the worker parked again")
        r = c.get(f"/lb/{ep}/hello")
        assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == worker
        # Past the processing limit (RunPod's 5.5 min; 2 s here) before the worker answers.
        r = c.get(f"/lb/{ep}/sleep", params={"s": 5})
        assert r.status_code == 524 and r.json() == {"error": "request timed out"}
    finally:
        srv.stop()


def test_a_client_that_hangs_up_while_waiting_is_no_longer_demand(tmp_path: Path) -> None:
    srv = fast_server(tmp_path, RUNPLANE_LB=json.dumps(LB), RUNPLANE_LIMITS=LIMITS)
    try:
        c = srv.client()
        ep = make_lb(c, workers={"min": 0, "max": 0})  # nothing can start: requests wait

        def waiting() -> int:
            return c.get(f"/v2/{ep}/health").json()["jobs"]["inQueue"]

        seen: list[int] = []

        def watch() -> None:
            time.sleep(0.7)
            seen.append(waiting())

        t = threading.Thread(target=watch)
        t.start()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{srv.url}/lb/{ep}/hello", timeout=1.5,
                      headers={"Authorization": f"Bearer {srv.user_key}"})
        t.join()
        assert seen == [1]  # while it waited, /health counted it as queued
        wait_for(lambda: waiting() == 0, 10, "the hung-up request to stop waiting")
    finally:
        srv.stop()
