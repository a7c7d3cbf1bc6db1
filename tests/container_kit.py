"""What podman and the kernel say of a test's container: its engine state, and whether its
cgroup is frozen (runplane parks a container with a write to its freezer file, which the
engine does not see, or with the engine's pause where it cannot)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runplane.providers.runtimes.container.freezer import freezer_of


def podman_state(name: str) -> str:
    out = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", name],
                         capture_output=True, text=True, check=False, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else "gone"


def frozen(name: str) -> bool:
    """Whether the container's processes are frozen (by either way of parking)."""
    if podman_state(name) == "paused":
        return True
    pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", name],
                         capture_output=True, text=True, check=False, timeout=60).stdout.strip()
    if not pid.isdigit() or pid == "0":
        return False
    found = freezer_of(Path(f"/proc/{pid}/cgroup").read_text())
    return found is not None and found[0].read_text().strip() in ("FROZEN", "FREEZING", "1")
