"""Container engines: which of podman/docker runs images here, and the operator's settings.

``probe_engine`` asks the configured engine (or, with ``auto``, podman then docker) for its
version and storage driver; the answer says whether ``--storage-opt size=`` is enforced.
"""

from __future__ import annotations

import shutil
import subprocess
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
