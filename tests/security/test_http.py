"""The smaller doors: /metrics closed without an admin key, the dashboard and the API docs
confined by their headers, bodies refused the way they should be, job ids unguessable, a
manual worker's handler never handed its user's key; and what a connection may hold of the
server (slow bodies, bodies without a key, connections per address, forged forwarded
addresses)."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import refused, serve, snapshot

HEADER_CASES = [
    ("/", "content-security-policy", "script-src 'self'"),
    ("/", "x-frame-options", "DENY"),
    ("/ui/app.js", "content-security-policy", "frame-ancestors 'none'"),
    ("/v1/docs", "content-security-policy", "script-src 'self';"),
    ("/v1/docs", "x-frame-options", "DENY"),
]


@pytest.mark.parametrize(("path", "header", "value"), HEADER_CASES)
def test_pages_holding_a_key_are_confined(path: str, header: str, value: str,
                                          live: LiveServer) -> None:
    r = httpx.get(live.url + path)
    assert r.status_code == 200 and value in r.headers[header]


def test_docs_load_nothing_from_another_host(live: LiveServer) -> None:
    """Swagger UI's files are served from here: a CDN host in the policy would let any of
    its files run beside the dashboard's key."""
    r = httpx.get(live.url + "/v1/docs")
    assert "http" not in r.headers["content-security-policy"] and "//" not in r.text


def test_metrics_need_an_admin_key(live: LiveServer, alice: httpx.Client,
                                   admin: httpx.Client) -> None:
    refused(httpx.get(live.url + "/metrics"), 401)
    refused(alice.get("/metrics"), 403)
    assert admin.get("/metrics").status_code == 200


def test_bodies(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(alice)

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"x" * 100_000

    refused(alice.post("/v1/templates", content=chunks()), 413)
    r = alice.post("/v1/templates", content=b'{"name": "t", "imageName": "ubuntu:22.04"}',
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 400, r.text  # text/plain is not read as JSON
    r = alice.delete("/v1/templates")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    r = alice.put("/v2/someendpoint/run")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert snapshot(alice) == before


def test_job_ids_are_random_uuids(alice: httpx.Client) -> None:
    t = alice.post("/v1/templates", json={"name": "ids", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    ep = alice.post("/v1/endpoints", json={"templateId": t["id"], "workersMax": 0}).json()["id"]
    ids = [alice.post(f"/v2/{ep}/run", json={"input": {}}).json()["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i.removesuffix("-u1")).version == 4 for i in ids)
    alice.post(f"/v2/{ep}/purge-queue")


def test_a_manual_workers_handler_never_sees_its_users_key(live: LiveServer,
                                                           alice: httpx.Client) -> None:
    t = alice.post("/v1/templates", json={"name": "manual", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    ep = alice.post("/v1/endpoints", json={"templateId": t["id"], "workersMax": 0}).json()["id"]
    show = "import os; print('KEYS', os.environ.get('RUNPLANE_API_KEY'), " \
           "os.environ.get('RUNPOD_API_KEY'), bool(os.environ.get('RUNPOD_AI_API_KEY')))"
    out = subprocess.run(
        [sys.executable, "-m", "runplane", "worker", "run", "--endpoint", ep, "--url", live.url,
         "--", sys.executable, "-c", show],
        env={"PATH": "/usr/bin:/bin", "RUNPLANE_API_KEY": live.user_key,
             "RUNPOD_API_KEY": live.user_key}, capture_output=True, text=True, timeout=60,
        check=False)
    assert "KEYS None None True" in out.stdout, out.stdout + out.stderr
    assert live.user_key not in out.stdout


# Connections (issue 23, findings 2 and 7): what a caller may hold of the server, with a key
# or without one, and whose word about its address is believed. Each case runs its own
# server, so that its memory and its per-address counts are its own.

def _open(port: int, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(head.encode())
    return s


def _post_head(path: str, length: int, key: str | None = None) -> str:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: runplane\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{auth}\r\n")


def _answers(socks: list[socket.socket], timeout: float) -> list[bytes | None]:
    """The status line each connection is answered with within ``timeout`` (None: none
    yet), read without blocking on any one of them."""
    got: dict[int, bytearray] = {i: bytearray() for i in range(len(socks))}
    done: dict[int, bytes | None] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(socks) and time.monotonic() < deadline:
        waiting = {socks[i]: i for i in got if i not in done}
        readable, _, _ = select.select(list(waiting), [], [], 0.2)
        for s in readable:
            i = waiting[s]
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            got[i] += chunk
            if b"\r\n" in got[i]:
                done[i] = bytes(got[i].split(b"\r\n", 1)[0])
            elif not chunk:
                done[i] = None
    return [done.get(i) for i in range(len(socks))]


def _closed_by_server(s: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``s`` within ``timeout`` (what it still sends is read)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def _push(socks: list[socket.socket], total: int, seconds: float) -> None:
    """Send up to ``total`` body bytes on each connection, never blocking on one: as much as
    the server (or the kernel's buffers) takes within ``seconds``."""
    chunk = b"x" * 65536
    sent = dict.fromkeys(range(len(socks)), 0)
    deadline = time.monotonic() + seconds
    while sent and time.monotonic() < deadline:
        progress = False
        for i in list(sent):
            try:
                n = socks[i].send(chunk[:total - sent[i]], socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                del sent[i]
                continue
            progress = True
            sent[i] += n
            if sent[i] >= total:
                del sent[i]
        if not progress:
            time.sleep(0.05)


def _rss(srv: LiveServer) -> int:
    assert srv.proc is not None
    return psutil.Process(srv.proc.pid).memory_info().rss


def test_a_body_without_a_key_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """100 callers without a key each start a 1 MB body on /v1, REST v2 and the job API and
    stall after ~900 KB: each is answered 401 at once, without the server reading or holding
    the body (its memory grows by a few MB, not ~60 MB), and each connection is closed once
    its grace (2 s here) is over."""
    srv = serve(tmp_path, RUNPLANE_BODY_GRACE_S="2")
    socks: list[socket.socket] = []
    try:
        with srv.client() as c:  # warm every path once, so start-up's own growth is done
            t = c.post("/v1/templates", json={"name": "warm", "imageName": "ubuntu:22.04",
                                              "isServerless": True}).json()
            ep = c.post("/v1/endpoints", json={"templateId": t["id"],
                                               "workersMax": 0}).json()["id"]
            c.post(f"/v2/{ep}/run", json={"input": {"x": "y" * 100_000}})
            c.post("/v2/templates", json={"name": "warm2", "imageName": "ubuntu:22.04"})
        time.sleep(0.5)
        before = _rss(srv)
        paths = ["/v1/templates", "/v2/templates", f"/v2/{ep}/run"]
        for i in range(100):
            socks.append(_open(srv.port, _post_head(paths[i % 3], 1_000_000)))
        answers = _answers(socks, 10)
        _push(socks, 900_000, 8)  # what a server that reads bodies would now hold
        time.sleep(0.5)
        grown = _rss(srv) - before
        assert all(a is not None and b" 401 " in a for a in answers), \
            {a for a in answers if a is None or b" 401 " not in a}
        assert grown < 25_000_000, f"the server grew by {grown:,} bytes"
        assert all(_closed_by_server(s, 5) for s in socks), "connections left open"
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_slow_bodies_are_cut_and_paced_ones_get_through(tmp_path: Path) -> None:
    """With a key, 40 bodies sent a byte every 0.5 s are cut with a 408 once their grace is
    over, as is one sent fast enough but for longer than the cap; a large one sent at a sane
    rate (past the grace) is served."""
    srv = serve(tmp_path, RUNPLANE_BODY_GRACE_S="1", RUNPLANE_BODY_MIN_BYTES_PER_S="1000",
                RUNPLANE_BODY_TIMEOUT_S="5")
    socks: list[socket.socket] = []
    try:
        with srv.client() as c:
            t = c.post("/v1/templates", json={"name": "slow", "imageName": "ubuntu:22.04",
                                              "isServerless": True}).json()
            ep = c.post("/v1/endpoints", json={"templateId": t["id"],
                                               "workersMax": 0}).json()["id"]
        for i in range(40):
            path = f"/v2/{ep}/run" if i % 2 else "/v1/templates"
            socks.append(_open(srv.port, _post_head(path, 100_000, srv.user_key)))
        long = _open(srv.port, _post_head(f"/v2/{ep}/run", 1_000_000, srv.user_key))
        paced = _open(srv.port, _post_head(f"/v2/{ep}/run", 600_000, srv.user_key))
        body = b'{"input": {"x": "' + b"y" * (600_000 - 20) + b'"}}'
        assert len(body) == 600_000
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 4:  # a byte every 0.5 s; 3 KB/s for longer than 5 s
            for s in socks:
                try:
                    s.send(b" ", socket.MSG_DONTWAIT)
                except OSError:
                    pass
            for _ in range(5):
                if sent < len(body):  # ~240 KB/s for 2.5 s: past the grace, well paced
                    paced.sendall(body[sent:sent + 24_000])
                    sent += 24_000
                try:
                    long.send(b" " * 300, socket.MSG_DONTWAIT)
                except OSError:
                    pass
                time.sleep(0.1)
        answers = _answers(socks, 3)
        assert all(a is not None and b" 408 " in a for a in answers), answers
        assert all(_closed_by_server(s, 3) for s in socks)
        assert b" 200 " in (_answers([paced], 5)[0] or b""), "the paced body was not served"
        while time.monotonic() - t0 < 7:  # the long one goes on at 3 KB/s: cut at 5 s
            try:
                long.send(b" " * 300, socket.MSG_DONTWAIT)
            except OSError:
                break
            time.sleep(0.1)
        assert b" 408 " in (_answers([long], 3)[0] or b""), "the long body was not cut"
    finally:
        for s in [*socks, *([long, paced] if "paced" in locals() else [])]:
            s.close()
        srv.stop()


def test_connections_per_address_are_capped(tmp_path: Path) -> None:
    """Past 8 open connections from one address a new one is answered 429 and closed at
    once, unread, while the 8 stay open; once one closes, a new one is served. A connection
    that became a WebSocket gives its place back when it ends."""
    srv = serve(tmp_path, RUNPLANE_MAX_CONNECTIONS_PER_ADDRESS="8")
    held: list[socket.socket] = []
    try:
        for _ in range(8):
            held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        t0 = time.monotonic()
        assert b" 429 " in (_answers([extra], 3)[0] or b"")
        assert _closed_by_server(extra, 2) and time.monotonic() - t0 < 3
        extra.close()
        assert not any(_closed_by_server(s, 0.2) for s in held[:3])  # the 8 are not cut
        held.pop().close()
        time.sleep(0.3)
        upgrade = ("GET /lb/nosuchendpoint/ws HTTP/1.1\r\nHost: runplane\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Authorization: Bearer {srv.user_key}\r\n\r\n")
        for _ in range(4):  # refused in the WebSocket protocol, which then closes
            ws = _open(srv.port, upgrade)
            assert b" 404 " in (_answers([ws], 5)[0] or b"")
            ws.close()
            time.sleep(0.2)
        fresh = _open(srv.port, "GET /healthz HTTP/1.1\r\nHost: runplane\r\n\r\n")
        held.append(fresh)
        assert b" 200 " in (_answers([fresh], 5)[0] or b"")
    finally:
        for s in held:
            s.close()
        srv.stop()


def _bad_keys(url: str, addresses: list[str], source: str = "127.0.0.1") -> list[int]:
    """Statuses of a /v1 request with a wrong key per ``X-Forwarded-For`` address, sent
    from ``source`` (any 127.x address reaches a server on 127.0.0.1)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as c:
        return [c.get(url + "/v1/templates", headers={
            "Authorization": "Bearer wrong-key", "X-Forwarded-For": a}).status_code
            for a in addresses]


def _open_from(source: str, port: int, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall(head.encode())
    return s


def test_a_forged_forwarded_address_changes_nothing(tmp_path: Path) -> None:
    """From loopback (where every container on the host network and every local process
    is), X-Forwarded-For names no one: failed authentications count against the TCP peer
    whatever address each forged header names, so the fourth of a 3-per-minute limit is a
    429; and the connection cap stays the peer's."""
    srv = serve(tmp_path, RUNPLANE_LIMITS=json.dumps({"failed_auth_per_minute": 3}),
                RUNPLANE_MAX_CONNECTIONS_PER_ADDRESS="4")
    held: list[socket.socket] = []
    try:
        forged = [f"203.0.113.{i}" for i in range(1, 5)]
        assert _bad_keys(srv.url, forged) == [401, 401, 401, 429]
        head = "GET /healthz HTTP/1.1\r\nHost: runplane\r\nX-Forwarded-For: 203.0.113.{}\r\n\r\n"
        held = [_open(srv.port, head.format(i)) for i in range(5)]
        answers = _answers(held, 5)
        assert sum(b" 200 " in (a or b"") for a in answers) == 4
        assert sum(b" 429 " in (a or b"") for a in answers) == 1
    finally:
        for s in held:
            s.close()
        srv.stop()


def test_a_trusted_proxy_forwards_its_clients_addresses(tmp_path: Path) -> None:
    """With the proxy named (``trusted_proxies``: 127.0.0.2 here), the address it forwards
    is the client's: each is limited on its own, and the proxy's connections are not capped
    (it limits per client itself). 127.0.0.1, not named, is still not believed."""
    srv = serve(tmp_path, RUNPLANE_LIMITS=json.dumps({"failed_auth_per_minute": 3}),
                RUNPLANE_MAX_CONNECTIONS_PER_ADDRESS="4",
                RUNPLANE_TRUSTED_PROXIES='["127.0.0.2"]')
    held: list[socket.socket] = []
    try:
        clients = [f"203.0.113.{i}" for i in range(1, 5)]
        assert _bad_keys(srv.url, clients, "127.0.0.2") == [401] * 4
        assert _bad_keys(srv.url, ["198.51.100.7"] * 4, "127.0.0.2") == [401, 401, 401, 429]
        assert _bad_keys(srv.url, clients, "127.0.0.1") == [401, 401, 401, 429]
        head = "GET /healthz HTTP/1.1\r\nHost: runplane\r\n\r\n"
        held = [_open_from("127.0.0.2", srv.port, head) for _ in range(8)]
        assert all(b" 200 " in (a or b"") for a in _answers(held, 5))
        direct = [_open_from("127.0.0.1", srv.port, head) for _ in range(5)]
        held += direct
        assert sum(b" 429 " in (a or b"") for a in _answers(direct, 5)) == 1
    finally:
        for s in held:
            s.close()
        srv.stop()
