"""Load-balancing endpoints against the app: the type on each API, the proxy's refusals, and
its forwarding to a worker's route (a real HTTP server on loopback standing in for the worker;
tests/e2e/test_load_balancing.py runs real workers started by the controller)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from runplane.providers.http_ports import HttpAddress, free_port
from tests.conftest import Server, client_for

LB_BODY = {"name": "lb", "type": "LOAD_BALANCER", "image": "local:/tmp", "args": "python app.py",
           "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
           "scaling": {"type": "REQUEST_COUNT", "requestCount": 2}}


async def make_lb(server: Server) -> str:
    async with client_for(server, server.user_key) as c:
        r = await c.post("/v2/serverless", json=LB_BODY)
        assert r.status_code == 201, r.text
        return r.json()["id"]


async def test_the_type_on_each_api(server: Server) -> None:
    ep = await make_lb(server)
    async with client_for(server, server.user_key) as c:
        # Fixed at create: REST v2's update has no type (422 for the unknown field).
        r = await c.patch(f"/v2/serverless/{ep}", json={"type": "QUEUE"})
        assert r.status_code == 422
        assert (await c.get(f"/v2/serverless/{ep}")).json()["type"] == "LOAD_BALANCER"
        # REST v1 reads and updates it, but not away from REQUEST_COUNT.
        r = await c.patch(f"/v1/endpoints/{ep}", json={"scalerType": "QUEUE_DELAY"})
        assert r.status_code == 400 and "REQUEST_COUNT" in r.json()["error"]
        r = await c.patch(f"/v1/endpoints/{ep}", json={"scalerValue": 8})
        assert r.status_code == 200
        assert (await c.get(f"/v2/serverless/{ep}")).json()["scaling"] == {
            "type": "REQUEST_COUNT", "requestCount": 8}
        # GraphQL names it LB.
        r = await c.post("/graphql", json={"query": "query { myself { endpoints { id type } } }"})
        assert {"id": ep, "type": "LB"} in r.json()["data"]["myself"]["endpoints"]
        # v1 creates queue endpoints only (its spec has no type).
        listed = (await c.get("/v2/serverless")).json()["endpoints"]
        assert [e["type"] for e in listed] == ["LOAD_BALANCER"]


@pytest.mark.parametrize("headers, status, error", [
    ({}, 401, "missing API key"),
    ({"Authorization": "Bearer rpl_nope"}, 401, "invalid or revoked"),
])
async def test_unauthenticated(server: Server, headers: dict[str, str], status: int,
                               error: str) -> None:
    ep = await make_lb(server)
    async with client_for(server, None) as anon:
        r = await anon.get(f"/lb/{ep}/x", headers=headers)
    assert r.status_code == status and error in r.json()["error"]


async def test_refusals_before_any_worker(server: Server) -> None:
    ep = await make_lb(server)
    async with client_for(server, server.other_key) as bob:
        assert (await bob.get(f"/lb/{ep}/x")).status_code == 404
    async with client_for(server, server.user_key) as c:
        assert (await c.get("/lb/nosuch/x")).status_code == 404
        r = await c.get(f"/lb/{ep}/x", headers={"X-Runpod-Worker-Id": "strict a b"})
        assert r.status_code == 400 and "x-runpod-worker-id" in r.json()["error"]
        r = await c.post(f"/lb/{ep}/x", content=b"x", headers={"Content-Length": "30000001"})
        assert r.status_code == 413
        r = await c.post(f"/v2/{ep}/runsync", json={"input": {}})
        assert r.status_code == 400 and "not allowed for LB API" in r.json()["error"]
        q = await c.post("/v2/serverless", json={**LB_BODY, "name": "q", "type": "QUEUE"})
        r = await c.get(f"/lb/{q.json()['id']}/x")
        assert r.status_code == 400 and r.json() == {"error": "not allowed for QB API"}


@pytest.fixture(autouse=True)
async def close_the_proxy(server: Server) -> AsyncIterator[None]:
    """The app's lifespan (which closes the proxy's client) does not run under ASGITransport."""
    yield
    await server.app.lb_proxy.close()


@pytest.fixture
async def fake_worker() -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """A real HTTP server on loopback that records what it is sent."""
    seen: list[dict[str, Any]] = []

    async def any_route(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append({"method": request.method, "path": request.raw_path,
                     "headers": {k.lower(): v for k, v in request.headers.items()},
                     "body": body})
        if request.path == "/fail":
            return web.Response(status=500, text="boom")
        if request.path == "/claims":  # a worker claiming to be another
            return web.Response(text="ok", headers={"X-Runpod-Worker-Id": "someone-else"})
        return web.Response(body=body or b"ok", headers={"X-From": "worker"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_route)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, seen
    await runner.cleanup()


def route_to(server: Server, ep: str, port: int) -> str:
    """A healthy route of a registered worker of ``ep`` to ``127.0.0.1:port``."""
    workers = server.services.workers
    wid, _ = workers.register(ep, manual=False)
    w = workers.get(wid)
    assert w is not None
    workers.first_take(w)
    server.services.lb.track(ep, w, HttpAddress("127.0.0.1", port, port), "/ping").probe.healthy = True
    return wid


async def test_forwarding_to_the_workers_own_address(
        server: Server, fake_worker: tuple[int, list[dict[str, Any]]]) -> None:
    port, seen = fake_worker
    ep = await make_lb(server)
    wid = route_to(server, ep, port)
    async with client_for(server, server.user_key) as c:
        r = await c.post(f"/lb/{ep}/v1/a%2Fb?x=1&y=2", content=b"payload",
                         headers={"X-Custom": "yes", "X-Runpod-Worker-Id": wid})
        assert r.status_code == 200 and r.content == b"payload"
        assert r.headers["x-runpod-worker-id"] == wid and r.headers["x-from"] == "worker"
        got = seen[-1]
        assert (got["method"], got["path"]) == ("POST", "/v1/a%2Fb?x=1&y=2")
        assert got["headers"]["x-custom"] == "yes"
        assert "authorization" not in got["headers"]
        assert "x-runpod-worker-id" not in got["headers"]
        assert got["headers"]["host"] == f"127.0.0.1:{port}"  # the worker's, not the client's
        assert got["headers"]["x-forwarded-host"] == "runplane.test"
        # The worker's own errors pass through as they are.
        r = await c.get(f"/lb/{ep}/fail")
        assert r.status_code == 500 and r.text == "boom"
        assert r.headers["x-runpod-worker-id"] == wid
        # The header says who served it: a worker's own is not passed on.
        r = await c.get(f"/lb/{ep}/claims")
        assert r.headers.get_list("x-runpod-worker-id") == [wid]
        # In-flight counts are back to zero, and the worker idles from its last request.
        w = server.services.workers.get(wid)
        assert w is not None and w.requests == 0 and w.idle_since is not None


async def test_a_worker_that_does_not_answer_is_a_502(server: Server) -> None:
    ep = await make_lb(server)
    wid = route_to(server, ep, free_port())  # nothing listens there
    async with client_for(server, server.user_key) as c:
        r = await c.get(f"/lb/{ep}/x")
    assert r.status_code == 502 and r.headers["x-runpod-worker-id"] == wid
    assert "did not answer" in r.json()["error"]


async def test_a_waiting_request_is_demand_and_is_served_once_a_worker_is_ready(
        server: Server, fake_worker: tuple[int, list[dict[str, Any]]]) -> None:
    port, _ = fake_worker
    ep = await make_lb(server)
    wid = route_to(server, ep, port)
    lb = server.services.lb
    route = lb.route_of(wid)
    assert route is not None
    route.probe.healthy = False  # still loading (204)
    async with client_for(server, server.user_key) as c:
        pending = asyncio.ensure_future(c.get(f"/lb/{ep}/hello"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            m = lb.metrics(ep)
            if m is not None and m.in_queue:
                break
        # Waiting: a queued request for the controller (lb.demand), as /health shows it.
        demand = server.services.controller.queues.queue_metrics(ep)
        assert (demand.in_queue, demand.in_queue_normal, demand.in_progress) == (1, 1, 0)
        assert demand.oldest_queued_at is not None
        assert (await c.get(f"/v2/{ep}/health")).json()["jobs"]["inQueue"] == 1
        route.probe.healthy = True  # the health check said 200
        lb.wake(ep)
        r = await pending
        assert r.status_code == 200 and r.headers["x-runpod-worker-id"] == wid
        m = lb.metrics(ep)
        assert m is not None and (m.in_queue, m.in_progress, m.completed) == (0, 0, 1)
    # ... and in /metrics.
    async with client_for(server, server.admin_key) as admin:
        text = (await admin.get("/metrics")).text
    assert f'runplane_lb_requests_total{{endpoint_id="{ep}",outcome="answered"}} 1.0' in text
    assert f'runplane_lb_request_wait_seconds_count{{endpoint_id="{ep}"}} 1.0' in text


async def test_the_callers_forwarded_headers_are_not_passed_on(
        server: Server, fake_worker: tuple[int, list[dict[str, Any]]]) -> None:
    """Only runplane's X-Forwarded-* reach the worker: a caller's own (a forged address)
    were passed beside them."""
    port, seen = fake_worker
    ep = await make_lb(server)
    route_to(server, ep, port)
    async with client_for(server, server.user_key) as c:
        r = await c.get(f"/lb/{ep}/x", headers=[
            ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"), ("Forwarded", "for=6.6.6.6"),
            ("X-Real-IP", "6.6.6.6"), ("X-Forwarded-Port", "1")])
    assert r.status_code == 200, r.text
    got = seen[-1]["headers"]
    assert got["x-forwarded-for"] == "127.0.0.1" and got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == "runplane.test"
    assert not {"forwarded", "x-real-ip", "x-forwarded-port"} & set(got)


async def test_a_worker_that_switches_protocols_is_a_502(server: Server) -> None:
    """A 101 on a plain HTTP request is no answer to pass on (nor a connection to hand
    over): 502 saying so."""
    async def switch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\nnot http")
        await writer.drain()
        await reader.read()  # until the proxy hangs up
        writer.close()

    listener = await asyncio.start_server(switch, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        ep = await make_lb(server)
        wid = route_to(server, ep, port)
        async with client_for(server, server.user_key) as c:
            r = await c.get(f"/lb/{ep}/x")
        assert r.status_code == 502 and r.headers["x-runpod-worker-id"] == wid
        assert "switched protocols" in r.json()["error"]
    finally:
        listener.close()
        await listener.wait_closed()


def test_a_websockets_handshake_drops_them_too() -> None:
    """(The WebSocket proxy builds its own handshake, from the same list.)"""
    from runplane.api.lb import ws as lb_ws
    from runplane.api.lb.headers import FORWARDED

    assert FORWARDED <= lb_ws._DROP
