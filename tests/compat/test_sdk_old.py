"""An unmodified worker on the runpod 1.7 line (no job-stop channel, no fitness checks).

The SDK is installed once into its own virtualenv under ~/.cache/runplane-test/runpod-<ver>
(override with RUNPLANE_TEST_CACHE); the test is skipped, with the reason, when that cannot
be done (e.g. no access to the package index).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import runpod

from tests.compat.conftest import Workers, status, wait_for
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

OLD_VERSION = "1.7.13"


def old_sdk_python() -> str:
    root = Path(os.environ.get("RUNPLANE_TEST_CACHE", Path.home() / ".cache" / "runplane-test"))
    venv = root / f"runpod-{OLD_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return str(python)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"runpod=={OLD_VERSION}"],
                       check=True, capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot install runpod=={OLD_VERSION} into {venv}: {exc} "
                    f"{detail.decode(errors='replace')[-300:]}")
    marker.write_text(OLD_VERSION)
    return str(python)


def test_runpod_1_7_worker(live: LiveServer, workers: Workers, new_endpoint) -> None:
    python = old_sdk_python()
    version = subprocess.run([python, "-c", "import runpod; print(runpod.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == OLD_VERSION
    ep_id = new_endpoint()
    workers.start(ep_id, "sync", python=python)
    runpod.api_key = live.user_key
    runpod.endpoint_url_base = f"{live.url}/v2"
    ep = runpod.Endpoint(ep_id)
    assert ep.run_sync({"v": 17}, timeout=60)["echo"] == {"v": 17}
    job = ep.run({"raise": "old"})
    wait_for(lambda: job.status() == "FAILED", what="FAILED")
    assert "old" in status(live, ep_id, job.job_id)["error"]
    # Pre-1.10 workers never call job-stop: a cancelled job runs to its end there, and its
    # late result is acknowledged and ignored.
    job = ep.run({"sleep": 2})
    wait_for(lambda: any(r["id"] == job.job_id for r in workers.records()), what="handler started")
    assert job.cancel()["status"] == "CANCELLED"
    assert ep.run_sync({"after": True}, timeout=60)["echo"] == {"after": True}
    assert status(live, ep_id, job.job_id)["status"] == "CANCELLED"

    ep2 = new_endpoint()
    workers.start(ep2, "gen", python=python)
    job = runpod.Endpoint(ep2).run({"n": 2})
    assert list(job.stream()) == ["chunk0", "chunk1"]
