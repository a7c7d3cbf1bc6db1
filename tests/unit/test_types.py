"""The whole package type-checks (mypy): the type hints are the contract between the parts
(the controller's ports, the provider protocol, the simulator's stand-ins), so a part that
no longer fits its port fails here, not at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_mypy_finds_nothing() -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mypy is not installed: it is in the test extras (scripts/test.sh)")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "src/runplane", "--ignore-missing-imports",
         "--no-error-summary", "--cache-dir", str(Path.home() / ".cache" / "runplane-mypy")],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
