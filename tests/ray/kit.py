"""Helpers for the Ray provider's tests: a ``runplane serve --provider ray`` on a test cluster,
and a real runpod SDK handler (the same kind of file a RunPod user deploys, unmodified)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import LiveServer, make_live_server
from tests.e2e.scaling_kit import FAST_ENV, wait_for

# Driven by its job input: ``block`` waits for <state>/release, ``hang_first`` sleeps through
# its first attempt (until killed); every attempt records its pid and counts itself.
HANDLER = '''
import os, pathlib, time
import runpod

STATE = pathlib.Path(os.environ["STATE_DIR"])


def handler(job):
    inp, jid = job["input"], job["id"]
    mark = STATE / f"{jid}.attempts"
    attempt = int(mark.read_text()) + 1 if mark.exists() else 1
    mark.write_text(str(attempt))
    (STATE / f"{jid}.pid").write_text(str(os.getpid()))
    print(f"handling {jid}, attempt {attempt}", flush=True)
    if inp.get("hang_first") and attempt == 1:
        time.sleep(600)
    if inp.get("block"):
        while not (STATE / "release").exists():
            time.sleep(0.05)
    return {"worker": os.environ["RUNPOD_POD_ID"], "pid": os.getpid(), "attempt": attempt,
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "echo": inp.get("echo")}


runpod.serverless.start({"handler": handler})
'''


# Worker actors are detached: a server stopped with its workers kept (the default) would
# leave them on the session's cluster, holding its one GPU, after the test. The tests' servers
# stop theirs on SIGTERM (a drain with nothing to wait for); SIGKILL still keeps them.
STOP_WORKERS_ENV = {"RUNPLANE_CONTROLLER": json.dumps({
    **json.loads(FAST_ENV["RUNPLANE_CONTROLLER"]), "shutdown": "drain", "drain_timeout_s": 0})}


def ray_server(tmp_path: Path, address: str, **env: str) -> LiveServer:
    """A started server whose workers run on the Ray cluster at ``address``."""
    srv = make_live_server(tmp_path, ["--provider", "ray", "--ray-address", address],
                           **{**FAST_ENV, **STOP_WORKERS_ENV, **env})
    srv.start(timeout=120)
    return srv


def make_template(c: httpx.Client, tmp_path: Path) -> tuple[str, Path]:
    """A process template running HANDLER; returns its id and the handler's state dir."""
    app, state = tmp_path / "worker", tmp_path / "state"
    app.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    (app / "handler.py").write_text(HANDLER)
    r = c.post("/v1/templates", json={
        "name": f"ray-{tmp_path.name}"[:60], "imageName": f"local:{app}", "isServerless": True,
        "dockerStartCmd": [sys.executable, "-u", "handler.py"],
        "env": {"STATE_DIR": str(state), "RUNPOD_LOG_LEVEL": "WARN"},
    })
    assert r.status_code == 200, r.text
    return r.json()["id"], state


def make_endpoint(c: httpx.Client, template_id: str, name: str, **fields: Any) -> str:
    body = {"name": name, "templateId": template_id, "workersMin": 0, "workersMax": 1,
            "idleTimeout": 1, "scalerType": "REQUEST_COUNT", "scalerValue": 1,
            "flashboot": False,  # idle workers stop (FlashBoot, on by default, parks them)
            **fields}
    if body.get("computeType", "GPU") == "CPU":
        body.setdefault("vcpuCount", 1)
    r = c.post("/v1/endpoints", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def machines(srv: LiveServer) -> dict[str, dict[str, Any]]:
    """``GET /v1/machines`` by machine name."""
    with srv.client(srv.admin_key) as admin:
        r = admin.get("/v1/machines")
        assert r.status_code == 200, r.text
        return {m["name"]: m for m in r.json()}


def worker_log(c: httpx.Client, worker_id: str) -> str:
    r = c.get(f"/v1/workers/{worker_id}/logs")
    assert r.status_code == 200, r.text
    return r.text


def log_says(c: httpx.Client, worker_id: str, text: str, timeout: float = 30) -> str:
    return wait_for(lambda: (t := worker_log(c, worker_id)) and text in t and t, timeout,
                    f"{text!r} in worker {worker_id}'s log")
