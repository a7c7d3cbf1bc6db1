"""Container runtime: a template's image run through podman or docker (their CLI).

Every ``imageName`` that is not a ``local:``/``file://`` directory is a container image. A
worker is one container of that image, started through a small launcher (``launch.py``)
that first pulls the image when it is missing, so the pull's progress shows while the worker
is Initializing and a failed pull is a reason, not an exit code; then (podman) makes the
container, its network and its door to the server and starts it attached, or (docker) runs it
attached.

What the container gets (docs/containers.md):

- the image, with ``dockerEntrypoint`` replacing its ENTRYPOINT (and CMD, as Docker does) and
  ``dockerStartCmd`` replacing its CMD; neither set: the image's own;
- env: the template's, the endpoint's and the RUNPOD_* worker variables (PROTOCOL.md 5),
  through an env file (mode 0600) so the worker's key is not on a command line; a value a
  file cannot hold (a newline) as a podman secret. Never through the environment of an engine
  command: those get the server's own (``_engine_env``), nothing of a user's;
- the network named by ``[container] network``: ``private`` by default, a network of its own
  that reaches the server's port through a door and not the host's loopback nor other
  workers (``network``); ``host`` or an engine network when the operator says so;
- only its allocated GPUs: CDI ``--device nvidia.com/gpu=N`` with podman, ``--gpus
  '"device=N,M"'`` with docker; none for CPU workers;
- ``containerDiskInGb`` as ``--storage-opt size=NG`` where the engine's storage can enforce it
  (overlay on xfs); otherwise it is not enforced;
- the network volume at ``/runpod-volume`` (workers) or ``volumeMountPath`` (pods);
- the template's ports published (host network: the same port; otherwise a free host port),
  reported as ``portMappings``;
- output relayed to the worker's log like a process's.

``stop`` is ``<engine> stop -t grace`` (the image's stop signal, then SIGKILL); ``park`` and
``resume`` freeze and thaw its cgroup (``freezer``). Containers outlive the server (only
their engine client dies with it): a restarted server takes each running one back (``adopt``,
through the ``adopt`` module) and removes the rest its previous run left, labelled with its
data dir (``cleanup_orphans``), their networks and secrets included.

This module drives the processes; the rest of the package lives beside it: ``engine`` (which
engine, the operator's settings), ``plan`` (what the launcher is told to do), ``argv`` (the
``create``/``run`` command line and what its exit says), ``network`` (private networks and the
door to the server), ``image`` (references, registry auth, pull progress and failures) and
``watch`` (one container's state as a ``ProcessInfo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from runplane.config import ContainerSettings
from runplane.providers.base import EXITED, ProcessInfo, WorkerSpec
from runplane.providers.runtimes.container.adopt import (
    follow,
    output_start,
    remove_leftovers,
    reopen_door,
    running_containers,
)
from runplane.providers.runtimes.container.engine import (
    Engine,
    EngineUnavailable,
    probe_engine,
    remove,
    remove_async,
    run_cli,
)
from runplane.providers.runtimes.container.freezer import Freezer
from runplane.providers.runtimes.container.network import Door, loopback_address
from runplane.providers.runtimes.container.plan import Where, launch_plan, with_registry_auth
from runplane.providers.runtimes.container.image import (
    auth_config,
    parse_reference,
    qualify,
)
from runplane.providers.runtimes.container.watch import Watched
from runplane.providers.runtimes.process import _setpriv

LAUNCHER = Path(__file__).with_name("launch.py")
Argvs = list[list[str]]  # engine command lines (the class's ``list`` method shadows the name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class ContainerRuntime:
    """Starts, stops, pauses and watches container workers through one engine's CLI."""

    def __init__(self, config: ContainerSettings, run_dir: Path, owner: str,
                 server_url: str = "") -> None:
        self.config = config
        self.run_dir = run_dir
        # The server as workers reach it (public_url): on loopback, a private network's
        # container gets a door to it (network).
        self.server_url = server_url
        self._server = loopback_address(server_url)
        # Labels: which server (data dir) owns a container, and which run of it started it.
        self.owner = hashlib.sha256(owner.encode()).hexdigest()[:16]
        self.run_id = uuid.uuid4().hex[:12]
        self._containers: dict[str, Watched] = {}
        self._engine: Engine | None = None
        self._engine_error: EngineUnavailable | None = None
        # Images a container of this run started from: the next start skips the engine's
        # "is it here?" call (~0.1 s); one whose run fails is checked again.
        self._present: set[str] = set()
        self._lock = threading.Lock()
        # The start-up's one look at which of this server's containers still run (``adopt``).
        self._survivors: set[str] | None = None

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
        """Remove containers a previous run of this server left and this run did not take
        over (``adopt``: parked ones, ones the store no longer lists); returns their names.
        Containers of this run, adopted ones included, or of other servers are left alone."""
        try:
            engine = self.engine()
        except EngineUnavailable:
            return []
        out = run_cli([engine.binary, "ps", "--all", "--filter",
                       f"label=runplane.owner={self.owner}", "--format", "{{.Names}}"])
        mine = {c.name for c in list(self._containers.values())}
        stale = [n.strip() for n in out.stdout.splitlines() if n.strip() and n.strip() not in mine]
        if stale:
            run_cli([engine.binary, "rm", "--force", *stale], timeout=120)
        if engine.name == "podman":
            remove_leftovers(engine.binary, self.owner, self.run_id,
                             {str(c.data.get("network")) for c in self._containers.values()})
        return stale

    def adopt(self, spec: WorkerSpec, data: dict[str, object]) -> ProcessInfo | None:
        """Take back a container a previous run of this server started (``data``: its recorded
        ``ProcessInfo.data``) if the engine still runs it, as if this run had started it: a
        follower (``adopt.follow``) relays its output to the worker's log again and
        exits with its exit code; stop, park, resume and forget work as on any other. None
        when it is gone or there is no engine (its jobs are then retried)."""
        name = data.get("container")
        if not isinstance(name, str) or not name or spec.id in self._containers:
            return None
        try:
            engine = self.engine()
        except EngineUnavailable:
            return None
        if self._survivors is None:  # one engine call for the whole start-up
            self._survivors = running_containers(engine.binary, self.owner)
        if name not in self._survivors:
            return None
        mappings = data.get("portMappings")
        ports = {int(c): int(h) for c, h in mappings.items()} \
            if isinstance(mappings, dict) else {}
        started = data.get("started_at")
        # Its launch files, if the dead run left any (the env file holds the worker's key):
        # removed when it stops or is forgotten, as if started here.
        files = {k: self.run_dir / f"{spec.id}.{k}" for k in ("state", "pull_log", "env", "plan")}
        popen = follow(engine.binary, name, spec.log_path, output_start(files["state"]),
                       _engine_env())
        c = Watched(spec, name, str(data.get("image") or spec.image), popen,
                    float(started) if isinstance(started, (int, float)) else time.time(),
                    files, ports, Freezer(engine.binary, name), phase="running")
        network, door = data.get("network"), data.get("forward")
        if isinstance(network, str) and network:
            c.cleanup = [[engine.binary, "network", "rm", network]]
            c.data["network"] = network
        if isinstance(door, dict):
            # Its door to the server died with the previous run: this run opens it again.
            with contextlib.suppress(KeyError, TypeError, ValueError):
                d = Door(str(door["host"]), int(door["port"]), int(door["inside"]))
                c.forwarder = reopen_door(engine.binary, name, d, spec.log_path, _engine_env())
                c.data["forward"] = {"host": d.host, "port": d.port, "inside": d.inside}
        self._containers[spec.id] = c
        return c.info()

    def takeover_done(self) -> None:
        """The start-up's adopts are over: a later ``adopt`` asks the engine afresh."""
        self._survivors = None

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
        parse_reference(image)  # never an engine's option, whatever reached here
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = {k: self.run_dir / f"{spec.id}.{k}" for k in ("state", "pull_log", "env", "plan")}
        for f in files.values():
            f.unlink(missing_ok=True)
        labels = {"runplane.owner": self.owner, "runplane.run": self.run_id,
                  "runplane.worker": spec.id}
        launch = launch_plan(engine, self.config, spec, image, Where(
            files, labels, self.server_url, self._server, image in self._present), _free_port)
        name, plan = launch.name, launch.plan
        _write_private(files["env"], launch.env_text)
        if spec.container.registry_auth is not None:
            user, password = spec.container.registry_auth
            auth_dir = self.run_dir / f"{spec.id}.auth"
            auth_dir.mkdir(mode=0o700, exist_ok=True)
            _write_private(auth_dir / "config.json",
                           json.dumps(auth_config(image, user, password)))
            files["auth"] = auth_dir
            with_registry_auth(plan, engine, self.config, image, auth_dir)
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
        c = Watched(spec, name, image, popen, time.time(), files, launch.port_map,
                    Freezer(engine.binary, name))
        c.cleanup, c.data = launch.cleanup, launch.data
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
            if c.current_phase() == "running" and engine is not None:
                if c.parked:
                    with contextlib.suppress(subprocess.CalledProcessError):  # stopping anyway
                        await asyncio.to_thread(c.freezer.thaw)
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
        if not c.cleaned and engine is not None:
            c.cleaned = True
            await remove_async(self._leftovers(c, engine))
        return c.info()

    def park(self, worker_id: str) -> None:
        c = self._containers[worker_id]
        c.freezer.freeze()  # its cgroup's freezer file, or the engine (freezer)
        c.parked = True

    def resume(self, worker_id: str) -> None:
        c = self._containers[worker_id]
        c.freezer.thaw()
        c.parked = False

    def list(self) -> list[ProcessInfo]:
        out = []
        for c in self._containers.values():
            info = c.info()
            if c.phase == "running" and info.reason is None:
                self._present.add(c.image)
                c.freezer.prepare()
            elif info.reason is not None:
                self._present.discard(c.image)
            if info.state == EXITED and not c.stopping:  # ended by itself: its network goes
                self._clean_up_later(c)
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
            self._clean_up_later(c)

    def _clean_up_later(self, c: Watched) -> None:
        """``_leftovers`` of an exited container, once, in a thread (engine calls, off the
        caller's loop)."""
        if c.cleaned or self._engine is None:
            return
        c.cleaned = True
        leftovers = self._leftovers(c, self._engine)
        if leftovers:
            threading.Thread(target=remove, args=(leftovers,), daemon=True,
                             name="runplane-container-leftovers").start()

    def _leftovers(self, c: Watched, engine: Engine) -> Argvs:
        """The engine commands that remove what an exited container leaves: a container
        made but never started (its launcher stopped half-way), then its network and any
        secrets (``Watched.cleanup``). Its door, if a restarted server opened it, closes."""
        if c.forwarder is not None and c.forwarder.poll() is None:
            c.forwarder.kill()
            c.forwarder.wait()
        started = c.current_phase() == "running"
        out = [] if started else [[engine.binary, "rm", "--force", c.name]]
        return out + c.cleanup

    def _clean_files(self, c: Watched, everything: bool = False) -> None:
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
    """The engine client's environment: the host's, minus the server's own settings. Nothing
    of a user's is ever added to it (their env reaches the container through files)."""
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
