"""Container runtime: a template's image run through podman or docker (their CLI).

Every ``imageName`` that is not a ``local:``/``file://`` directory is a container image. A
worker is one ``<engine> run`` of that image, started through a small launcher
(``container_launch.py``) that first pulls the image when it is missing, so the pull's progress
shows while the worker is Initializing and a failed pull is a reason, not an exit code.

What the container gets (docs/containers.md):

- the image, with ``dockerEntrypoint`` replacing its ENTRYPOINT (and CMD, as Docker does) and
  ``dockerStartCmd`` replacing its CMD; neither set: the image's own;
- env: the template's, the endpoint's and the RUNPOD_* worker variables (PROTOCOL.md 5),
  through an env file (mode 0600) so the worker's key is not on a command line;
- the network named by ``container_network`` (``host`` by default: the worker reaches the
  server on loopback, and a pod's ports are the host's);
- only its allocated GPUs: CDI ``--device nvidia.com/gpu=N`` with podman, ``--gpus
  '"device=N,M"'`` with docker; none for CPU workers;
- ``containerDiskInGb`` as ``--storage-opt size=NG`` where the engine's storage can enforce it
  (overlay on xfs); otherwise it is not enforced;
- the network volume at ``/runpod-volume`` (workers) or ``volumeMountPath`` (pods);
- the template's ports published (host network: the same port; otherwise a free host port),
  reported as ``portMappings``;
- output relayed to the worker's log like a process's.

``stop`` is ``<engine> stop -t grace`` (the image's stop signal, then SIGKILL); ``park`` and
``resume`` are ``pause`` / ``unpause``. Containers carry labels naming the server's data dir, so
a restarted server removes the ones its previous run left (``cleanup_orphans``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from runplane.providers.base import (
    EXITED,
    PARKED,
    RUNNING,
    ContainerOptions,
    ImageError,
    ProcessInfo,
    WorkerSpec,
)
from runplane.providers.runtimes.process import _setpriv

LAUNCHER = Path(__file__).with_name("container_launch.py")
ENGINES = ("podman", "docker")
# Where a network volume appears inside a worker (RunPod's path); pods use volumeMountPath.
WORKER_VOLUME_MOUNT = "/runpod-volume"
# Exit codes of `podman run` / `docker run` for their own failures (not the container's).
ENGINE_FAILED, CANNOT_INVOKE, NOT_FOUND = 125, 126, 127

# docker's reference grammar, loosely: [registry[:port]/]path[:tag][@digest], lowercase path.
_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[a-fA-F0-9]{32,}))?$"
)


@dataclass(frozen=True)
class ContainerConfig:
    """The operator's container settings (``container_*`` in config.py)."""

    engine: str = "auto"  # auto | podman | docker | none
    network: str = "host"
    run_args: tuple[str, ...] = ()  # appended to every `run` (e.g. --runtime runc)
    publish_ip: str = "0.0.0.0"  # where non-host networks publish ports
    init: bool = True  # --init: a PID 1 that forwards SIGTERM (graceful stops)
    pull_args: tuple[str, ...] = ()  # added to every pull (e.g. --tls-verify=false)

    @classmethod
    def from_settings(cls, settings: object) -> ContainerConfig:
        """From the server's ``container_*`` settings."""
        g = getattr
        return cls(g(settings, "container_engine", "auto"), g(settings, "container_network", "host"),
                   tuple(g(settings, "container_run_args", ())),
                   g(settings, "container_publish_ip", "0.0.0.0"), g(settings, "container_init", True),
                   tuple(g(settings, "container_pull_args", ())))


@dataclass(frozen=True)
class Engine:
    """A container engine that answered: which CLI, and what its storage can do."""

    name: str  # podman | docker
    binary: str
    version: str = ""
    disk_quota: bool = False  # --storage-opt size= is enforced (overlay on xfs)


class EngineUnavailable(ImageError):
    """No container engine can run images here; the message says why and what to do."""


# -- pure helpers (unit-tested) -----------------------------------------------------------


def is_container_image(image: str) -> bool:
    """Everything but the process runtime's ``local:``/``file://`` directories."""
    return not image.startswith(("local:", "file://"))


def parse_reference(image: str) -> dict[str, str | None]:
    """The image's registry, path, tag and digest; ImageError when it is not a reference."""
    m = _REFERENCE.match(image)
    if not image or m is None:
        raise ImageError(f"imageName {image!r} is not a container image reference "
                         "(e.g. 'runpod/worker-v1-vllm:stable' or 'ghcr.io/org/img:tag'); "
                         "a directory on this host is 'local:/absolute/path'")
    parts = m.groupdict()
    registry = parts["registry"]
    # "user/img": the first part is a Docker Hub namespace unless it looks like a host.
    if registry is not None and not ("." in registry or ":" in registry or registry == "localhost"):
        if registry != registry.lower() or "." in registry:
            raise ImageError(f"imageName {image!r} is not a container image reference: "
                             "repository names are lowercase")
        parts["path"] = f"{registry}/{parts['path']}"
        parts["registry"] = None
    return parts


def qualify(image: str) -> str:
    """A fully qualified reference: short Docker Hub names as docker would read them
    (``ubuntu`` -> ``docker.io/library/ubuntu:latest``), since podman refuses short names
    without configured search registries."""
    p = parse_reference(image)
    registry = p["registry"] or "docker.io"
    path = p["path"] or ""
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    out = f"{registry}/{path}"
    if p["tag"]:
        out += f":{p['tag']}"
    elif not p["digest"]:
        out += ":latest"
    if p["digest"]:
        out += f"@{p['digest']}"
    return out


def auth_config(image: str, username: str, password: str) -> dict[str, object]:
    """A docker ``config.json`` / podman ``auth.json`` holding one registry's credentials."""
    registry = parse_reference(image)["registry"] or "docker.io"
    keys = [registry]
    if registry == "docker.io":
        keys.append("https://index.docker.io/v1/")  # the key docker looks Docker Hub up by
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {k: {"auth": token} for k in keys}}


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
    extra_env: tuple[str, ...] = ()  # NAME=VALUE pairs an env file cannot hold (newlines)


def run_argv(r: RunSpec) -> list[str]:
    """The ``podman run`` / ``docker run`` command line of one worker or pod (attached: its
    output is the launcher's, its exit code the container's)."""
    argv = [r.engine.binary, "run", "--rm", "--name", r.name, "--pull", "never",
            "--network", r.network, "--env-file", r.env_file]
    if r.init:
        argv.append("--init")
    if r.network != "host":
        argv += ["--hostname", r.name]
    for key, value in sorted(r.labels.items()):
        argv += ["--label", f"{key}={value}"]
    for pair in r.extra_env:
        argv += ["--env", pair]
    argv += gpu_args(r.engine.name, r.gpu_indices)
    if r.options.disk_gb and r.engine.disk_quota:
        argv += ["--storage-opt", f"size={int(r.options.disk_gb)}G"]
    if r.volume is not None:
        argv += ["--volume", f"{r.volume[0]}:{r.volume[1]}"]
    if r.network != "host":
        for cport, hport in sorted(r.port_map.items()):
            proto = r.port_protos.get(cport, "tcp")
            argv += ["--publish", f"{r.publish_ip}:{hport}:{cport}/{proto}"]
    argv += list(r.run_args)
    args: list[str] = list(r.options.cmd)
    if r.options.entrypoint:
        # --entrypoint takes one executable (docker); the rest of dockerEntrypoint goes first
        # in the arguments. Overriding the entrypoint drops the image's CMD, as in Docker.
        argv += ["--entrypoint", r.options.entrypoint[0]]
        args = [*r.options.entrypoint[1:], *r.options.cmd]
    argv.append(r.image)
    argv += args
    return argv


def env_file_text(env: dict[str, str]) -> tuple[str, list[str]]:
    """(env file contents, NAME=VALUE pairs that cannot go in one: values with newlines)."""
    lines, rest = [], []
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            rest.append(f"{key}={value}")
        else:
            lines.append(f"{key}={value}\n")
    return "".join(lines), rest


_PODMAN_BLOB = re.compile(r"^Copying blob (?:sha256:)?([0-9a-f]{6,})")
_DOCKER_LAYER = re.compile(r"^([0-9a-f]{12}): (.+)$")


def pull_progress(image: str, lines: list[str]) -> str:
    """What a pull's output says so far, for the worker's reason while it is Initializing:
    ``pulling <image>: 2 of 5 layers done`` (docker), ``pulling <image>: copying layer 3``
    (podman prints each layer as it starts), or the latest step."""
    blobs: list[str] = []
    layers: dict[str, str] = {}
    step = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if m := _PODMAN_BLOB.match(line):
            if m.group(1) not in blobs:
                blobs.append(m.group(1))
            step = f"copying layer {len(blobs)}"
            if line.endswith(" done") or "skipped" in line:
                step += " (done)"
        elif line.startswith("Copying config"):
            step = f"copied {len(blobs)} layers, copying config"
        elif line.startswith(("Writing manifest", "Storing signatures")):
            step = f"copied {len(blobs)} layers, storing the image"
        elif m := _DOCKER_LAYER.match(line):
            layers[m.group(1)] = m.group(2)
            done = sum(1 for s in layers.values()
                       if s.startswith(("Pull complete", "Already exists")))
            step = f"{done} of {len(layers)} layers done"
        elif line.startswith("Trying to pull") or line.endswith("Pulling from " + line.split()[-1]):
            step = "contacting the registry"
    return f"pulling {image}" + (f": {step}" if step else "")


def pull_failure(image: str, lines: list[str], code: int | None) -> str:
    """The reason a failed pull gives: the engine's last error line, credentials never
    included (engines do not print them; a URL's userinfo is cut anyway)."""
    errors = [ln.strip() for ln in lines if ln.strip().lower().startswith("error")]
    last = errors[-1] if errors else next((ln.strip() for ln in reversed(lines) if ln.strip()
                                           and not ln.startswith("--- runplane")), "")
    last = re.sub(r"://[^/@\s]+@", "://", last)
    detail = f": {last}" if last else f" (exit code {code})"
    return f"pulling image {image} failed{detail}"


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


# -- the engine ----------------------------------------------------------------------------


def _run(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def probe_engine(config: ContainerConfig) -> Engine:
    """The configured engine, or the first of podman/docker that answers (``auto``);
    EngineUnavailable saying why when none does."""
    if config.engine == "none":
        raise EngineUnavailable("container images are turned off on this server "
                                "(container_engine = \"none\"): use 'local:/absolute/dir' images")
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
            out = _run([binary, "info", "--format", fmt])
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail_lines(path: Path, n_bytes: int = 16384) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n_bytes))
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


class _Container:
    def __init__(self, spec: WorkerSpec, name: str, image: str, popen: subprocess.Popen[bytes],
                 started_at: float, files: dict[str, Path], ports: dict[int, int]) -> None:
        self.spec = spec
        self.name = name
        self.image = image
        self.popen = popen
        self.started_at = started_at
        self.files = files  # state, pull_log, env, auth
        self.ports = ports
        self.phase = "starting"  # starting | pulling | failed | running
        self.parked = False
        self.stopping = False
        self.stopped_at: float | None = None
        self._info: ProcessInfo | None = None

    def _phase(self) -> str:
        if self.phase in ("starting", "pulling"):
            self.phase = _read(self.files["state"]).strip() or self.phase
        return self.phase

    def info(self) -> ProcessInfo:
        code = self.popen.poll()
        if code is not None and self.stopped_at is None:
            self.stopped_at = time.time()
        phase = self._phase()
        state = EXITED if code is not None else (PARKED if self.parked else RUNNING)
        progress = reason = None
        if phase == "pulling" and code is None:
            progress = pull_progress(self.image, _read(self.files["pull_log"]).splitlines())
        cached = self._info
        if cached is not None and cached.state == state and cached.exit_code == code \
                and cached.progress == progress:
            return cached
        if code is not None and not self.stopping:
            if phase == "failed":
                reason = pull_failure(self.image, _read(self.files["pull_log"]).splitlines(), code)
            elif phase == "running":
                reason = run_failure(_tail_lines(self.spec.log_path), code)
                command = [*self.spec.container.entrypoint, *self.spec.container.cmd]
                if reason and command:
                    reason += f" (command: {shlex.join(command)})"
        self._info = ProcessInfo(
            id=self.spec.id, state=state, pid=self.popen.pid, started_at=self.started_at,
            exit_code=code, stopped_at=self.stopped_at, log_path=str(self.spec.log_path),
            data={"runtime": "container", "container": self.name, "image": self.image,
                  "pid": self.popen.pid, "started_at": self.started_at, "pgid": self.popen.pid,
                  "gpus": list(self.spec.gpu_indices),
                  "portMappings": {str(c): h for c, h in sorted(self.ports.items())}},
            reason=reason, progress=progress,
        )
        return self._info


class ContainerRuntime:
    """Starts, stops, pauses and watches container workers through one engine's CLI."""

    def __init__(self, config: ContainerConfig, run_dir: Path, owner: str) -> None:
        self.config = config
        self.run_dir = run_dir
        # Labels: which server (data dir) owns a container, and which run of it started it.
        self.owner = hashlib.sha256(owner.encode()).hexdigest()[:16]
        self.run_id = uuid.uuid4().hex[:12]
        self._containers: dict[str, _Container] = {}
        self._engine: Engine | None = None
        self._engine_error: EngineUnavailable | None = None
        # Images a container of this run started from: the next start skips the engine's
        # "is it here?" call (~0.1 s); one whose run fails is checked again.
        self._present: set[str] = set()
        self._lock = threading.Lock()

    # -- engine ------------------------------------------------------------------------

    def engine(self) -> Engine:
        """The engine (probed once); EngineUnavailable when there is none."""
        with self._lock:
            if self._engine is None and self._engine_error is None:
                try:
                    self._engine = probe_engine(self.config)
                except EngineUnavailable as err:
                    self._engine_error = err
            if self._engine_error is not None:
                raise self._engine_error
            assert self._engine is not None
            return self._engine

    def cleanup_orphans(self) -> list[str]:
        """Remove containers a previous run of this server left (its workers died with it);
        returns their names. Containers of this run, or of other servers, are left alone."""
        try:
            engine = self.engine()
        except EngineUnavailable:
            return []
        out = _run([engine.binary, "ps", "--all", "--filter", f"label=runplane.owner={self.owner}",
                    "--format", "{{.Names}}"])
        mine = {c.name for c in list(self._containers.values())}
        stale = [n.strip() for n in out.stdout.splitlines() if n.strip() and n.strip() not in mine]
        if stale:
            _run([engine.binary, "rm", "--force", *stale], timeout=120)
        return stale

    def check_image(self, image: str) -> Path:
        parse_reference(image)
        self.engine()
        return self.run_dir

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        """Launch the worker (pull if needed, then run); returns at once."""
        current = self._containers.get(spec.id)
        if current is not None and current.popen.poll() is None:
            raise RuntimeError(f"worker {spec.id} is already running")
        engine = self.engine()
        image = qualify(spec.image) if engine.name == "podman" else spec.image
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = {k: self.run_dir / f"{spec.id}.{k}" for k in ("state", "pull_log", "env", "plan")}
        for f in files.values():
            f.unlink(missing_ok=True)
        env = dict(spec.env)
        volume = None
        host_dir = env.pop("RUNPLANE_VOLUME_PATH", None)
        mount = env.pop("RUNPLANE_VOLUME_MOUNT_PATH", None)
        if host_dir:
            volume = (host_dir, mount or WORKER_VOLUME_MOUNT)
        text, extra_env = env_file_text(env)
        _write_private(files["env"], text)
        ports = container_ports(spec.container.ports)
        if self.config.network == "host":
            port_map = {p: p for p, _ in ports}
        else:
            port_map = {p: _free_port() for p, _ in ports}
        name = f"runplane-{spec.id}".lower()
        argv = run_argv(RunSpec(
            engine=engine, name=name, image=image, env_file=str(files["env"]),
            options=spec.container, gpu_indices=spec.gpu_indices, network=self.config.network,
            volume=volume, port_map=port_map, port_protos=dict(ports),
            publish_ip=self.config.publish_ip,
            labels={"runplane.owner": self.owner, "runplane.run": self.run_id,
                    "runplane.worker": spec.id},
            run_args=self.config.run_args, init=self.config.init, extra_env=tuple(extra_env)))
        plan: dict[str, object] = {
            "image": image, "state": str(files["state"]), "pull_log": str(files["pull_log"]),
            "exists": None if image in self._present
            else [engine.binary, "image", "inspect", "--format", "{{.Id}}", image],
            "pull": [engine.binary, "pull", *self.config.pull_args, image], "run": argv,
            "auth": [],
        }
        if spec.container.registry_auth is not None:
            user, password = spec.container.registry_auth
            auth_dir = self.run_dir / f"{spec.id}.auth"
            auth_dir.mkdir(mode=0o700, exist_ok=True)
            _write_private(auth_dir / "config.json",
                           json.dumps(auth_config(image, user, password)))
            files["auth"] = auth_dir
            plan["auth"] = [str(auth_dir)]
            if engine.name == "podman":
                plan["pull"] = [engine.binary, "pull", "--authfile", str(auth_dir / "config.json"),
                                *self.config.pull_args, image]
            else:
                plan["pull_env"] = {"DOCKER_CONFIG": str(auth_dir)}
        _write_private(files["plan"], json.dumps(plan))
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"--- runplane: starting {spec.id}: {engine.name} image {image}\n".encode())
            log.flush()
            launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(files["plan"])]
            setpriv = _setpriv()
            if setpriv:
                launcher = [setpriv, "--pdeathsig", "KILL", "--", *launcher]
            popen = subprocess.Popen(
                launcher, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=_engine_env())
        c = _Container(spec, name, image, popen, time.time(), files, port_map)
        self._containers[spec.id] = c
        return c.info()

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        """``<engine> stop -t grace`` (stop signal, then SIGKILL); a launcher still pulling is
        signalled instead. Returns once the engine's client has exited."""
        c = self._containers.get(worker_id)
        if c is None:
            return None
        c.stopping = True
        engine = self._engine
        if c.popen.poll() is None:
            if c._phase() == "running" and engine is not None:
                if c.parked:
                    await _async_run([engine.binary, "unpause", c.name])
                    c.parked = False
                await _async_run([engine.binary, "stop", "--time", str(max(0, int(grace_s))),
                                  c.name], timeout=grace_s + 30)
            else:
                _killpg(c.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s + 5
            while c.popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if c.popen.poll() is None:
                _killpg(c.popen.pid, signal.SIGKILL)
                if engine is not None:
                    await _async_run([engine.binary, "rm", "--force", c.name])
                while c.popen.poll() is None:
                    await asyncio.sleep(0.01)
        self._clean_files(c)
        return c.info()

    def park(self, worker_id: str) -> None:
        c = self._containers[worker_id]
        _run([self.engine().binary, "pause", c.name]).check_returncode()
        c.parked = True

    def resume(self, worker_id: str) -> None:
        c = self._containers[worker_id]
        _run([self.engine().binary, "unpause", c.name]).check_returncode()
        c.parked = False

    def list(self) -> list[ProcessInfo]:
        out = []
        for c in self._containers.values():
            info = c.info()
            if c.phase == "running" and info.reason is None:
                self._present.add(c.image)
            elif info.reason is not None:
                self._present.discard(c.image)
            out.append(info)
        return out

    def get(self, worker_id: str) -> ProcessInfo | None:
        c = self._containers.get(worker_id)
        return c.info() if c else None

    def has(self, worker_id: str) -> bool:
        return worker_id in self._containers

    def has_any(self) -> bool:
        return bool(self._containers)

    def forget(self, worker_id: str) -> None:
        c = self._containers.get(worker_id)
        if c is not None and c.popen.poll() is not None:
            self._clean_files(c, everything=True)
            del self._containers[worker_id]

    def _clean_files(self, c: _Container, everything: bool = False) -> None:
        """Secrets go as soon as the container is stopped; its state once it is forgotten."""
        for key, path in c.files.items():
            if key == "auth":
                shutil.rmtree(path, ignore_errors=True)
            elif key in ("env", "plan") or everything:
                path.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _engine_env() -> dict[str, str]:
    """The engine client's environment: the host's, minus the server's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _async_run(argv: list[str], timeout: float = 30.0) -> int | None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        return None
