"""One launcher for endpoint workers and pods: the steps from RunPod fields to a process.

1. ``check``: can this provider run the image, and is there a command when it needs one?
2. ``volume`` + ``place``: a machine that satisfies the request (and its network volume's data
   center), evicting other endpoints' parked workers where that is all that is in the way
   (workers only pass ``evictable``).
3. ``environment``: the fields' ``env``, then the network volume's, then the process's own
   identity (worker credentials, or the pod's id); ``defaults`` only where none set a name.
4. ``start``: the log path and ``provider.start``.

Callers keep what differs: the controller registers a worker with the broker between 2 and 3
and words refusals as an endpoint's reason; the pod service words them as API errors. Fields
are the template's or pod's, in RunPod's names (``imageName``, ``dockerEntrypoint``,
``dockerStartCmd``, ``env``, ``ports``, ``containerDiskInGb``, ``containerRegistryAuthId``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.controller.ports import RegistryCredentials, VolumeDirectory
from runplane.controller.scheduler import MachineLoad, NoFit, Parked, Placement, place_evicting
from runplane.controller.specs import command_of, http_ports, request_for, volume_env
from runplane.providers.base import (
    ContainerOptions,
    ImageError,
    ProcessInfo,
    Provider,
    WorkerSpec,
)
from runplane.schemas.common import is_platform_env
from runplane.schemas.volumes import NetworkVolume


@dataclass(frozen=True)
class Unrunnable:
    """Why the fields cannot be run here; ``field`` is the one to change."""

    field: str  # "imageName" or "dockerStartCmd"
    message: str


@dataclass(frozen=True)
class VolumeMount:
    """A network volume as one process sees it (``volume`` None: it has none)."""

    volume: NetworkVolume | None
    mount_path: str


@dataclass(frozen=True)
class Started:
    """A started process: what the provider says about it, and where its output goes."""

    info: ProcessInfo
    log_path: Path


class Launcher:
    """The pipeline of the module docstring; holds no state of its own."""

    def __init__(self, provider: Provider, catalog: Catalog, volumes: VolumeDirectory,
                 registry_auths: RegistryCredentials) -> None:
        self._provider = provider
        self._catalog = catalog
        self._volumes = volumes
        self._registry_auths = registry_auths

    def check(self, fields: Mapping[str, Any], no_command: str) -> Unrunnable | None:
        """None when the provider can run the fields' image; else why (``no_command`` is the
        caller's words for a missing command)."""
        image = fields.get("imageName", "")
        try:
            self._provider.check_image(image)
        except ImageError as err:
            return Unrunnable("imageName", str(err))
        if not command_of(fields) and self._provider.needs_command(image):
            return Unrunnable("dockerStartCmd", no_command)
        return None

    def volume(self, volume_id: str | None) -> NetworkVolume | None:
        """The network volume (None without one, or when it is gone)."""
        return self._volumes.get(volume_id) if volume_id else None

    def place(self, spec: dict[str, Any], key: str, volume_dc: str | None,
              loads: list[MachineLoad], evictable: Sequence[Parked] = (),
              prefer: str | None = None) -> Placement | NoFit:
        """Where an endpoint's or pod's settings (``spec``) go on ``loads`` (on the machine
        ``prefer`` when they fit there); does not change ``loads`` (the caller ``apply``s the
        placement when it uses it)."""
        return place_evicting(request_for(spec, key, self._catalog, volume_dc), loads,
                              list(evictable), prefer)

    def environment(self, fields: Mapping[str, Any], volume: VolumeMount,
                    own_env: Mapping[str, str],
                    defaults: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process's environment: the fields' ``env``, the network volume's (creating
        its directory), its own identity, then ``defaults`` for names none of those set."""
        # A stored env from before platform names were refused never reaches the process.
        env = {k: v for k, v in (fields.get("env") or {}).items() if not is_platform_env(k)}
        if volume.volume is not None:
            env.update(volume_env(self._volumes.path_of(volume.volume), volume.mount_path))
        env.update(own_env)
        for name, value in (defaults or {}).items():
            env.setdefault(name, value)
        return env

    def start(self, process_id: str, fields: Mapping[str, Any], placed: Placement,
              env: dict[str, str], serves_http: bool = False) -> Started:
        """Start the process on its placement (``serves_http``: a load-balancing worker,
        serving HTTP on ports the provider assigns); raises OSError or ImageError when the
        provider cannot start it."""
        http = http_ports(fields) if serves_http else None
        if http is not None:
            env = {"HEALTH_CHECK_PATH": "/ping", **env}
        log_path = self._provider.log_path(process_id)
        options = replace(ContainerOptions.of(fields, self._credentials(fields)),
                          cpus=placed.vcpu_count, memory_gb=placed.memory_in_gb)
        info = self._provider.start(WorkerSpec(
            process_id, fields["imageName"], command_of(fields), env, log_path,
            placed.gpu_indices, placed.machine_id, options, http))
        return Started(info, log_path)

    def _credentials(self, fields: Mapping[str, Any]) -> tuple[str, str] | None:
        """The fields' registry credentials, for the container runtime's pull only."""
        auth_id = fields.get("containerRegistryAuthId")
        if not auth_id:
            return None
        return self._registry_auths.credentials_for(auth_id, fields.get("imageName", ""))
