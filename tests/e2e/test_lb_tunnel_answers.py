"""What a manual load-balancing worker's tunnel may pass to a caller, and what the caller may
pass to it, on a real server (issue 23, finding 9). The worker end is this test's own client
of the tunnel protocol (``lb.tunnel``), so it can answer what a real app might but the CLI's
HTTP client never would: a 101, a header past latin-1, a header value with CR/LF."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from runplane.lb import tunnel as t
from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import fast_server, wait_for
from tests.e2e.test_lb_manual import LB, LIMITS, make_lb, manual_workers

pytestmark = pytest.mark.e2e

# path -> (status, headers) the fake worker answers; "ok" for any other.
ANSWERS: dict[str, tuple[int, list[list[str]]]] = {
    "/switch": (101, [["Upgrade", "websocket"], ["Connection", "Upgrade"]]),
    "/early": (103, [["Link", "</a.css>; rel=preload"]]),
    "/unicode": (200, [["X-Name", "caf\u00e9 \u2603"], ["X-Ok", "fine"]]),
    "/crlf": (200, [["X-Evil", "a\r\nSet-Cookie: stolen=1"], ["X-Ok", "fine"]]),
    "/badname": (200, [["X Bad", "v"], ["X-Ok", "fine"]]),
}


class FakeWorker:
    """A manual worker's end of the tunnel: reports itself healthy and answers each request
    from ANSWERS, recording the request heads it is sent."""

    def __init__(self, server: LiveServer, ep: str) -> None:
        c = server.client()
        r = c.post(f"/v2/{ep}/workers", json={})
        assert r.status_code == 201, r.text
        self.id, token = r.json()["id"], r.json()["token"]
        self.heads: list[t.RequestHead] = []
        url = f"ws://127.0.0.1:{server.port}" + r.json()["loadBalancer"]["tunnel"]
        self._open = contextlib.ExitStack()
        self.ws = self._open.enter_context(
            connect(url, additional_headers={"Authorization": token}, open_timeout=10))
        self.ws.send(t.health(200))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                try:
                    message = self.ws.recv(timeout=0.5)
                except TimeoutError:
                    self.ws.send(t.health(200))
                    continue
                frame = t.decode(message)
                if frame.kind != t.HEAD:
                    continue
                head = t.parse_request_head(frame.payload)
                self.heads.append(head)
                status, headers = ANSWERS.get(head.path, (200, [["Content-Length", "2"]]))
                payload = json.dumps({"status": status, "headers": headers}).encode()
                self.ws.send(t.encode(t.HEAD, frame.rid, payload))
                self.ws.send(t.encode(t.BODY, frame.rid, b"ok"))
                self.ws.send(t.encode(t.END, frame.rid))
        except ConnectionClosed:
            return

    def close(self) -> None:
        self._open.close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = fast_server(tmp_path_factory.mktemp("lbt"), RUNPLANE_LB=json.dumps(LB),
                      RUNPLANE_LIMITS=LIMITS)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def lb(server: LiveServer) -> Iterator[tuple[str, FakeWorker]]:
    c = server.client()
    ep = make_lb(c)
    worker = FakeWorker(server, ep)
    try:
        wait_for(lambda: [w for w in manual_workers(c, ep) if w["status"] == "IDLE"], 30,
                 "the fake manual worker in rotation")
        yield ep, worker
    finally:
        worker.close()


def _get(server: LiveServer, ep: str, path: str, **kw: Any) -> httpx.Response:
    with server.client() as c:
        return c.get(f"/lb/{ep}{path}", **kw)


def test_the_callers_forwarded_headers_do_not_reach_the_worker(
        server: LiveServer, lb: tuple[str, FakeWorker]) -> None:
    ep, worker = lb
    r = _get(server, ep, "/who", headers={
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"})
    assert r.status_code == 200, r.text
    seen = [(k.lower(), v) for k, v in worker.heads[-1].headers]
    forwarded = sorted(k for k, _ in seen if k.startswith("x-forwarded")
                       or k in ("forwarded", "x-real-ip"))
    # runplane's own, once each (the address and scheme are the connection's as uvicorn
    # gives them: whether it may believe a proxy's is its own setting, not the LB's).
    assert forwarded == ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]
    assert dict(seen)["x-forwarded-host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("path", ["/switch", "/early"])
def test_an_interim_answer_is_a_502_not_a_protocol_switch(
        server: LiveServer, lb: tuple[str, FakeWorker], path: str) -> None:
    ep, _ = lb
    r = _get(server, ep, path)
    assert r.status_code == 502, r.text
    assert "cannot pass on" in r.json()["error"]
    assert _get(server, ep, "/after").status_code == 200  # the tunnel serves on


@pytest.mark.parametrize("path", ["/unicode", "/crlf", "/badname"])
def test_a_header_http_cannot_carry_is_dropped(server: LiveServer, lb: tuple[str, FakeWorker],
                                               path: str) -> None:
    ep, _ = lb
    r = _get(server, ep, path)
    assert r.status_code == 200, r.text
    assert r.content == b"ok" and r.headers["x-ok"] == "fine"
    assert "x-name" not in r.headers and "x-evil" not in r.headers
    assert "set-cookie" not in r.headers and "x bad" not in r.headers
