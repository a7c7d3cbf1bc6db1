"""RunPod's JS SDK (``runpod-sdk`` from npm), unmodified, run with the machine's node against
a live runplane server: ``runSync`` of a job longer than its first wait (the SDK loops on
``/status-sync``), ``run`` + ``status``, ``cancel``, ``stream`` and ``health``.

The SDK is installed once under ~/.cache/runplane-test/runpod-sdk-js-<ver> (override the
root with RUNPLANE_TEST_CACHE; scripts/test.sh installs Debian's nodejs and npm when it runs
as root); the test is skipped, with the reason, when node or the package cannot be had.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import Workers, wait_for
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

JS_SDK_VERSION = "1.1.2"
CLIENT = Path(__file__).parent / "js" / "runpod_sdk_client.mjs"


def js_sdk_dir() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (Debian: apt-get install nodejs npm)")
    root = Path(os.environ.get("RUNPLANE_TEST_CACHE", Path.home() / ".cache" / "runplane-test"))
    target = root / f"runpod-sdk-js-{JS_SDK_VERSION}"
    marker = target / ".installed"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund",
                        "--loglevel=error", f"runpod-sdk@{JS_SDK_VERSION}"],
                       check=True, capture_output=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot install runpod-sdk@{JS_SDK_VERSION} into {target}: {exc} "
                    f"{detail.decode(errors='replace')[-300:]}")
    marker.write_text(JS_SDK_VERSION)
    return target


def ready(live: LiveServer, endpoint_id: str) -> bool:
    r = httpx.get(f"{live.url}/v2/{endpoint_id}/metrics",
                  headers={"Authorization": f"Bearer {live.user_key}"}, timeout=10)
    return bool(r.json()["readyWorkers"])


def test_js_sdk_run_sync_status_cancel_stream(live: LiveServer, workers: Workers,
                                              new_endpoint) -> None:
    sdk = js_sdk_dir()
    sync_ep, gen_ep = new_endpoint(), new_endpoint()
    workers.start(sync_ep, "async")
    workers.start(gen_ep, "gen")
    for ep in (sync_ep, gen_ep):
        wait_for(lambda ep=ep: ready(live, ep), what="a ready worker")
    proc = subprocess.run(["node", str(CLIENT), str(sdk), f"{live.url}/v2", live.user_key,
                           sync_ep, gen_ep], capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    out = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])

    run_sync = out["runSync"]
    assert run_sync["status"] == "COMPLETED" and run_sync["output"] == {"echo": {"sleep": 4}}
    assert run_sync["completed"] is True and run_sync["succeeded"] is True
    # /runsync answered first (after 3 s) with the job still running; the SDK then waited on
    # /status-sync, printing each status it got there, and no answer came before the job
    # had run its 4 s.
    assert f"{run_sync['id']}: COMPLETED" in lines, proc.stdout
    assert out["runSyncMs"] >= 4000

    assert out["run"]["status"] == "IN_QUEUE" and out["run"]["id"]
    assert out["status"]["status"] == "COMPLETED" and out["status"]["output"] == {"echo": {"a": 1}}

    assert out["cancel"] == {"id": out["cancel"]["id"], "status": "CANCELLED"}
    assert out["cancelledStatus"]["status"] == "CANCELLED"

    assert out["stream"] == [{"output": f"chunk{i}"} for i in range(4)]
    assert out["health"]["workers"]["ready"] == 1 and "throttled" in out["health"]["workers"]
