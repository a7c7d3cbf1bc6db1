"""The ``podman create`` / ``docker run`` command line of one worker or pod (pure), and what the
engine's exit says about it (``run_failure``). What goes into it is in runtime.py's docstring.

Nothing a user sent is read by the engine as one of its options: the image follows ``--``,
``--entrypoint`` takes its value in the same word, and the env reaches the container through
a file (``env_file_text``) or, for a value a file cannot hold, a podman secret the launcher
creates from its standard input; never through the engine client's environment."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from runplane.providers.base import ContainerOptions, ImageError
from runplane.providers.runtimes.container.engine import Engine

# Exit codes of `podman run` / `docker run` for their own failures (not the container's).
ENGINE_FAILED, CANNOT_INVOKE, NOT_FOUND = 125, 126, 127


def container_ports(ports: Iterable[str]) -> list[tuple[int, str]]:
    """(port, tcp|udp) for each template port ("8888/http", "22/tcp", "8000")."""
    out = []
    for p in ports:
        num, _, proto = str(p).partition("/")
        if num.strip().isdigit():
            out.append((int(num), "udp" if proto.strip() == "udp" else "tcp"))
    return out


def gpu_args(engine: str, gpu_indices: Iterable[int]) -> list[str]:
    """Only the allocated GPUs: CDI devices (podman), ``--gpus`` with a device list (docker).

    docker parses ``--gpus`` as CSV, so a list of several devices needs the inner quotes."""
    indices = [int(i) for i in gpu_indices]
    if not indices:
        return []
    if engine == "docker":
        return ["--gpus", '"device=' + ",".join(str(i) for i in indices) + '"']
    out: list[str] = []
    for i in indices:
        out += ["--device", f"nvidia.com/gpu={i}"]
    return out


@dataclass(frozen=True)
class RunSpec:
    """Everything ``run_argv`` needs, decided by the runtime (no I/O in ``run_argv``)."""

    engine: Engine
    name: str
    image: str
    env_file: str
    options: ContainerOptions = field(default_factory=ContainerOptions)
    gpu_indices: tuple[int, ...] = ()
    network: str = "host"
    volume: tuple[str, str] | None = None  # (host dir, mount path)
    port_map: dict[int, int] = field(default_factory=dict)  # container port -> host port
    port_protos: dict[int, str] = field(default_factory=dict)
    publish_ip: str = "0.0.0.0"
    labels: dict[str, str] = field(default_factory=dict)
    run_args: tuple[str, ...] = ()
    init: bool = True
    # (secret, variable) of each value an env file cannot hold (a newline): podman secrets the
    # launcher creates, set as the variable in the container (``--secret S,type=env,target=V``).
    secrets: tuple[tuple[str, str], ...] = ()
    pids_limit: int = 0
    # Container ports published on another address than ``publish_ip`` (a load-balancing
    # worker's: only the server reaches them, on loopback).
    port_hosts: dict[int, str] = field(default_factory=dict)


def run_argv(r: RunSpec) -> list[str]:
    """The command line that makes the container: ``podman create`` (the launcher then
    initialises it, opens its door to the server and starts it attached: its output is the
    launcher's, its exit code the container's) or ``docker run`` (attached)."""
    verb = "create" if r.engine.name == "podman" else "run"
    # no-new-privileges: nothing inside gains privileges through setuid binaries.
    argv = [r.engine.binary, verb, "--rm", "--name", r.name, "--pull", "never",
            "--security-opt", "no-new-privileges", "--network", r.network,
            "--env-file", r.env_file]
    if r.init:
        argv.append("--init")
    # The size it was placed with, as the container's cgroup limits.
    if r.options.cpus:
        argv += ["--cpus", f"{r.options.cpus:g}"]
    if r.options.memory_gb:
        argv += ["--memory", f"{max(6, int(r.options.memory_gb * 1024))}m"]
    if r.pids_limit:
        argv += ["--pids-limit", str(r.pids_limit)]
    if r.network != "host":
        argv += ["--hostname", r.name]
    for key, value in sorted(r.labels.items()):
        argv += ["--label", f"{key}={value}"]
    for secret, variable in r.secrets:
        argv += ["--secret", f"{secret},type=env,target={variable}"]
    argv += gpu_args(r.engine.name, r.gpu_indices)
    if r.options.disk_gb and r.engine.disk_quota:
        argv += ["--storage-opt", f"size={int(r.options.disk_gb)}G"]
    if r.volume is not None:
        argv += ["--volume", f"{r.volume[0]}:{r.volume[1]}"]
    if r.network != "host":
        for cport, hport in sorted(r.port_map.items()):
            proto = r.port_protos.get(cport, "tcp")
            host = r.port_hosts.get(cport, r.publish_ip)
            argv += ["--publish", f"{host}:{hport}:{cport}/{proto}"]
    argv += list(r.run_args)
    args: list[str] = list(r.options.cmd)
    if r.options.entrypoint:
        # --entrypoint takes one executable (docker); the rest of dockerEntrypoint goes first
        # in the arguments. Overriding the entrypoint drops the image's CMD, as in Docker.
        # One word with its value: a value starting with "-" is never read as an option.
        argv.append(f"--entrypoint={r.options.entrypoint[0]}")
        args = [*r.options.entrypoint[1:], *r.options.cmd]
    # "--": the options end here, whatever the image's name looks like.
    argv += ["--", r.image]
    argv += args
    return argv


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_file_text(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(env file contents, the variables that cannot go in one: values with a newline, which
    reach the container as podman secrets). A name that is not a plain variable name is
    refused (ImageError): a line without ``=`` would make the engine copy its own variable."""
    lines, rest = [], {}
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ImageError(f"env name {key!r} is not a valid environment variable name")
        if "\0" in value:
            raise ImageError(f"env {key}: the value may not contain NUL")
        if "\n" in value or "\r" in value:
            rest[key] = value
        else:
            lines.append(f"{key}={value}\n")
    return "".join(lines), rest


_INIT_EXEC_FAILED = re.compile(r"catatonit.*failed to exec pid1|tini.*exec .* failed")


def run_failure(lines: list[str], code: int | None) -> str | None:
    """Why the engine could not run the container (exit 125-127 with its own ``Error:``
    line, or the --init process unable to exec the command), or None when the exit code is
    the container's."""
    if code and (init := [ln.strip() for ln in lines if _INIT_EXEC_FAILED.search(ln)]):
        return f"the container's command could not be started (exit code {code}): {init[-1]}"
    if code not in (ENGINE_FAILED, CANNOT_INVOKE, NOT_FOUND):
        return None
    errors = [ln.strip() for ln in lines if ln.strip().startswith("Error")
              or ln.strip().startswith("docker: Error")]
    if not errors:
        return None
    return f"the container engine could not run the image (exit code {code}): {errors[-1]}"
