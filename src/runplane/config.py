"""Server settings: embedded defaults, overridden by a TOML file, env vars and CLI flags.

Precedence (highest first): explicit keyword arguments (the CLI's flags), ``RUNPLANE_*``
environment variables, the TOML config file (``--config``, ``RUNPLANE_CONFIG`` or
``<data_dir>/runplane.toml``), then the defaults below.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from runplane.security_settings import LimitSettings, SecuritySettings

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
    # On SIGTERM (docs/operator.md): "keep" the workers for the next run, or "drain": running
    # jobs finish (up to drain_timeout_s, no new ones), then the workers are stopped.
    shutdown: Literal["keep", "drain"] = "keep"
    drain_timeout_s: float = 60.0


class BrokerSettings(BaseModel):
    """The job broker (docs/jobs.md): long-polls, retries, heartbeats, retention."""

    model_config = {"extra": "forbid"}

    # How long job-take holds a long-poll open (must stay under every SDK's 30 s cap).
    job_take_hold_s: float = 20.0
    # Times a job lost by its worker is re-queued before it is failed.
    job_max_retries: int = 3
    # A worker silent for this long is considered dead and its jobs are re-queued.
    worker_heartbeat_timeout_s: float = 30.0
    # Ping interval injected into workers (RUNPOD_PING_INTERVAL, milliseconds).
    worker_ping_interval_ms: int = 10_000
    # A job its worker's pings stop listing for this long is lost (covers job-done retries).
    job_lost_grace_s: float = 15.0
    # How often the timeout/TTL/heartbeat sweep runs.
    sweep_interval_s: float = 1.0
    # The pause between webhook delivery attempts (RunPod: 3 attempts, 10 s apart).
    webhook_retry_delay_s: float = 10.0
    # Job retention after a final state (RunPod: 30 min for /run, 1 min for /runsync).
    run_result_retention_s: float = 1800.0
    runsync_result_retention_s: float = 60.0
    # Load runplane's accelerator into unmodified runpod SDK workers (docs/workers.md): their
    # job loop waits on events instead of the SDK's 1 s and 0.1 s timers. A template's env
    # RUNPLANE_ACCELERATOR=0 turns it off for its workers; false here, for every worker.
    accelerator: bool = True
    # How long a result or cancel waits for a store that cannot write before a 503.
    store_wait_s: float = 5.0
    # Bytes of jobs the server holds in memory for one endpoint and for one user (inputs of
    # queued and running jobs, stream chunks and progress kept in memory; 0: no budget):
    # past them a submission is 429 (413 when it alone is over), a chunk is kept in the
    # store only. Finished jobs' results leave memory once stored but for a cache of the
    # just-finished ones, of result_cache_bytes in all (docs/security.md).
    max_held_bytes_per_endpoint: int = Field(default=1_000_000_000, ge=0)
    max_held_bytes_per_user: int = Field(default=2_000_000_000, ge=0)
    result_cache_bytes: int = Field(default=64_000_000, ge=0)


class ContainerSettings(BaseModel):
    """Container images (docs/containers.md)."""

    model_config = {"extra": "forbid"}

    # Which engine runs them ("auto" = podman, else docker, whichever answers; "none" refuses
    # them), the network containers join ("private": each worker on a network of its own
    # that reaches the outside world and the server's port, not the host's loopback nor
    # other workers, podman only; "host": the host's network, shared by every container, the
    # operator's explicit choice; any other name: that engine network), arguments added to
    # every `run` (e.g. ["--runtime", "runc"]) and to every pull (e.g.
    # ["--tls-verify=false"] for a plain-HTTP registry of your own), the address ports are
    # published on off the host network, and --init (a PID 1 that passes the stop signal
    # on, so stops are graceful).
    engine: Literal["auto", "podman", "docker", "none"] = "auto"
    network: str = "private"
    run_args: list[str] = Field(default_factory=list)
    pull_args: list[str] = Field(default_factory=list)
    publish_ip: str = "0.0.0.0"
    init: bool = True
    # Processes a container may have (a fork bomb stays inside); 0: the engine's default.
    pids_limit: int = 4096


class RaySettings(BaseModel):
    """The Ray cluster workers run on with ``provider = "ray"`` (docs/ray.md)."""

    model_config = {"extra": "forbid"}

    # Empty: Ray's own choice (RAY_ADDRESS, else the cluster `ray start` made on this host,
    # else a new one-node Ray here).
    address: str = ""
    # Ray namespace of runplane's worker actors (detached, named runplane-<owner>-<worker id>-
    # <run>-<n>: providers/ray/names.py).
    namespace: str = "runplane"


class LoadBalancerSettings(BaseModel):
    """Load-balancing endpoints (docs/load-balancing.md): RunPod's limits by default.
    ``base_domain`` (e.g. ``lb.example.com``, with wildcard DNS and TLS in front) also
    serves endpoint ``abc`` at ``abc.lb.example.com``; "" serves it only at ``/lb/abc/``."""

    model_config = {"extra": "forbid"}

    base_domain: str = ""
    max_body_bytes: int = 30_000_000
    wait_for_worker_s: float = 120.0
    request_timeout_s: float = 330.0
    health_interval_s: float = 1.0
    # A worker still starting (204, or not answering yet) is asked this often.
    health_interval_starting_s: float = 0.2
    health_timeout_s: float = 2.0
    # Failed health checks in a row that make a worker UNHEALTHY (replaced); one takes it
    # out of rotation.
    unhealthy_after: int = 3


# Flat keys of earlier releases -> (group, key) (see Settings._legacy_flat_keys).
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    **{k: ("broker", k) for k in (
        "job_take_hold_s", "job_max_retries", "worker_heartbeat_timeout_s",
        "worker_ping_interval_ms", "job_lost_grace_s", "webhook_retry_delay_s",
        "run_result_retention_s", "runsync_result_retention_s")},
    "broker_sweep_interval_s": ("broker", "sweep_interval_s"),
    **{f"container_{k}": ("container", k) for k in (
        "engine", "network", "run_args", "pull_args", "publish_ip", "init")},
    "ray_address": ("ray", "address"),
    "ray_namespace": ("ray", "namespace"),
}


class Settings(BaseSettings):
    """Everything the server reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="RUNPLANE_", env_nested_delimiter="__",
                                      extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = DEFAULT_DATA_DIR
    config_file: Path | None = None
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # What an acknowledged write survives: "crash" (the server killed: WAL, synchronous
    # NORMAL) or "power_loss" (also the machine: an fsync per group commit). docs/operator.md
    durability: Literal["crash", "power_loss"] = "crash"
    # Base URL workers use to reach the server; empty means http://{host}:{port}.
    public_url: str = ""
    # Base URL clients reach the job API at, for REST v2's ``requestUrls`` (behind a proxy or
    # on another name than workers use); empty means public_url.
    public_api_url: str = ""
    # Refuse unknown fields in /v1 request bodies (400) instead of ignoring them and naming
    # them in the X-Runplane-Ignored-Fields header (RunPod's v1 schemas do not forbid them).
    strict_validation: bool = False
    log_level: str = "info"
    # Server logs: "json" (one object per line with ts, level, logger, message and the job,
    # worker and endpoint ids; for log shippers) or "text" (for a terminal).
    log_format: Literal["json", "text"] = "json"
    # /metrics answers only with an admin API key (docs/observability.md); false opens it
    # to anyone who reaches the server (it names every user's endpoints).
    metrics_require_auth: bool = True

    # Catalog extensions: operators' own data centers and GPU types.
    extra_data_centers: list[str] = Field(default_factory=list)
    extra_gpu_types: list[CustomGpuType] = Field(default_factory=list)

    # Request limits (docs/security.md#connections): a connection that sends no request head
    # for head_timeout_s is closed.
    head_timeout_s: float = 10.0
    # A request's body must come at body_min_bytes_per_s on average once body_grace_s has
    # passed, and be in within body_timeout_s (20 MB at ~35 KB/s); time the server itself
    # stops reading (its app has not taken what came) is not counted. Else: 408 and closed.
    body_grace_s: float = Field(default=10.0, ge=0)
    body_min_bytes_per_s: int = Field(default=10_000, ge=0)
    body_timeout_s: float = Field(default=600.0, gt=0)
    # Open connections from one address (0: no cap); past it a new one is answered 429 and
    # closed unread. The server's own workers on this host share the loopback address.
    max_connections_per_address: int = Field(default=256, ge=0)
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses or networks, "*":
    # any); empty: no forwarded header is (docs/operator.md#behind-a-reverse-proxy). They are
    # exempt from the connection cap, which the proxy applies per client instead.
    trusted_proxies: list[str] = Field(default_factory=list)
    max_v1_body_bytes: int = 1_000_000
    max_run_body_bytes: int = 10_000_000
    max_runsync_body_bytes: int = 20_000_000

    # Create the demo template and endpoint from examples/ at start-up.
    demo: bool = False

    # Network volumes: one directory per volume under <volume_root>/<dataCenterId>/<id>;
    # None means <data_dir>/volumes. Billed per GB-month of their size (RunPod: $0.07).
    volume_root: Path | None = None
    network_volume_usd_per_gb_month: float = 0.07

    # This host as a machine, and the controller that runs workers on it.
    machine: MachineSettings = Field(default_factory=MachineSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)

    # Where workers and pods run (docs/ray.md): "local" (this host, one machine) or "ray"
    # (every node of the Ray cluster of [ray]). Needs `pip install runplane[ray]`.
    provider: Literal["local", "ray"] = "local"
    # The job broker, container images and the Ray cluster.
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    container: ContainerSettings = Field(default_factory=ContainerSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    # Rate limits and quotas, and what users may reach on the host (docs/security.md).
    limits: LimitSettings = Field(default_factory=LimitSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    lb: LoadBalancerSettings = Field(default_factory=LoadBalancerSettings)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an address, a network "
                                     "(10.0.0.0/8) or '*'") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _legacy_flat_keys(cls, data: Any) -> Any:
        """Earlier releases had these groups' settings as flat keys (``job_take_hold_s``,
        ``container_engine``, ``ray_address`` ...); they are still accepted, in the file, as
        keyword arguments and as ``RUNPLANE_<KEY>`` variables, and moved into their group. A
        value given in the group itself wins."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for flat, (group, key) in LEGACY_KEYS.items():
            if flat in data:
                value = data.pop(flat)
                section = data.get(group)
                section = dict(section) if isinstance(section, dict) else {}
                section.setdefault(key, value)
                data[group] = section
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _LegacyEnvSource(settings_cls),
                _TomlSource(settings_cls, init_settings, env_settings))

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

    @property
    def resolved_api_url(self) -> str:
        """Where clients send jobs (``public_api_url``, else ``resolved_public_url``)."""
        return self.public_api_url.rstrip("/") if self.public_api_url else self.resolved_public_url


class _LegacyEnvSource(PydanticBaseSettingsSource):
    """``RUNPLANE_<KEY>`` for the flat keys of earlier releases (``LEGACY_KEYS``), as strings
    (JSON for lists), for the model's validator to move into their groups."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for flat in LEGACY_KEYS:
            raw = os.environ.get(f"RUNPLANE_{flat.upper()}")
            if raw is not None:
                out[flat] = json.loads(raw) if flat.endswith("_args") else raw
        return out


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
