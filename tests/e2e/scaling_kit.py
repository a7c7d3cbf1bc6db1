"""Helpers for the scaling end-to-end tests: a real ``runplane serve`` with a fast controller,
and a real runpod SDK handler written into the test's directory.

The handler is driven by its job input so one file covers every scenario:

- ``block``: wait until the test creates ``<state>/release`` (holds a worker busy);
- ``hang_first``: on the job's first attempt, sleep until killed;
- ``sleep``: sleep that many seconds (a sync handler that cannot be interrupted).

Every attempt records its pid in ``<state>/<job id>.pid`` and counts itself in
``<state>/<job id>.attempts``, so tests can kill the process running a job and see retries.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.e2e.conftest import LiveServer, make_live_server

T = TypeVar("T")

HANDLER = '''
import os, pathlib, time
import runpod

STATE = pathlib.Path(os.environ["STATE_DIR"])


def handler(job):
    inp, jid = job["input"], job["id"]
    started = time.time()
    mark = STATE / f"{jid}.attempts"
    attempt = int(mark.read_text()) + 1 if mark.exists() else 1
    mark.write_text(str(attempt))
    (STATE / f"{jid}.pid").write_text(str(os.getpid()))
    if inp.get("hang_first") and attempt == 1:
        time.sleep(600)
    if inp.get("block"):
        while not (STATE / "release").exists():
            time.sleep(0.05)
    if inp.get("sleep"):
        time.sleep(inp["sleep"])
    return {"worker": os.environ["RUNPOD_POD_ID"], "pid": os.getpid(), "attempt": attempt,
            "started": started, "echo": inp.get("echo")}


runpod.serverless.start({"handler": handler})
'''

# A template whose worker dies before it can take a job (a crash loop).
CRASHING_HANDLER = "import sys\nprint('cannot start: missing model weights', flush=True)\nsys.exit(3)\n"

# A fast controller: short ticks, short grace periods, a breaker that opens after 2 failures
# and then stays open long enough for a test to look at it.
FAST_ENV = {
    "RUNPLANE_CONTROLLER": json.dumps({
        "tick_s": 0.2, "startup_timeout_s": 60, "stop_grace_s": 2,
        "crash_loop_threshold": 2, "crash_backoff_base_s": 60, "crash_backoff_max_s": 60,
        "overdue_grace_s": 1,
    }),
    "RUNPLANE_WORKER_PING_INTERVAL_MS": "1000",
    "RUNPLANE_BROKER_SWEEP_INTERVAL_S": "0.2",
    "RUNPLANE_JOB_TAKE_HOLD_S": "5",
}


def fast_server(tmp_path: Path, **env: str) -> LiveServer:
    """A started server with the fast controller settings (the caller stops it)."""
    srv = make_live_server(tmp_path, **{**FAST_ENV, **env})
    srv.start()
    return srv


def make_endpoint(c: httpx.Client, tmp_path: Path, code: str = HANDLER,
                  **fields: Any) -> tuple[str, Path]:
    """A local-process template running ``code`` with the real SDK, and a CPU endpoint on it.
    Returns the endpoint id and the handler's state directory."""
    app = tmp_path / "worker"
    state = tmp_path / "state"
    app.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    (app / "handler.py").write_text(code)
    r = c.post("/v1/templates", json={
        "name": f"t-{tmp_path.name}"[:60], "imageName": f"local:{app}", "isServerless": True,
        "dockerStartCmd": [sys.executable, "-u", "handler.py"],
        "env": {"STATE_DIR": str(state), "RUNPOD_LOG_LEVEL": "WARN"},
    })
    assert r.status_code == 200, r.text
    body = {"name": "scaling", "templateId": r.json()["id"], "computeType": "CPU",
            "vcpuCount": 1, "workersMin": 0, "workersMax": 1, "idleTimeout": 1,
            "scalerType": "REQUEST_COUNT", "scalerValue": 1,
            # These tests watch idle workers stop; FlashBoot (on by default) would park them
            # (tests/e2e/test_flashboot.py turns it on).
            "flashboot": False, **fields}
    r = c.post("/v1/endpoints", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"], state


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def run(c: httpx.Client, endpoint_id: str, inp: dict[str, Any], **extra: Any) -> str:
    r = c.post(f"/v2/{endpoint_id}/run", json={"input": inp, **extra})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def status(c: httpx.Client, endpoint_id: str, job_id: str) -> dict[str, Any]:
    r = c.get(f"/v2/{endpoint_id}/status/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def final(c: httpx.Client, endpoint_id: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once it is in a final state."""
    return wait_for(
        lambda: (s := status(c, endpoint_id, job_id))["status"] in
        ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT") and s,
        timeout, f"job {job_id} to finish")


def workers(c: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's live workers (spec Pod objects of ``includeWorkers``)."""
    r = c.get(f"/v1/endpoints/{endpoint_id}", params={"includeWorkers": "true"})
    assert r.status_code == 200, r.text
    return r.json()["workers"]


def health(c: httpx.Client, endpoint_id: str) -> dict[str, Any]:
    r = c.get(f"/v2/{endpoint_id}/health")
    assert r.status_code == 200, r.text
    return r.json()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
