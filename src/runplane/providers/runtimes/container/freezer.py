"""Freezing and thawing a container without the engine's CLI: FlashBoot's revival path.

``podman pause`` / ``docker pause`` freeze the container's cgroup and ``unpause`` thaws it,
but the CLI costs 100-300 ms per call (the client starts, reads its state, takes its lock),
nearly all of a container worker's revival. Freezing is one write to the cgroup's freezer
file, so the runtime finds that file before it first parks a container (off the revival
path: the container's init pid from the engine, then ``/proc/<pid>/cgroup``) and from then
on parks and resumes it with a write. The engine is not told: to it the container stays
running, which is why the runtime thaws a container it froze this way before it stops it
(a frozen process cannot act on the stop signal; ``rm --force`` of a frozen orphan works).
Where the file cannot be found or written (rootless engines, other layouts), the engine's
``pause``/``unpause`` are used instead.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from runplane.providers.runtimes.container.engine import run_cli

log = logging.getLogger("runplane.providers.container")

CGROUP_ROOT = Path("/sys/fs/cgroup")


def freezer_of(proc_cgroup: str, root: Path = CGROUP_ROOT) -> tuple[Path, str, str] | None:
    """The freezer file of a process's cgroup and the values that freeze and thaw it, from
    the text of its ``/proc/<pid>/cgroup``: cgroup v1's ``freezer`` hierarchy
    (``freezer.state``: FROZEN, THAWED) or, on v2, the unified one (``cgroup.freeze``: 1, 0)."""
    unified = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if "freezer" in controllers.split(","):
            return root / "freezer" / path.lstrip("/") / "freezer.state", "FROZEN", "THAWED"
        if hierarchy == "0" and controllers == "":
            unified = root / path.lstrip("/") / "cgroup.freeze", "1", "0"
    return unified


class Freezer:
    """One container's freezer: the cgroup's file once found, else the engine's CLI. Park and
    resume run in threads and may overlap (a job arrives while the worker is being parked):
    they take turns, and a thaw of a container that is not frozen does nothing."""

    def __init__(self, engine: str, name: str) -> None:
        self._engine = engine
        self._name = name
        self._file: tuple[Path, str, str] | None = None
        self._looked = False
        self._preparing = False
        self._lock = threading.Lock()
        self._frozen: str | None = None  # "direct" (our write) or "engine" (its pause)

    def prepare(self) -> None:
        """Find the freezer file in the background (call once the container runs), so that
        not even the first park and revival wait for the engine's CLI."""
        if not self._looked and not self._preparing:
            self._preparing = True
            threading.Thread(target=self._find_once, name=f"freezer-{self._name}",
                             daemon=True).start()

    def _find_once(self) -> None:
        with self._lock:
            if not self._looked:
                self._find()

    def _find(self) -> None:
        self._looked = True
        done = run_cli([self._engine, "inspect", "--format", "{{.State.Pid}}", self._name])
        pid = done.stdout.strip()
        if done.returncode != 0 or not pid.isdigit() or pid == "0":
            return
        try:
            found = freezer_of(Path(f"/proc/{pid}/cgroup").read_text())
        except OSError:
            return
        if found is not None and found[0].is_file():
            self._file = found

    def _write(self, value: str) -> bool:
        assert self._file is not None
        try:
            self._file[0].write_text(value)
        except OSError as err:
            log.info("container %s: cannot write %s (%s); using the engine's CLI", self._name,
                     self._file[0], err)
            self._file = None  # e.g. not ours to write: the engine from now on
            return False
        return True

    def freeze(self) -> None:
        """Park: freeze the container (raises CalledProcessError when the engine refuses)."""
        with self._lock:
            if self._frozen is not None:
                return
            if not self._looked:
                self._find()
            if self._file is not None and self._write(self._file[1]):
                self._frozen = "direct"
                return
            run_cli([self._engine, "pause", self._name]).check_returncode()
            self._frozen = "engine"

    def thaw(self) -> None:
        """Resume: thaw it the way it was frozen (nothing when it is not frozen)."""
        with self._lock:
            how, self._frozen = self._frozen, None
            if how == "direct" and self._file is not None and self._write(self._file[2]):
                return
            if how is not None:
                run_cli([self._engine, "unpause", self._name]).check_returncode()
