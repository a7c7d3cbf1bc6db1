"""Freezing and thawing a container without the engine's CLI: FlashBoot's revival path.

``podman pause`` / ``docker pause`` freeze the container's cgroup and ``unpause`` thaws it,
but the CLI costs 100-300 ms per call (the client starts, reads its state, takes its lock),
nearly all of a container worker's revival. Freezing is one write to the cgroup's freezer
file, so the runtime finds that file before it first parks a container (off the revival
path: the container's init pid from the engine, then ``/proc/<pid>/cgroup``) and from then
on parks and resumes it with a write. The engine is not told: to it the container stays
running, which is why the runtime thaws a container it froze this way before it stops it (a
process frozen under cgroup v1 cannot even die). Where the file cannot be found or written
(rootless engines, other layouts), the engine's ``pause``/``unpause`` are used instead.
"""

from __future__ import annotations

from pathlib import Path

from runplane.providers.runtimes.container_engine import run_cli

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
    """One container's freezer: the cgroup's file once found, else the engine's CLI."""

    def __init__(self, engine: str, name: str) -> None:
        self._engine = engine
        self._name = name
        self._file: tuple[Path, str, str] | None = None
        self._looked = False
        self.direct = False  # frozen now by a write of ours (not by the engine)

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
        except OSError:
            self._file = None  # e.g. not ours to write: the engine from now on
            return False
        return True

    def freeze(self) -> None:
        """Park: freeze the container (raises CalledProcessError when the engine refuses)."""
        if not self._looked:
            self._find()
        if self._file is not None and self._write(self._file[1]):
            self.direct = True
            return
        run_cli([self._engine, "pause", self._name]).check_returncode()

    def thaw(self) -> None:
        """Resume: thaw it the way it was frozen."""
        if self.direct:
            self.direct = False
            if self._file is not None and self._write(self._file[2]):
                return
        run_cli([self._engine, "unpause", self._name]).check_returncode()
