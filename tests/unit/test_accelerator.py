"""The SDK accelerator's pure parts (fingerprint, switch, PYTHONPATH, how a report reads) and
its start-up hook in a real interpreter importing the real runpod SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import runpod

from runplane.accelerator import SITE_DIR, describe, enabled, with_site

sys.path.insert(0, str(SITE_DIR))
from runplane_accelerator.fingerprint import fingerprint
from runplane_accelerator.known import KNOWN

SCALE = Path(runpod.__file__).parent / "serverless" / "modules" / "rp_scale.py"


def test_the_installed_sdk_is_known() -> None:
    assert KNOWN[fingerprint(SCALE.read_text())] == runpod.__version__


@pytest.mark.parametrize(("change", "same"), [
    (lambda s: s.replace("# don't go rapidly", "# a comment changed"), True),
    (lambda s: s.replace('"""\n        Retrieve multiple jobs', '"""\n        Fetch several jobs'), True),
    (lambda s: s.replace("\n\n    async def run_jobs", "\n\n\n    async def run_jobs"), True),
    (lambda s: s.replace("await asyncio.sleep(1)  # don't go rapidly",
                         "await asyncio.sleep(2)  # don't go rapidly"), False),
    (lambda s: s.replace("timeout=0.1", "timeout=0.05"), False),
    (lambda s: s.replace("def current_occupancy", "def occupancy_now"), False),
])
def test_fingerprint_follows_code_not_comments(change, same: bool) -> None:
    source = SCALE.read_text()
    changed = change(source)
    assert changed != source
    assert (fingerprint(changed) == fingerprint(source)) is same


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(:", None),  # not Python
    ("class Other:\n    pass\n", None),  # no JobScaler
    ("class JobScaler:\n    def get_jobs(self):\n        pass\n", None),  # methods missing
])
def test_fingerprint_of_code_that_is_not_a_job_loop(source: str, expected: None) -> None:
    assert fingerprint(source) is expected


@pytest.mark.parametrize(("value", "on"), [
    (None, True), ("1", True), ("on", True), ("yes", True), ("0", False), ("off", False),
    ("false", False), (" No ", False),
])
def test_switch(value: str | None, on: bool) -> None:
    env = {} if value is None else {"RUNPLANE_ACCELERATOR": value}
    assert enabled(env) is on


@pytest.mark.parametrize(("env", "base", "expected"), [
    ({}, None, "/acc"),
    ({"PYTHONPATH": "/app"}, None, "/acc:/app"),
    ({"PYTHONPATH": "/app"}, "/img", "/acc:/img"),
    ({"RUNPLANE_ACCELERATOR": "0", "PYTHONPATH": "/app"}, None, "/app"),
    ({"RUNPLANE_ACCELERATOR": "0"}, None, None),
])
def test_with_site(env: dict[str, str], base: str | None, expected: str | None) -> None:
    assert with_site(env, "/acc", base).get("PYTHONPATH") == expected


@pytest.mark.parametrize(("state", "sdk", "text"), [
    (None, None, "off (not loaded: disabled, or not a Python SDK worker)"),
    ("", "", "off (not loaded: disabled, or not a Python SDK worker)"),
    ("on", "1.12.0", "on (runpod 1.12.0)"),
    ("off-unknown-sdk", "1.13.0",
     "off: runpod 1.13.0's job loop is not one runplane knows; the SDK's own loop runs"),
    ("off-error", "1.12.0",
     "off: the accelerator failed to patch runpod 1.12.0; the SDK's own loop runs"),
])
def test_describe(state: str | None, sdk: str | None, text: str) -> None:
    assert describe(state, sdk) == text


PROBE = """
import json, os, sys
from runpod.serverless.modules import rp_http, rp_job, rp_scale
print(json.dumps({"patched": getattr(rp_scale.JobScaler, "runplane_accelerated", False),
                  "resends": hasattr(rp_http._transmit, "__wrapped__"),
                  "url": rp_job.JOB_GET_URL, "chained": os.environ.get("CHAINED")}))
"""


def probe(tmp_path: Path, **env: str) -> tuple[dict, str]:
    """Start a real interpreter as runplane starts a worker and import the SDK's job loop."""
    run_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run_env.update({"RUNPOD_WEBHOOK_GET_JOB": "http://127.0.0.1:1/v2/e/job-take/$ID?gpu=",
                    "RUNPOD_WEBHOOK_POST_OUTPUT":
                        "http://127.0.0.1:1/v2/e/job-done/$RUNPOD_POD_ID/$ID?gpu=",
                    "RUNPOD_POD_ID": "w1"})
    run_env.update(env)
    run_env = with_site(run_env, str(SITE_DIR))
    done = subprocess.run([sys.executable, "-c", PROBE], env=run_env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_start_up_hook_patches_a_known_sdk_and_reports_it(tmp_path: Path) -> None:
    seen, stderr = probe(tmp_path)
    assert seen["patched"] is True and seen["resends"] is True
    assert seen["url"].endswith(f"&runplane_accelerator=on&runplane_sdk={runpod.__version__}")
    assert "runplane accelerator: on" in stderr


def test_start_up_hook_is_off_when_switched_off(tmp_path: Path) -> None:
    seen, stderr = probe(tmp_path, RUNPLANE_ACCELERATOR="0")
    assert seen["patched"] is False and seen["resends"] is False
    assert "runplane_accelerator" not in seen["url"]
    assert "runplane accelerator" not in stderr


def test_start_up_hook_leaves_an_unknown_sdk_alone(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SCALE.parents[2], tmp_path / "sdk" / "runpod",
                    ignore=shutil.ignore_patterns("__pycache__"))
    scale = tmp_path / "sdk" / "runpod" / "serverless" / "modules" / "rp_scale.py"
    scale.write_text(scale.read_text().replace("timeout=0.1", "timeout=0.2"))
    seen, stderr = probe(tmp_path, PYTHONPATH=str(tmp_path / "sdk"))
    assert seen["patched"] is False and seen["resends"] is False
    assert seen["url"].endswith("&runplane_accelerator=off-unknown-sdk"
                                f"&runplane_sdk={runpod.__version__}")
    assert "is not one runplane knows" in stderr


def test_an_images_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = 'yes'\n")
    seen, _ = probe(tmp_path, PYTHONPATH=str(own))
    assert seen["chained"] == "yes" and seen["patched"] is True
