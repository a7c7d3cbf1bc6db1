"""Helpers for the fault tests: a live server with a fast controller, real SDK workers from
``tests/e2e/scaling_kit.py``'s handler (plus a ``crash`` input), the store's own view of a
job, and a full disk.

Every test here reproduces one fault of issue 14 with real processes (docs/operator.md has
the table of what each fault does to jobs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, make_live_server
from tests.e2e.scaling_kit import FAST_ENV, HANDLER

# scaling_kit's handler; ``crash``: print that line as a traceback's last one and exit 1
# (the process dies mid-job, as an out-of-memory CUDA kernel or a segfault would have it).
CRASH_HANDLER = HANDLER.replace(
    '    if inp.get("hang_first") and attempt == 1:',
    '    if inp.get("crash"):\n'
    '        import sys\n'
    '        print("Traceback (most recent call last):", file=sys.stderr)\n'
    '        print(inp["crash"], file=sys.stderr, flush=True)\n'
    '        os._exit(1)\n'
    '    if inp.get("hang_first") and attempt == 1:')
assert CRASH_HANDLER != HANDLER


def controller_env(**controller: Any) -> dict[str, str]:
    """FAST_ENV with more ``[controller]`` settings (it sets the group as one JSON value)."""
    base = json.loads(FAST_ENV["RUNPLANE_CONTROLLER"])
    return {**FAST_ENV, "RUNPLANE_CONTROLLER": json.dumps({**base, **controller})}


def server(tmp_path: Path, env: dict[str, str] | None = None, **more: str) -> LiveServer:
    """A started server (the caller stops it)."""
    srv = make_live_server(tmp_path, **{**(env or FAST_ENV), **more})
    srv.start()
    return srv


def job_row(db: Path, job_id: str) -> dict[str, Any] | None:
    """The store's row of a job, read beside the server (what survives a crash)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT status, retries, worker_id FROM jobs WHERE id = ?",
                           (job_id,)).fetchone()
    return dict(row) if row else None


def attempts(state: Path, job_id: str) -> int:
    """How many times the handler started ``job_id`` (its own count, beside the server)."""
    mark = state / f"{job_id}.attempts"
    return int(mark.read_text()) if mark.exists() else 0


def worker_processes(worker_id: str) -> list[int]:
    """Live pids started as worker ``worker_id`` (the SDK's heartbeat process included)."""
    import psutil

    found = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and \
                    p.environ().get("RUNPOD_POD_ID") == worker_id:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def worker_ids_of(srv: LiveServer) -> set[str]:
    """The worker ids of every live process started as a worker of ``srv``."""
    import psutil

    ids = set()
    for pid in srv.worker_processes():
        try:
            ids.add(psutil.Process(pid).environ().get("RUNPOD_POD_ID", ""))
        except psutil.Error:
            continue
    return ids


class FullDisk:
    """A small tmpfs for the store that a test fills up and frees again."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.filler = mount / "filler"

    def fill(self) -> None:
        """Write until the filesystem has no block left."""
        block = b"\0" * (1 << 16)
        with open(self.filler, "ab", buffering=0) as f:
            while len(block) >= 512:
                try:
                    f.write(block)
                except OSError:
                    block = block[: len(block) // 2]  # the last blocks, smaller

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_tmpfs(path: Path, size_mb: int = 24) -> Iterator[FullDisk]:
    """Mount a ``size_mb`` tmpfs at ``path`` (root only; skipped with the reason otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk needs root to mount a small tmpfs (run the fault tests as root)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield FullDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
