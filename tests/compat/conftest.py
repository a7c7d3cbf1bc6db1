"""A live ``runplane serve`` shared by a module's tests, and real SDK workers attached to it
with ``runplane worker run`` (so the CLI is exercised too)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer, make_live_server

HANDLERS = Path(__file__).parent / "handlers.py"

# Short protocol timings so heartbeat loss and long-polls resolve within seconds.
FAST_ENV = {
    "RUNPLANE_JOB_TAKE_HOLD_S": "3",
    "RUNPLANE_WORKER_PING_INTERVAL_MS": "1000",
    "RUNPLANE_WORKER_HEARTBEAT_TIMEOUT_S": "4",
    "RUNPLANE_JOB_LOST_GRACE_S": "3",
    "RUNPLANE_BROKER_SWEEP_INTERVAL_S": "0.2",
    "RUNPLANE_CONTROLLER": '{"enabled": false}',
}


@dataclass
class Workers:
    """Real SDK workers through ``runplane worker run``; ``accelerated`` says whether runplane's
    SDK accelerator is on for them (the ``workers`` fixture runs each test both ways)."""

    srv: LiveServer
    tmp: Path
    accelerated: bool = True
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, endpoint_id: str, kind: str, python: str = sys.executable,
              script: Path = HANDLERS, **env: str) -> subprocess.Popen:
        """A worker running ``script`` (``handlers.py KIND`` by default; another handler
        file, e.g. an example's, with ``kind=""``)."""
        log = open(self.tmp / f"worker-{kind or script.parent.name}-{len(self.procs)}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "runplane", "worker", "run", "--endpoint", endpoint_id,
             "--url", self.srv.url, "--api-key", self.srv.user_key, "--",
             python, str(script), *([kind] if kind else [])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "RUNPOD_LOG_LEVEL": "WARN", "RECORD_FILE": str(self.tmp / "record.jsonl"),
                 "PYTHONUNBUFFERED": "1", "RUNPLANE_ACCELERATOR": "1" if self.accelerated else "0",
                 **env},
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def records(self) -> list[dict]:
        path = self.tmp / "record.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                self.kill(p)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_live_server(tmp_path_factory.mktemp("compat"), **FAST_ENV)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(params=["accelerated", "sdk-loop"])
def workers(live: LiveServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    w = Workers(live, tmp_path, accelerated=request.param == "accelerated")
    try:
        yield w
    finally:
        w.stop_all()


@pytest.fixture
def new_endpoint(live: LiveServer) -> Callable[..., str]:
    def make(**overrides: object) -> str:
        with live.client() as c:
            r = c.post("/v1/templates", json={"name": f"t-{time.monotonic_ns()}",
                                              "imageName": "runplane/local:.", "isServerless": True})
            assert r.status_code == 200, r.text
            body = {"templateId": r.json()["id"], "name": "compat", **overrides}
            r = c.post("/v1/endpoints", json=body)
            assert r.status_code == 200, r.text
            return r.json()["id"]

    return make


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status(live: LiveServer, endpoint_id: str, job_id: str) -> dict:
    r = httpx.get(f"{live.url}/v2/{endpoint_id}/status/{job_id}",
                  headers={"Authorization": f"Bearer {live.user_key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def worker_pods(live: LiveServer, endpoint_id: str) -> list[dict]:
    """The endpoint's workers as includeWorkers shows them."""
    with live.client() as c:
        r = c.get(f"/v1/endpoints/{endpoint_id}", params={"includeWorkers": "true"})
        assert r.status_code == 200, r.text
        return r.json()["workers"]
