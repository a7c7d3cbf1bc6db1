"""What the launcher is told to do for one container worker (``launch_plan``): the engine's
command lines, the env file's text, the ports, and what to remove once the container is gone.

Decided here without I/O (the runtime writes the files and starts the launcher). Nothing a
user sent reaches an engine command except as data the engine does not read as its own: the
env goes into the env file (mode 0600) or, for a value a file cannot hold, a podman secret
made from the launcher's standard input; the image follows ``--``; the container's command
follows the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runplane.accelerator import CONTAINER_DIR, SITE_DIR, enabled
from runplane.config import ContainerSettings
from runplane.providers.base import WorkerSpec
from runplane.providers.runtimes.container.argv import (
    RunSpec,
    container_ports,
    env_file_text,
    run_argv,
)
from runplane.providers.runtimes.container.engine import Engine
from runplane.providers.runtimes.container.network import (
    PRIVATE,
    check_engine,
    door_for,
    network_create,
    rewrite_server_urls,
)

FORWARDER = Path(__file__).with_name("forward.py")
# Where a network volume appears inside a worker (RunPod's path); pods use volumeMountPath.
WORKER_VOLUME_MOUNT = "/runpod-volume"


@dataclass
class Launch:
    """One worker's launch: the launcher's plan, the env file's text, where its ports are
    published, the engine commands that remove what it leaves (``cleanup``) and what its
    ``ProcessInfo.data`` records of its network (``data``)."""

    name: str
    plan: dict[str, object]
    env_text: str
    port_map: dict[int, int]
    cleanup: list[list[str]] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Where:
    """The runtime's side of a launch: its files, its labels, the server as workers reach
    it (``server_url``; ``server``: its loopback address, when it is on one) and whether the
    image is known to be here (``present``)."""

    files: dict[str, Path]
    labels: dict[str, str]
    server_url: str = ""
    server: tuple[str, int] | None = None
    present: bool = False


def launch_plan(engine: Engine, config: ContainerSettings, spec: WorkerSpec, image: str,
                where: Where, free_port: Callable[[], int]) -> Launch:
    """The launch of ``spec`` (its ``image`` qualified for the engine); ImageError when the
    engine cannot run it as configured (network.check_engine, env names)."""
    files = where.files
    env = dict(spec.env)
    volume = None
    host_dir = env.pop("RUNPLANE_VOLUME_PATH", None)
    mount = env.pop("RUNPLANE_VOLUME_MOUNT_PATH", None)
    if host_dir:
        volume = (host_dir, mount or WORKER_VOLUME_MOUNT)
    accelerate = enabled(env)
    # The accelerator's PYTHONPATH is set by the launcher, which reads the image's own.
    own_pythonpath = env.pop("PYTHONPATH", None) if accelerate else None
    ports = container_ports(spec.container.ports)
    port_map = {p: p if config.network == "host" else free_port() for p, _ in ports}
    name = f"runplane-{spec.id}".lower()
    private = config.network == PRIVATE
    network = name if private else config.network
    door = door_for(where.server, port_map) if private else None
    if door is not None:
        env = rewrite_server_urls(env, where.server_url, door)
    text, multiline = env_file_text(env)
    check_engine(engine.name, config.network, multiline)
    secrets = [(f"{name}-env-{i}", key) for i, key in enumerate(multiline)]
    # A load-balancing worker's ports: on loopback (or publish_ip when it names one
    # address), where the server reaches them; no one else gets past the proxy to them.
    http_hosts = {p: spec.http.host for p in (spec.http.port, spec.http.health_port)} \
        if spec.http is not None and spec.http.mapped else {}
    argv = run_argv(RunSpec(
        engine=engine, name=name, image=image, env_file=str(files["env"]),
        options=spec.container, gpu_indices=spec.gpu_indices, network=network,
        volume=volume, port_map=port_map, port_protos=dict(ports),
        publish_ip=config.publish_ip, labels=where.labels,
        run_args=tuple(config.run_args), init=config.init,
        secrets=tuple(secrets), pids_limit=config.pids_limit, port_hosts=http_hosts))
    plan: dict[str, object] = {
        "image": image, "state": str(files["state"]), "pull_log": str(files["pull_log"]),
        "exists": None if where.present
        else [engine.binary, "image", "inspect", "--format", "{{.Id}}", "--", image],
        "pull": [engine.binary, "pull", *config.pull_args, "--", image], "run": argv,
        "auth": [], "env_file": str(files["env"]),
    }
    launch = Launch(name, plan, text, port_map)
    if engine.name == "podman":
        plan["podman"] = {
            "name": name,
            "network": network_create(engine.binary, network, where.labels) if private else None,
            "secrets": [[secret, env[key]] for secret, key in secrets],
            "secret_create": [engine.binary, "secret", "create",
                              *(f"--label={k}={v}" for k, v in sorted(where.labels.items()))],
            "forward": door.plan(str(FORWARDER)) if door is not None else None,
        }
        # What outlives the container unless removed: secrets a launcher killed half-way
        # left, its network (never --force: that would remove a container still on it, one
        # whose client died without it).
        if secrets:
            launch.cleanup.append([engine.binary, "secret", "rm", *(s for s, _ in secrets)])
        if private:
            launch.cleanup.append([engine.binary, "network", "rm", network])
            launch.data["network"] = network
        if door is not None:
            launch.data["forward"] = {"host": door.host, "port": door.port, "inside": door.inside}
    if accelerate:
        plan["accelerator"] = {"mount": f"{SITE_DIR}:{CONTAINER_DIR}:ro", "dir": CONTAINER_DIR,
                               "pythonpath": own_pythonpath, "image_at": argv.index("--")}
    return launch


def with_registry_auth(plan: dict[str, object], engine: Engine, config: ContainerSettings,
                       image: str, auth_dir: Path) -> None:
    """The pull of ``plan`` with the credentials file in ``auth_dir`` (podman ``--authfile``,
    docker ``DOCKER_CONFIG``: runplane's own variable, the only one a pull gets)."""
    plan["auth"] = [str(auth_dir)]
    if engine.name == "podman":
        plan["pull"] = [engine.binary, "pull", "--authfile", str(auth_dir / "config.json"),
                        *config.pull_args, "--", image]
    else:
        plan["pull_env"] = {"DOCKER_CONFIG": str(auth_dir)}
