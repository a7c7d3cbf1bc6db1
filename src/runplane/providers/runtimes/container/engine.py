"""Container engines: which of podman/docker runs images here, and the operator's settings.

``probe_engine`` asks the configured engine (or, with ``auto``, podman then docker) for its
version and storage driver; the answer says whether ``--storage-opt size=`` is enforced.
``run_cli`` runs one engine command, ``remove``/``remove_async`` those that remove what a
container leaves (its network, secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass

from runplane.config import ContainerSettings
from runplane.providers.base import ImageError

ENGINES = ("podman", "docker")


@dataclass(frozen=True)
class Engine:
    """A container engine that answered: which CLI, and what its storage can do."""

    name: str  # podman | docker
    binary: str
    version: str = ""
    disk_quota: bool = False  # --storage-opt size= is enforced (overlay on xfs)


class EngineUnavailable(ImageError):
    """No container engine can run images here; the message says why and what to do."""


def run_cli(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def _tries(argv: list[str]) -> int:
    """A network is removed again while its container is still being removed (the engine
    refuses then); the rest once (a secret is usually gone already)."""
    return 3 if argv[1:3] == ["network", "rm"] else 1


def remove(argvs: list[list[str]]) -> None:
    """Run engine commands that remove things, in order; a failure is not an error."""
    for argv in argvs:
        for _ in range(_tries(argv)):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                if run_cli(argv, timeout=60).returncode == 0:
                    break
            time.sleep(0.5)


async def remove_async(argvs: list[list[str]]) -> None:
    """``remove``, awaited on the event loop."""
    for argv in argvs:
        for _ in range(_tries(argv)):
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            try:
                if await asyncio.wait_for(proc.wait(), 60) == 0:
                    break
            except TimeoutError:
                proc.kill()
            await asyncio.sleep(0.5)


def probe_engine(config: ContainerSettings) -> Engine:
    """The configured engine, or the first of podman/docker that answers (``auto``);
    EngineUnavailable saying why when none does."""
    if config.engine == "none":
        raise EngineUnavailable("container images are turned off on this server "
                                "([container] engine = \"none\"): use 'local:/absolute/dir' images")
    names = ENGINES if config.engine == "auto" else (config.engine,)
    why = []
    for name in names:
        binary = shutil.which(name)
        if binary is None:
            why.append(f"{name} is not installed")
            continue
        fmt = ("{{.Version.Version}}|{{.Store.GraphDriverName}}|"
               "{{index .Store.GraphStatus \"Backing Filesystem\"}}" if name == "podman"
               else "{{.ServerVersion}}|{{.Driver}}|{{range .DriverStatus}}{{index . 1}},{{end}}")
        try:
            out = run_cli([binary, "info", "--format", fmt])
        except (OSError, subprocess.SubprocessError) as err:
            why.append(f"{name} did not answer: {err}")
            continue
        if out.returncode != 0:
            first = (out.stderr.strip().splitlines() or ["no output"])[-1]
            why.append(f"{name} is installed but cannot run containers: {first}")
            continue
        version, driver, backing = (out.stdout.strip().split("|") + ["", "", ""])[:3]
        quota = driver in ("overlay", "overlay2") and "xfs" in backing
        return Engine(name, binary, version, disk_quota=quota)
    raise EngineUnavailable("no container engine can run this image: " + "; ".join(why)
                            + " (docs/containers.md says how to set up podman)")
