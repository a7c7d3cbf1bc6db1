"""Item 7 of issue 14: connections that send nothing are closed.

A server limited to 256 descriptors (as a systemd unit's 1,024 would be, scaled down) is
held open by 300 connections that never send a request and by a slow-loris one sending its
headers a byte at a time: each is closed once it is past the head deadline (1 s here), so a
new client is served within seconds, while a request being served (a held ``/runsync``) is
never cut.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import make_live_server
from tests.e2e.scaling_kit import make_endpoint
from tests.faults.kit import FAST_ENV

pytestmark = pytest.mark.e2e


def _closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_slow_connections_are_closed_and_new_clients_served(tmp_path: Path) -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("needs util-linux prlimit to give the server a small descriptor limit")
    srv = make_live_server(tmp_path, **FAST_ENV, RUNPLANE_HEAD_TIMEOUT_S="1")
    srv.launcher = ["prlimit", "--nofile=256:256", "--"]
    srv.start()
    idle: list[socket.socket] = []
    try:
        with srv.client() as c:
            eid, _ = make_endpoint(c, tmp_path, workersMax=0)  # jobs wait: /runsync holds
        held: dict[str, httpx.Response] = {}

        def hold() -> None:
            with srv.client() as c:
                held["r"] = c.post(f"/v2/{eid}/runsync", params={"wait": 4000},
                                   json={"input": {}}, timeout=30)

        holder = threading.Thread(target=hold)
        holder.start()
        time.sleep(0.5)
        for _ in range(300):
            try:
                idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            except OSError:
                break
        loris = socket.create_connection(("127.0.0.1", srv.port))
        loris.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(6):  # 1.8 s of a byte every 0.3 s: past the 1 s head deadline
            try:
                loris.sendall(b"X")
            except OSError:
                break
            time.sleep(0.3)
        assert _closed_by_peer(loris, 3), "the slow-loris connection was not closed"
        assert sum(_closed_by_peer(s, 3) for s in idle[:20]) == 20, "idle ones not closed"
        t0 = time.monotonic()
        r = httpx.get(f"{srv.url}/healthz", timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 < 5
        holder.join(timeout=30)
        # The held /runsync was served to its end (4 s), not cut at the head deadline.
        assert held["r"].status_code == 200 and held["r"].json()["status"] == "IN_QUEUE"
    finally:
        for s in idle:
            s.close()
        srv.stop()
