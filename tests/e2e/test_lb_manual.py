"""A manual worker (``runplane worker run``) of a load-balancing endpoint, end to end: a real
``runplane serve``, the real CLI running the example FastAPI worker (``examples/lb_worker``)
as a subprocess, its requests through the WebSocket tunnel the CLI opens (the server never
dials an address a user names), clients through ``/lb/{id}/...``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import fast_server, wait_for

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parents[2] / "examples" / "lb_worker" / "app.py"
LIMITS = json.dumps({"rest_v2_per_minute": 1_000_000, "rest_v2_per_hour": 1_000_000,
                     "creates_per_minute": 10_000})
LB = {"wait_for_worker_s": 5, "max_body_bytes": 3_000_000, "unhealthy_after": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = fast_server(tmp_path_factory.mktemp("lbm"), RUNPLANE_LB=json.dumps(LB),
                      RUNPLANE_LIMITS=LIMITS)
    try:
        yield srv
    finally:
        srv.stop()


def make_lb(c: httpx.Client) -> str:
    """A LOAD_BALANCER endpoint that never starts a worker of its own (workers.max 0): every
    request it serves is the manual worker's."""
    r = c.post("/v2/serverless", json={
        "name": "lb-manual", "type": "LOAD_BALANCER", "image": f"local:{APP.parent}",
        "args": f"{sys.executable} app.py", "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
        "workers": {"min": 0, "max": 0, "idleTimeout": 30},
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 4}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def start_cli(srv: LiveServer, ep: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runplane", "worker", "run", "--endpoint", ep,
         "--url", srv.url, "--api-key", srv.user_key, "--", sys.executable, str(APP)],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "HOST": "127.0.0.1", "LOAD_SECONDS": "0.5",
             "PYTHONUNBUFFERED": "1"})


def manual_workers(c: httpx.Client, ep: str) -> list[dict[str, Any]]:
    return [w for w in c.get(f"/v2/{ep}/workers").json() if w["manual"]]


def test_manual_worker_serves_through_its_tunnel(server: LiveServer, tmp_path: Path) -> None:
    c = server.client()
    ep = make_lb(c)
    cli = start_cli(server, ep, tmp_path / "cli.log")
    try:
        # It is routable once its own health check said 200 (it says 204 while "loading").
        worker = wait_for(lambda: [w["id"] for w in manual_workers(c, ep)
                                   if w["status"] == "IDLE"], 60, "the manual worker ready")[0]

        r = c.get(f"/lb/{ep}/hello?x=1", timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["x-runpod-worker-id"] == worker
        body = r.json()
        assert body["worker"] == worker  # the app got RUNPOD_POD_ID = its worker id
        assert "authorization" not in body["headers"]  # the caller's key stays here
        assert body["headers"]["x-forwarded-for"] == "127.0.0.1"

        # Strict affinity to the manual worker works like for any worker.
        r = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": f"strict {worker}"})
        assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == worker

        # A request body passes through, sized (1 MB: many tunnel frames) and chunked.
        data = os.urandom(1_000_000)
        r = c.post(f"/lb/{ep}/echo", content=data)
        assert r.status_code == 200 and r.content == data
        assert r.headers["x-echo-size"] == str(len(data))

        def pieces() -> Iterator[bytes]:
            yield b"a" * 100_000
            yield b"b" * 5

        r = c.post(f"/lb/{ep}/echo", content=pieces())
        assert r.status_code == 200 and r.content == b"a" * 100_000 + b"b" * 5

        # Over the body limit: 413, as for any worker.
        r = c.post(f"/lb/{ep}/echo", content=b"x" * 3_000_001)
        assert r.status_code == 413

        # A stream arrives in pieces as the app writes them: the first event is here
        # before the app wrote the last one (not buffered to the end).
        received: list[tuple[float, bytes]] = []
        with c.stream("GET", f"/lb/{ep}/stream?n=4&delay=0.3") as resp:
            assert resp.status_code == 200
            assert resp.headers["x-runpod-worker-id"] == worker
            assert resp.headers["content-type"].startswith("text/event-stream")
            for chunk in resp.iter_raw():
                received.append((time.time(), chunk))
        text = b"".join(ch for _, ch in received).decode()
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
        assert [e["i"] for e in events] == [0, 1, 2, 3]
        assert len(received) >= 2
        assert received[0][0] < events[-1]["t"]

        # Requests share the one tunnel: one is answered while a stream is still open.
        with c.stream("GET", f"/lb/{ep}/stream?n=3&delay=0.5") as resp:
            chunks = resp.iter_raw()
            first = next(chunks)
            assert b'"i": 0' in first
            hello = c.get(f"/lb/{ep}/hello")
            answered_at = time.time()
            assert hello.status_code == 200
            rest = b"".join(chunks).decode()
        later = [json.loads(line[6:]) for line in rest.splitlines() if line.startswith("data: ")]
        assert later and later[-1]["i"] == 2 and later[-1]["t"] > answered_at

        # Another user's key: the endpoint is not theirs.
        r = server.client(server.other_key).get(f"/lb/{ep}/hello")
        assert r.status_code == 404

        # The tunnel takes only the worker's own credential.
        url = f"ws://127.0.0.1:{server.port}/v2/{ep}/workers/{worker}/tunnel"
        for key, status in ((server.user_key, 401), (None, 401)):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, additional_headers={"Authorization": key} if key else {},
                        open_timeout=10)
            assert refused.value.response.status_code == status

        # A WebSocket to the endpoint routed to a manual worker: refused clearly.
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{server.port}/lb/{ep}/ws",
                    additional_headers={"Authorization": f"Bearer {server.user_key}"},
                    open_timeout=10)
        assert refused.value.response.status_code == 501
        assert b"not supported" in refused.value.response.body

        # Stopped (SIGTERM), the worker is retired and gets no more requests.
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=30) in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 143)
        r = c.get(f"/lb/{ep}/hello", headers={"X-Runpod-Worker-Id": f"strict {worker}"})
        assert r.status_code == 404 and r.json()["error"] == "affinity_worker_gone"
        r = c.get(f"/lb/{ep}/hello")
        assert r.status_code == 503 and r.json() == {"error": "no workers available"}
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(timeout=10)


def test_registration_names_the_tunnel_and_it_checks_the_endpoint(server: LiveServer) -> None:
    """A manual worker of a load-balancing endpoint is told its tunnel and health path; its
    credential opens no other endpoint's tunnel."""
    c = server.client()
    ep = make_lb(c)
    r = c.post(f"/v2/{ep}/workers", json={})
    assert r.status_code == 201, r.text
    lb = r.json()["loadBalancer"]
    assert lb == {"healthCheckPath": "/ping",
                  "tunnel": f"/v2/{ep}/workers/{r.json()['id']}/tunnel"}
    # Another endpoint's path with this credential: refused.
    other = make_lb(c)
    url = f"ws://127.0.0.1:{server.port}/v2/{other}/workers/{r.json()['id']}/tunnel"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"Authorization": r.json()["token"]}, open_timeout=10)
    assert refused.value.response.status_code == 403
    c.delete(f"/v2/{ep}/workers/{r.json()['id']}")


def test_bad_health_takes_it_out_of_rotation(server: LiveServer, tmp_path: Path) -> None:
    """Its app's health check answering 500 (reported over the tunnel) takes the manual
    worker out of rotation: with no other worker, requests get RunPod's 503."""
    c = server.client()
    ep = make_lb(c)
    cli = start_cli(server, ep, tmp_path / "cli.log")
    try:
        wait_for(lambda: [w for w in manual_workers(c, ep) if w["status"] == "IDLE"], 60,
                 "the manual worker ready")
        assert c.post(f"/lb/{ep}/sick").status_code == 200
        r = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello")).status_code == 503 and r, 60,
                     "the sick worker out of rotation")
        assert r.json() == {"error": "no workers available"}
    finally:
        os.killpg(cli.pid, signal.SIGTERM)
        cli.wait(timeout=30)


def test_the_tunnel_opens_again_after_a_server_restart(tmp_path: Path) -> None:
    """The server restarts under a running manual worker: the CLI opens its tunnel again and
    the worker serves again under its id."""
    srv = fast_server(tmp_path / "srv", RUNPLANE_LB=json.dumps(LB), RUNPLANE_LIMITS=LIMITS)
    cli = None
    try:
        c = srv.client()
        ep = make_lb(c)
        cli = start_cli(srv, ep, tmp_path / "cli.log")
        worker = wait_for(lambda: [w["id"] for w in manual_workers(c, ep)
                                   if w["status"] == "IDLE"], 60, "the manual worker ready")[0]
        assert c.get(f"/lb/{ep}/hello").headers["x-runpod-worker-id"] == worker
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)  # the server only: the CLI and its app stay
        srv.proc.wait(timeout=30)
        srv.start()
        c = srv.client()
        r = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello")).status_code == 200 and r, 60,
                     "the manual worker serving again")
        assert r.headers["x-runpod-worker-id"] == worker
        assert cli.poll() is None
    finally:
        if cli is not None and cli.poll() is None:
            os.killpg(cli.pid, signal.SIGTERM)
            cli.wait(timeout=30)
        srv.stop()
