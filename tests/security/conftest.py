"""A real ``runplane serve`` on the security defaults, attacked by two ordinary users.

The server runs as this test's user (root where the suite runs as root, as
``scripts/serve.sh`` does on a fresh machine) with the shipped ``[security]`` defaults: not
the suite-wide test settings of tests/conftest.py, which open ``local:`` images to everyone.
alice is the victim, bob the attacker; each case names the request, the refusal it expects,
and checks that nothing changed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer, make_live_server

# Fast broker timings so delivery attempts and long-polls end quickly.
FAST = {"RUNPLANE_BROKER": json.dumps({"webhook_retry_delay_s": 0.2, "job_take_hold_s": 1.0}),
        "RUNPLANE_CONTROLLER": json.dumps({"tick_s": 0.2, "stop_grace_s": 1.0})}
# The shipped defaults (tests/conftest.py opened them for the rest of the suite).
DEFAULTS = {"RUNPLANE_SECURITY": "{}"}


def serve(tmp: Path, **env: str) -> LiveServer:
    srv = make_live_server(tmp, **{**FAST, **DEFAULTS, **env})
    srv.start()
    return srv


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = serve(tmp_path_factory.mktemp("security"))
    try:
        yield srv
    finally:
        srv.stop()


# The rate limits out of the way, for modules that send many crafted requests.
GENEROUS = json.dumps({"rest_v2_per_minute": 100_000, "rest_v2_per_hour": 100_000,
                       "creates_per_minute": 100_000})


@pytest.fixture(scope="module")
def generous_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of the module's own on the security defaults but for the rate limits."""
    srv = serve(tmp_path_factory.mktemp("generous"), RUNPLANE_LIMITS=GENEROUS)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def generous(generous_server: LiveServer) -> Iterator[httpx.Client]:
    with generous_server.client(generous_server.user_key) as client:
        yield client


@pytest.fixture(scope="module")
def alice(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(live.user_key) as c:
        yield c


@pytest.fixture(scope="module")
def bob(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(live.other_key) as c:
        yield c


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(live.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def host_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp (0700), so an unprivileged worker can enter
    it: where a ``local:`` image lives and where an attack would leave its marker."""
    path = Path(tempfile.mkdtemp(prefix="runplane-security-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def refused(r: httpx.Response, status: int, field: str | None = None, says: str = "") -> None:
    """The refusal a case expects: status, the field named, and words of its message."""
    assert r.status_code == status, r.text
    body = r.json()
    if field is not None:
        assert body.get("field") == field, body
    assert says.lower() in body["error"].lower(), body


def snapshot(client: httpx.Client) -> dict[str, Any]:
    """Everything a user can list: compared before and after a refused request."""
    return {path: client.get(path).json() for path in (
        "/v1/templates?includeEndpointBoundTemplates=true", "/v1/endpoints", "/v1/pods",
        "/v1/networkvolumes", "/v1/containerregistryauth")}


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Listener:
    """A plain HTTP server on this host that records every request it receives."""

    host: str = "127.0.0.1"
    hits: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                hits.append((self.path, self.rfile.read(size)))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        ThreadingHTTPServer.address_family = family
        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        ThreadingHTTPServer.address_family = socket.AF_INET
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    try:
        yield lst
    finally:
        lst.close()


def python() -> str:
    """The interpreter worker processes run (the venv's: it has the runpod SDK)."""
    return sys.executable


def worker_user_exists() -> bool:
    import pwd

    try:
        pwd.getpwnam("runplane-worker")
    except KeyError:
        return False
    return True


needs_root_and_worker_user = pytest.mark.skipif(
    os.geteuid() != 0 or not worker_user_exists(),
    reason="needs root and the runplane-worker user (scripts/setup_worker_user.sh)")
needs_podman = pytest.mark.skipif(
    shutil.which("podman") is None or os.geteuid() != 0,
    reason="needs root podman (scripts/setup_podman.sh)")
