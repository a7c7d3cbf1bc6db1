"""The Ray provider: workers and pods as Ray actors on the nodes of a Ray cluster.

runplane connects to the cluster as a driver (``ray.init(address=...)``). Every live node that
offers CPUs or GPUs is a machine (``ray_nodes.node_machine``: Ray's resources, the operator's
labels and custom resources, and a probe task that reads NVML on the node). The scheduler
places a worker on one of those machines, as it does locally, so its reasons stay visible;
the provider then starts a ``WorkerActor`` pinned to that node (hard node affinity,
``num_gpus`` = the worker's GPU count, plus a sliver of the node's ``accelerator_type:<X>`` and
``runplane-dc:<ID>`` resources when it declares them), which runs the template's command
through the process runtime with the GPUs Ray assigned.

A background thread (the *pump*) keeps one ``poll`` call outstanding per worker: it appends
the worker's output to ``<data_dir>/logs/<id>.log`` (so logs work as for local workers) and
learns the exit code. A worker whose actor dies, or whose node leaves the cluster, is reported
exited (exit code None, ``data["lost"]`` saying why): the controller then retires it, which
re-queues its jobs, and the scheduler places its replacement on the nodes that remain. The
same thread refreshes the node list every ``refresh_s``; ``machines()`` and ``list()`` only
read what it gathered, so the reconcile loop never waits on Ray.

Import this module only when the ray provider is chosen: it imports ray.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine
from runplane.config import MachineSettings
from runplane.providers.base import EXITED, PARKED, RUNNING, ImageError, ProcessInfo, WorkerSpec
from runplane.providers.ray_actor import WorkerActor, probe_node
from runplane.providers.ray_nodes import (
    accelerator_resource,
    data_center_resource,
    node_machine,
)
from runplane.providers.runtimes.process import read_tail

log = logging.getLogger("runplane.providers.ray")

_SLIVER = 0.001  # of a label-like resource (accelerator type, data center): pins, never fills
_POLL_WAIT_S = 2.0  # how long one poll may be held on the node with nothing new
# Newer Rays tell these apart from a dead actor; older ones never raise them.
_UNAVAILABLE = getattr(ray.exceptions, "ActorUnavailableError", ())
_UNSCHEDULABLE = getattr(ray.exceptions, "ActorUnschedulableError", ())


def check_image_syntax(image: str) -> Path:
    """``local:/abs/dir`` or ``file:///abs/dir`` -> the path; the directory must exist on the
    node that runs the worker (a shared filesystem, or the same path on every node), not
    necessarily on the server's host, so only the form is checked here."""
    if image.startswith("local:"):
        raw = image[len("local:"):]
    elif image.startswith("file://"):
        raw = image[len("file://"):]
    else:
        raise ImageError(
            f"imageName {image!r} cannot be run by the Ray provider: use "
            "'local:/absolute/path/to/worker/dir' (or 'file:///absolute/path'), a directory "
            "present on every Ray node (e.g. a shared filesystem)")
    path = Path(raw)
    if not path.is_absolute():
        raise ImageError(f"imageName {image!r}: the path must be absolute")
    return path


@dataclass
class _Worker:
    spec: WorkerSpec
    node_id: str
    actor: Any
    started_at: float
    state: str = RUNNING
    exit_code: int | None = None
    stopped_at: float | None = None
    offset: int = 0
    where: dict[str, Any] = field(default_factory=dict)  # the actor's start() answer
    lost: str | None = None
    retry_at: float = 0.0  # poll again after this (actor briefly unavailable)
    _info: ProcessInfo | None = None

    def info(self) -> ProcessInfo:
        cached = self._info
        if cached is not None and cached.state == self.state \
                and cached.exit_code == self.exit_code \
                and cached.data.get("node_pid") == self.where.get("pid"):
            return cached
        # No "pid": that key means a process on the server's host (restart clean-up kills it).
        data: dict[str, object] = {
            "runtime": "ray", "node_id": self.node_id, "gpus": list(self.spec.gpu_indices),
            "image": self.spec.image}
        if self.where.get("pid"):
            data["node_pid"] = self.where["pid"]
            data["ray_gpu_ids"] = self.where.get("gpus", [])
        if self.lost:
            data["lost"] = self.lost
        self._info = ProcessInfo(
            id=self.spec.id, state=self.state, pid=None, started_at=self.started_at,
            exit_code=self.exit_code, stopped_at=self.stopped_at,
            log_path=str(self.spec.log_path), data=data)
        # What the exit code cannot say (the node left the cluster); read by the controller
        # where ProcessInfo has a ``reason``, harmless where it does not.
        self._info.reason = self.lost  # type: ignore[attr-defined]
        return self._info


class RayProvider:
    """Places worker specs on Ray nodes as actors; see the module docstring."""

    name = "ray"

    def __init__(self, settings: MachineSettings, data_dir: Path, catalog: Catalog | None = None,
                 address: str = "", namespace: str = "runplane", refresh_s: float = 1.0,
                 probe_timeout_s: float = 30.0) -> None:
        self.defaults = settings
        self.catalog = catalog
        self.log_dir = data_dir / "logs"
        self.refresh_s = refresh_s
        self.probe_timeout_s = probe_timeout_s
        if not ray.is_initialized():
            ray.init(address=address or None, namespace=namespace, log_to_driver=False,
                     logging_level=logging.WARNING)
        self.address = address
        self._actor_cls = ray.remote(WorkerActor)
        self._probe = ray.remote(probe_node)
        self._lock = threading.RLock()
        self._workers: dict[str, _Worker] = {}
        self._polls: dict[Any, str] = {}  # outstanding poll ref -> worker id
        self._starts: dict[Any, str] = {}  # outstanding start ref -> worker id
        self._fire: list[Any] = []  # signal/stop refs nobody waits on (errors are expected)
        self._nodes: dict[str, dict[str, Any]] = {}  # alive Ray nodes, by node id
        self._probes: dict[str, dict[str, Any] | None] = {}  # node id -> probe answer
        self._probing: dict[Any, tuple[str, float]] = {}  # probe ref -> (node id, sent at)
        self._machines: list[Machine] = []
        self._node_of: dict[str, str] = {}  # machine id -> node id
        # node id -> logs of workers whose actor died while the node still looked alive
        self._died_on: dict[str, list[tuple[Path, float]]] = {}
        self._closed = threading.Event()
        self._serial = 0
        # First look at the cluster before the controller's first tick: wait for the probes.
        deadline = time.monotonic() + probe_timeout_s
        self._refresh_nodes()
        while self._probing and time.monotonic() < deadline:
            self._pump_once(0.2)
            self._refresh_nodes()
        self._pump = threading.Thread(target=self._run, name="runplane-ray-pump", daemon=True)
        self._pump.start()

    # -- the provider interface -------------------------------------------------------

    def machines(self) -> list[Machine]:
        return self._machines

    def log_path(self, worker_id: str) -> Path:
        return self.log_dir / f"{worker_id}.log"

    def check_image(self, image: str) -> Path:
        return check_image_syntax(image)

    def needs_command(self, image: str) -> bool:
        """Ray workers run a directory's command: there is no image to supply a default."""
        return True

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        """Start the worker's actor on its machine's node; returns at once (the actor's own
        start, and any failure of it, is reported through ``list()``)."""
        check_image_syntax(spec.image)
        if not spec.command:
            raise ImageError("the template has no dockerEntrypoint/dockerStartCmd; the process "
                             "runtime needs the command to run, e.g. [\"python\", \"handler.py\"]")
        with self._lock:
            old = self._workers.get(spec.id)
            if old is not None and old.state != EXITED:
                raise RuntimeError(f"worker {spec.id} is already running")
            node_id = self._node_of.get(spec.machine_id)
            node = self._nodes.get(node_id or "")
            if node_id is None or node is None:
                raise OSError(f"machine {spec.machine_id} is no longer in the Ray cluster")
        resources: dict[str, float] = {}
        if spec.gpu_indices and (accel := accelerator_resource(node)):
            resources[accel] = _SLIVER
        if dc := data_center_resource(node):
            resources[dc] = _SLIVER
        self._serial += 1
        try:
            # Named for operators (`ray list actors`); the serial keeps a restarted pod's new
            # actor from colliding with the old one's name while Ray forgets it.
            actor = self._actor_cls.options(
                name=f"runplane-{spec.id}-{self._serial}", num_cpus=0,
                num_gpus=len(spec.gpu_indices), resources=resources, max_restarts=0,
                max_concurrency=64,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(spec.id)
        except Exception as err:  # noqa: BLE001 - e.g. the cluster is unreachable
            raise OSError(f"Ray refused the worker's actor: {err}") from err
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as f:
            f.write(f"--- runplane: starting {spec.id} as a Ray actor on node {node_id}: "
                    f"{' '.join(spec.command)}\n".encode())
        worker = _Worker(spec, node_id, actor, time.time())
        remote_spec = {"image": spec.image, "command": spec.command, "env": spec.env,
                       "machine_id": spec.machine_id}
        start_ref = actor.start.remote(remote_spec)
        poll_ref = actor.poll.remote(0, _POLL_WAIT_S)
        with self._lock:
            self._workers[spec.id] = worker
            self._starts[start_ref] = spec.id
            self._polls[poll_ref] = spec.id
        return worker.info()

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        """SIGTERM through the actor, SIGKILL after ``grace_s``; returns once the process is
        gone (or its actor, if the actor cannot be reached: the process dies with it)."""
        with self._lock:
            w = self._workers.get(worker_id)
        if w is None:
            return None
        if w.state != EXITED:
            self._call(w, "stop", grace_s)
            # The actor answers within the grace period once it runs; one that never started
            # (its node full or gone) is killed through Ray.
            deadline = time.monotonic() + grace_s + 15.0
            while w.state != EXITED and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if w.state != EXITED:
                self._kill_actor(w)
                self._exited(w, None, None, "killed through Ray: the actor did not answer stop")
        return w.info()

    def park(self, worker_id: str) -> None:
        """SIGSTOP the worker's process group, sent by its actor (a signal: never blocks)."""
        w = self._workers[worker_id]
        if w.state == RUNNING:
            self._call(w, "park")
            w.state = PARKED

    def resume(self, worker_id: str) -> None:
        """SIGCONT through the actor; ProcessLookupError when the worker died while parked
        (so the controller resumes or starts another instead of waiting for this one)."""
        w = self._workers[worker_id]
        if w.state == EXITED:
            raise ProcessLookupError(f"worker {worker_id} exited while parked "
                                     f"({w.lost or f'exit code {w.exit_code}'})")
        if w.state == PARKED:
            self._call(w, "resume")
            w.state = RUNNING

    def list(self) -> list[ProcessInfo]:
        with self._lock:
            return [w.info() for w in self._workers.values()]

    def get(self, worker_id: str) -> ProcessInfo | None:
        w = self._workers.get(worker_id)
        return w.info() if w else None

    def forget(self, worker_id: str) -> None:
        with self._lock:
            w = self._workers.get(worker_id)
            if w is not None and w.state == EXITED:
                del self._workers[worker_id]

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return read_tail(self.log_path(worker_id), tail_bytes)

    async def close(self) -> None:
        """Stop the pump and leave the cluster (Ray kills any actor this driver still owns)."""
        self._closed.set()
        await asyncio.to_thread(self._pump.join, 5.0)
        ray.shutdown()

    # -- the pump -----------------------------------------------------------------------

    def _call(self, w: _Worker, method: str, *args: Any) -> None:
        ref = getattr(w.actor, method).remote(*args)
        with self._lock:
            self._fire.append(ref)

    def _kill_actor(self, w: _Worker) -> None:
        try:
            ray.kill(w.actor, no_restart=True)
        except Exception:
            log.debug("ray.kill %s failed", w.spec.id, exc_info=True)

    def _append(self, w: _Worker, data: bytes) -> None:
        if data:
            with open(w.spec.log_path, "ab") as f:
                f.write(data)

    def _exited(self, w: _Worker, code: int | None, stopped_at: float | None,
                lost: str | None = None) -> None:
        with self._lock:
            if w.state == EXITED:
                return
            if lost:
                w.lost = lost
                self._append(w, f"--- runplane: {lost}\n".encode())
            w.exit_code, w.stopped_at = code, stopped_at or time.time()
            w.state = EXITED
            for refs in (self._polls, self._starts):
                for ref in [r for r, wid in refs.items() if wid == w.spec.id]:
                    del refs[ref]

    def _run(self) -> None:
        next_refresh = 0.0
        while not self._closed.is_set():
            try:
                if time.monotonic() >= next_refresh:
                    self._refresh_nodes()
                    next_refresh = time.monotonic() + self.refresh_s
                self._pump_once(0.1)
            except Exception:
                if self._closed.is_set() or not ray.is_initialized():
                    return
                log.exception("ray provider pump failed")
                time.sleep(0.5)

    def _pump_once(self, timeout: float) -> None:
        now = time.monotonic()
        with self._lock:
            refs = [*self._polls, *self._starts, *self._probing, *self._fire]
            waiting = [w for w in self._workers.values()
                       if w.state != EXITED and w.retry_at and w.retry_at <= now]
        for w in waiting:  # an actor that was unavailable: ask again
            w.retry_at = 0.0
            ref = w.actor.poll.remote(w.offset, _POLL_WAIT_S)
            with self._lock:
                self._polls[ref] = w.spec.id
        if not refs:
            self._closed.wait(timeout)
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)
        for ref in ready:
            self._answer(ref)

    def _answer(self, ref: Any) -> None:
        with self._lock:
            poll_of, start_of = self._polls.pop(ref, None), self._starts.pop(ref, None)
            probe_of = self._probing.pop(ref, None)
            if ref in self._fire:
                self._fire.remove(ref)
        try:
            value = ray.get(ref)
            error: Exception | None = None
        except Exception as err:
            value, error = None, err
        if probe_of is not None:
            node_id, _ = probe_of
            if error is not None:
                log.warning("probe of Ray node %s failed: %s", node_id, error)
            self._probes[node_id] = value if error is None else {}
            self._rebuild_machines()
            return
        wid = poll_of or start_of
        w = self._workers.get(wid or "")
        if w is None or w.state == EXITED:
            return
        if start_of is not None:
            if error is None:
                w.where = value
            return  # a failed start() shows as the actor's death, through its poll
        if error is not None:
            if isinstance(error, _UNAVAILABLE):
                w.retry_at = time.monotonic() + 0.5  # e.g. a network blip: ask again
                return
            # Often the actor died with its node: look at the nodes first, so that the machine
            # is gone before the controller places the replacement (and the reason says so).
            self._refresh_nodes()
            if w.state == EXITED:
                return
            self._exited(w, None, None, self._why_lost(w, error))
            self._kill_actor(w)
            if w.node_id in self._nodes:
                self._died_on.setdefault(w.node_id, []).append((w.spec.log_path, time.monotonic()))
            return
        self._append(w, value["data"])
        w.offset = value["offset"]
        if value["exited"]:
            self._exited(w, value["exit_code"], value["stopped_at"])
            self._kill_actor(w)  # frees its GPUs in Ray at once
            return
        ref = w.actor.poll.remote(w.offset, _POLL_WAIT_S)
        with self._lock:
            self._polls[ref] = w.spec.id

    def _why_lost(self, w: _Worker, error: Exception) -> str:
        node = self._nodes.get(w.node_id)
        if node is None:
            return f"worker lost: Ray node {w.node_id} left the cluster"
        if isinstance(error, _UNSCHEDULABLE):
            return f"worker could not be placed on Ray node {w.node_id}: {error}"
        lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
        # Ray's first line is generic; the cause (worker or node death) is on the last ones.
        cause = "; ".join(ln for ln in lines[1:] if not ln.startswith(
            ("class_name:", "actor_id:", "pid:", "name:", "namespace:", "ip:"))) \
            or (lines[0] if lines else type(error).__name__)
        return f"worker lost: its Ray actor died ({cause[:400]})"

    # -- nodes and machines --------------------------------------------------------------

    def _refresh_nodes(self) -> None:
        alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        with self._lock:
            gone = set(self._nodes) - set(alive)
            self._nodes = alive
            lost = [w for w in self._workers.values() if w.state != EXITED and w.node_id in gone]
        for w in lost:
            self._exited(w, None, None, f"worker lost: Ray node {w.node_id} left the cluster")
            self._kill_actor(w)
        # Workers whose actor death was seen before their node's: the log tells the rest.
        now = time.monotonic()
        for node_id, paths in list(self._died_on.items()):
            if node_id in gone:
                for path, _ in paths:
                    with open(path, "ab") as f:
                        f.write(f"--- runplane: Ray node {node_id} left the cluster\n".encode())
            paths[:] = [(p, at) for p, at in paths if node_id not in gone and now - at < 60]
            if not paths:
                del self._died_on[node_id]
        now = time.monotonic()
        sent = {node_id for node_id, _ in self._probing.values()}
        for node_id in alive:
            if node_id not in self._probes and node_id not in sent:
                ref = self._probe.options(
                    num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, False),
                ).remote()
                with self._lock:
                    self._probing[ref] = (node_id, now)
        for ref, (node_id, at) in list(self._probing.items()):
            if now - at > self.probe_timeout_s and node_id not in self._probes:
                log.warning("Ray node %s did not answer runplane's probe; using Ray's view", node_id)
                self._probes[node_id] = {}
        for node_id in gone:
            self._probes.pop(node_id, None)
        self._rebuild_machines()

    def _rebuild_machines(self) -> None:
        machines: list[Machine] = []
        node_of: dict[str, str] = {}
        for node_id, node in self._nodes.items():
            if node_id not in self._probes:
                continue  # not looked at yet
            m = node_machine(node, self._probes[node_id], self.defaults, self.catalog)
            if m is None:
                continue
            machines.append(m)
            node_of[m.id] = node_id
            self._accept_data_center(m.data_center_id)
        machines.sort(key=lambda m: m.id)
        with self._lock:
            if [m.id for m in machines] != [m.id for m in self._machines]:
                log.info("Ray machines: %s", ", ".join(
                    f"{m.name} ({m.data_center_id}, {m.cpu_count} CPU, "
                    f"{len(m.gpus)} x {m.gpus[0].type_id if m.gpus else 'no GPU'})"
                    for m in machines) or "none")
            self._machines = machines
            self._node_of = node_of

    def _accept_data_center(self, dc: str) -> None:
        """A data center named by a node is one endpoints and volumes may ask for."""
        if self.catalog is None or dc in self.catalog.data_centers:
            return
        self.catalog.data_centers.append(dc)
        if dc not in self.catalog.default_data_centers:
            self.catalog.default_data_centers.append(dc)

