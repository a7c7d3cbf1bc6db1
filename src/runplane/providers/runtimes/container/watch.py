"""What the container runtime knows of one container worker (``Watched``): its engine client
and phase, and the ``ProcessInfo`` they make (state, exit code, why it failed, pull progress).

The runtime (runtime.py) drives the engine; this only reads: the client's exit, the
launcher's state file, the pull log and the worker's log.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from runplane.providers.base import EXITED, PARKED, RUNNING, ProcessInfo, WorkerSpec
from runplane.providers.http_ports import http_data
from runplane.providers.runtimes.container.argv import run_failure
from runplane.providers.runtimes.container.freezer import Freezer
from runplane.providers.runtimes.container.image import pull_failure, pull_progress


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail_lines(path: Path, n_bytes: int = 16384) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n_bytes))
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


class Watched:
    """One container worker as the runtime sees it: its engine client (the launcher, or
    after a restart the follower of ``follow.py``), whose exit code is the
    container's, and what its launch files say of the phase it is in."""

    def __init__(self, spec: WorkerSpec, name: str, image: str, popen: subprocess.Popen[bytes],
                 started_at: float, files: dict[str, Path], ports: dict[int, int],
                 freezer: Freezer, phase: str = "starting") -> None:
        self.spec = spec
        self.name = name
        self.image = image
        self.popen = popen
        self.started_at = started_at
        self.files = files  # state, pull_log, env, auth
        self.ports = ports
        self.freezer = freezer
        self.phase = phase  # starting | pulling | failed | creating | running
        self.parked = False
        self.stopping = False
        self.stopped_at: float | None = None
        self._info: ProcessInfo | None = None
        # Engine commands removing what the container leaves (its network, secrets), run once
        # it has exited (``cleaned``); what ``data`` records besides (its network, its door to
        # the server) and the door's process when this server opened it (``adopt``).
        self.cleanup: list[list[str]] = []
        self.cleaned = False
        self.data: dict[str, object] = {}
        self.forwarder: subprocess.Popen[bytes] | None = None

    def current_phase(self) -> str:
        """Where the launcher is (it writes its state file); an adopted one is running."""
        if self.phase in ("starting", "pulling", "creating"):
            self.phase = (_read(self.files["state"]).split() or [self.phase])[0]
        return self.phase

    def info(self) -> ProcessInfo:
        code = self.popen.poll()
        if code is not None and self.stopped_at is None:
            self.stopped_at = time.time()
        phase = self.current_phase()
        state = EXITED if code is not None else (PARKED if self.parked else RUNNING)
        progress = reason = None
        if phase == "pulling" and code is None:
            progress = pull_progress(self.image, _read(self.files["pull_log"]).splitlines())
        cached = self._info
        if cached is not None and cached.state == state and cached.exit_code == code \
                and cached.progress == progress:
            return cached
        if code is not None and not self.stopping:
            if phase == "failed":
                reason = pull_failure(self.image, _read(self.files["pull_log"]).splitlines(), code)
            elif phase in ("creating", "running"):
                reason = run_failure(_tail_lines(self.spec.log_path), code)
                command = [*self.spec.container.entrypoint, *self.spec.container.cmd]
                if reason and command:
                    reason += f" (command: {shlex.join(command)})"
        self._info = ProcessInfo(
            id=self.spec.id, state=state, pid=self.popen.pid, started_at=self.started_at,
            exit_code=code, stopped_at=self.stopped_at, log_path=str(self.spec.log_path),
            data={"runtime": "container", "container": self.name, "image": self.image,
                  "pid": self.popen.pid, "started_at": self.started_at, "pgid": self.popen.pid,
                  "gpus": list(self.spec.gpu_indices),
                  "portMappings": {str(c): h for c, h in sorted(self.ports.items())},
                  **http_data(self.spec), **self.data},
            reason=reason, progress=progress,
        )
        return self._info
