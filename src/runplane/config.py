"""Server settings: embedded defaults, overridden by a TOML file, env vars and CLI flags.

Precedence (highest first): explicit keyword arguments (the CLI's flags), ``RUNPLANE_*``
environment variables, the TOML config file (``--config``, ``RUNPLANE_CONFIG`` or
``<data_dir>/runplane.toml``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "runplane"


class CustomGpuType(BaseModel):
    """A GPU type the operator adds to RunPod's catalog (e.g. a card RunPod does not rent)."""

    id: str
    displayName: str | None = None
    memoryInGb: int = 0


class DeclaredGpu(BaseModel):
    """GPUs the operator declares on this machine (shown as declared, never as detected)."""

    type: str
    count: int = 1
    cuda: str = "12.4"
    memoryInGb: int | None = None


class MachineSettings(BaseModel):
    """What machine discovery cannot find out: placement, price, and declared capacity."""

    model_config = {"extra": "forbid"}

    name: str = ""
    data_center_id: str = "LOCAL-1"
    location: str = "local"
    secure_cloud: bool = True
    support_public_ip: bool = False
    # Runpod credits per hour; a worker costs gpuCount * per GPU, or vcpuCount * per vCPU.
    cost_per_gpu_hr: float = 0.0
    cost_per_vcpu_hr: float = 0.0
    # vCPUs/memory the host keeps for itself; the rest is offered to workers and pods.
    reserved_vcpus: int = 0
    reserved_memory_gb: float = 0.0
    # CPU workers/pods may ask for more vCPUs and memory than the host has, by this factor
    # (processes share cores; GPUs are never over-committed).
    cpu_overcommit: float = 8.0
    # For tests and demos without GPUs: capacity reported as declared, not detected.
    declared_gpus: list[DeclaredGpu] = Field(default_factory=list)
    # Turn off NVML discovery (e.g. to hide this host's GPUs from runplane).
    detect_gpus: bool = True


class ControllerSettings(BaseModel):
    """Reconcile loop timings and the crash-loop breaker."""

    model_config = {"extra": "forbid"}

    enabled: bool = True
    tick_s: float = 1.0
    # A worker that has not taken its first job within this long is killed as a failed start.
    startup_timeout_s: float = 120.0
    # SIGTERM, then SIGKILL after this grace period.
    stop_grace_s: float = 10.0
    # Consecutive failed starts/crashes before the breaker opens, and its backoff bounds.
    crash_loop_threshold: int = 3
    crash_backoff_base_s: float = 10.0
    crash_backoff_max_s: float = 300.0
    # A job that ended on the server (execution timeout, cancel) but is still listed in its
    # worker's pings this long afterwards is stuck in a handler that cannot be interrupted
    # (a sync handler): the worker is stopped. Must exceed the ping interval's jitter.
    overdue_grace_s: float = 10.0
    # FlashBoot (docs/flashboot.md): a worker parked this long is stopped for real.
    max_parked_s: float = 3600.0


class Settings(BaseSettings):
    """Everything the server reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="RUNPLANE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = DEFAULT_DATA_DIR
    config_file: Path | None = None
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # Base URL workers use to reach the server; empty means http://{host}:{port}.
    public_url: str = ""
    log_level: str = "info"
    # Server logs: "json" (one object per line with ts, level, logger, message and the job,
    # worker and endpoint ids; for log shippers) or "text" (for a terminal).
    log_format: Literal["json", "text"] = "json"
    # /metrics answers only with an admin API key (docs/observability.md).
    metrics_require_auth: bool = False

    # Catalog extensions: operators' own data centers and GPU types.
    extra_data_centers: list[str] = Field(default_factory=list)
    extra_gpu_types: list[CustomGpuType] = Field(default_factory=list)

    # Request limits.
    max_v1_body_bytes: int = 1_000_000
    max_run_body_bytes: int = 10_000_000
    max_runsync_body_bytes: int = 20_000_000

    # Job retention after a final state, in seconds (RunPod: 30 min for /run, 1 min for /runsync).
    run_result_retention_s: float = 1800.0
    runsync_result_retention_s: float = 60.0
    # How long job-take holds a long-poll open (must stay under every SDK's 30 s cap).
    job_take_hold_s: float = 20.0
    # Times a job lost by its worker is re-queued before it is failed.
    job_max_retries: int = 3
    # A worker silent for this long is considered dead and its jobs are re-queued.
    worker_heartbeat_timeout_s: float = 30.0
    # Ping interval injected into workers (RUNPOD_PING_INTERVAL, milliseconds).
    worker_ping_interval_ms: int = 10_000
    # Job broker (docs/jobs.md): a job its worker's pings stop listing for this long is lost
    # (covers job-done delivery retries); how often the timeout/TTL/heartbeat sweep runs;
    # the pause between webhook delivery attempts (RunPod: 3 attempts, 10 s apart).
    job_lost_grace_s: float = 15.0
    broker_sweep_interval_s: float = 1.0
    webhook_retry_delay_s: float = 10.0

    # Create the demo template and endpoint from examples/ at start-up.
    demo: bool = False

    # Container images (docs/containers.md): which engine runs them ("auto" = podman, else
    # docker, whichever answers; "none" refuses them), the network containers join ("host":
    # workers reach the server on loopback and a pod's ports are the host's), arguments added
    # to every `run` (e.g. ["--runtime", "runc"]), the address other networks publish ports
    # on, and --init (a PID 1 that passes the stop signal on, so stops are graceful).
    container_engine: Literal["auto", "podman", "docker", "none"] = "auto"
    container_network: str = "host"
    container_run_args: list[str] = Field(default_factory=list)
    # Added to every pull (e.g. ["--tls-verify=false"] for a plain-HTTP registry of your own).
    container_pull_args: list[str] = Field(default_factory=list)
    container_publish_ip: str = "0.0.0.0"
    container_init: bool = True

    # Network volumes: one directory per volume under <volume_root>/<dataCenterId>/<id>;
    # None means <data_dir>/volumes. Billed per GB-month of their size (RunPod: $0.07).
    volume_root: Path | None = None
    network_volume_usd_per_gb_month: float = 0.07

    # This host as a machine, and the controller that runs workers on it.
    machine: MachineSettings = Field(default_factory=MachineSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)

    # Where workers and pods run (docs/ray.md): "local" (this host, one machine) or "ray"
    # (every node of the Ray cluster at ray_address is a machine; empty: Ray's own choice,
    # RAY_ADDRESS, else the cluster `ray start` made on this host, else a new one-node Ray
    # here). Needs `pip install runplane[ray]`.
    provider: Literal["local", "ray"] = "local"
    ray_address: str = ""
    # Ray namespace of runplane's worker actors (named runplane-<worker id>-<n>).
    ray_namespace: str = "runplane"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, init_settings, env_settings))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'runplane.db'}"

    @property
    def resolved_volume_root(self) -> Path:
        return self.volume_root or self.data_dir / "volumes"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by the flag, RUNPLANE_CONFIG, or <data_dir>/runplane.toml."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init: PydanticBaseSettingsSource,
        env: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init = init
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = self._init().get("config_file") or self._env().get("config_file")
        explicit = explicit or os.environ.get("RUNPLANE_CONFIG")
        if explicit:
            path = Path(explicit)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
        else:
            data_dir = self._init().get("data_dir") or self._env().get("data_dir") or DEFAULT_DATA_DIR
            path = Path(data_dir) / "runplane.toml"
            if not path.is_file():
                return {}
        return TomlConfigSettingsSource(self.settings_cls, toml_file=path)()


def load_settings(**overrides: Any) -> Settings:
    """Build settings from defaults, config file, environment and the given overrides."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
