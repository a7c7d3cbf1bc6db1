"""The Ray provider's pump: one thread that watches the cluster for the provider.

It keeps one ``poll`` call outstanding per worker actor: it appends the worker's output to
``<data_dir>/logs/<id>.log`` (so logs work as for local workers) and learns the exit code. A
worker whose actor dies, or whose node leaves the cluster, is marked exited (exit code None,
``data["lost"]`` saying why). Every ``refresh_s`` it refreshes the node list and probes new
nodes (``probe_node``), rebuilding the machines the scheduler sees. The provider only reads what
the pump gathered, so the reconcile loop never waits on Ray.

Import this module only when the ray provider is chosen: it imports ray.
"""

from __future__ import annotations

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
from runplane.providers.base import EXITED, RUNNING, ProcessInfo, WorkerSpec
from runplane.providers.ray.actor import probe_node
from runplane.providers.ray.nodes import node_machine

log = logging.getLogger("runplane.providers.ray")

_POLL_WAIT_S = 2.0  # how long one poll may be held on the node with nothing new
# Newer Rays tell these apart from a dead actor; older ones never raise them.
_UNAVAILABLE = getattr(ray.exceptions, "ActorUnavailableError", ())
_UNSCHEDULABLE = getattr(ray.exceptions, "ActorUnschedulableError", ())


@dataclass
class RayWorker:
    """One worker's actor and what the pump has learnt of it."""

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
    name: str = ""  # the detached actor's name and namespace: a restarted server finds it
    namespace: str = ""
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
            "image": self.spec.image, "actor": self.name, "namespace": self.namespace}
        if self.where.get("pid"):
            data["node_pid"] = self.where["pid"]
            data["ray_gpu_ids"] = self.where.get("gpus", [])
            if self.where.get("http"):  # where the node's worker serves (providers.http_ports)
                data["http"] = self.where["http"]
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


class RayPump:
    """The workers' actors and the cluster's nodes, watched by one thread (module docstring).

    ``workers``, ``nodes``, ``node_of`` and ``machines`` are read by the provider (``workers``
    under ``lock``); only the pump changes them."""

    def __init__(self, defaults: MachineSettings, catalog: Catalog | None, refresh_s: float,
                 probe_timeout_s: float) -> None:
        self.defaults = defaults
        self.catalog = catalog
        self.refresh_s = refresh_s
        self.probe_timeout_s = probe_timeout_s
        self._probe = ray.remote(probe_node)
        self.lock = threading.RLock()
        self.workers: dict[str, RayWorker] = {}
        self._polls: dict[Any, str] = {}  # outstanding poll ref -> worker id
        self._starts: dict[Any, str] = {}  # outstanding start ref -> worker id
        self._fire: list[Any] = []  # signal/stop refs nobody waits on (errors are expected)
        self.nodes: dict[str, dict[str, Any]] = {}  # alive Ray nodes, by node id
        self._probes: dict[str, dict[str, Any] | None] = {}  # node id -> probe answer
        self._probing: dict[Any, tuple[str, float]] = {}  # probe ref -> (node id, sent at)
        self.machines: list[Machine] = []
        self.node_of: dict[str, str] = {}  # machine id -> node id
        # node id -> logs of workers whose actor died while the node still looked alive
        self._died_on: dict[str, list[tuple[Path, float]]] = {}
        self._closed = threading.Event()
        # First look at the cluster before the controller's first tick: wait for the probes.
        deadline = time.monotonic() + probe_timeout_s
        self._refresh_nodes()
        while self._probing and time.monotonic() < deadline:
            self._pump_once(0.2)
            self._refresh_nodes()
        self._thread = threading.Thread(target=self._run, name="runplane-ray-pump", daemon=True)
        self._thread.start()

    def track(self, spec: WorkerSpec, node_id: str, actor: Any, name: str,
              namespace: str) -> RayWorker:
        """Start the new actor's worker and watch it: its start() answer, then its polls."""
        worker = RayWorker(spec, node_id, actor, time.time(), name=name, namespace=namespace)
        remote_spec = {"image": spec.image, "command": spec.command, "env": spec.env,
                       "machine_id": spec.machine_id,
                       # A load-balancing worker: its ports are chosen on its node.
                       "http": [spec.http.port, spec.http.health_port] if spec.http else None}
        start_ref = actor.start.remote(remote_spec)
        poll_ref = actor.poll.remote(0, _POLL_WAIT_S)
        with self.lock:
            self.workers[spec.id] = worker
            self._starts[start_ref] = spec.id
            self._polls[poll_ref] = spec.id
        return worker

    def follow(self, w: RayWorker) -> RayWorker:
        """Watch a worker a previous server run started (taken over): polls from ``w.offset``."""
        ref = w.actor.poll.remote(w.offset, _POLL_WAIT_S)
        with self.lock:
            self.workers[w.spec.id] = w
            self._polls[ref] = w.spec.id
        return w

    def close(self, timeout: float) -> None:
        self._closed.set()
        self._thread.join(timeout)

    def call(self, w: RayWorker, method: str, *args: Any) -> None:
        ref = getattr(w.actor, method).remote(*args)
        with self.lock:
            self._fire.append(ref)

    def kill_actor(self, w: RayWorker) -> None:
        try:
            ray.kill(w.actor, no_restart=True)
        except Exception:
            log.debug("ray.kill %s failed", w.spec.id, exc_info=True)

    def _append(self, w: RayWorker, data: bytes) -> None:
        if data:
            with open(w.spec.log_path, "ab") as f:
                f.write(data)

    def exited(self, w: RayWorker, code: int | None, stopped_at: float | None,
                lost: str | None = None) -> None:
        with self.lock:
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
        with self.lock:
            refs = [*self._polls, *self._starts, *self._probing, *self._fire]
            waiting = [w for w in self.workers.values()
                       if w.state != EXITED and w.retry_at and w.retry_at <= now]
        for w in waiting:  # an actor that was unavailable: ask again
            w.retry_at = 0.0
            ref = w.actor.poll.remote(w.offset, _POLL_WAIT_S)
            with self.lock:
                self._polls[ref] = w.spec.id
        if not refs:
            self._closed.wait(timeout)
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)
        for ref in ready:
            self._answer(ref)

    def _answer(self, ref: Any) -> None:
        with self.lock:
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
        w = self.workers.get(wid or "")
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
            self.exited(w, None, None, self._why_lost(w, error))
            self.kill_actor(w)
            if w.node_id in self.nodes:
                self._died_on.setdefault(w.node_id, []).append((w.spec.log_path, time.monotonic()))
            return
        self._append(w, value["data"])
        w.offset = value["offset"]
        if value["exited"]:
            self.exited(w, value["exit_code"], value["stopped_at"])
            self.kill_actor(w)  # frees its GPUs in Ray at once
            return
        ref = w.actor.poll.remote(w.offset, _POLL_WAIT_S)
        with self.lock:
            self._polls[ref] = w.spec.id

    def _why_lost(self, w: RayWorker, error: Exception) -> str:
        node = self.nodes.get(w.node_id)
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
        with self.lock:
            gone = set(self.nodes) - set(alive)
            self.nodes = alive
            lost = [w for w in self.workers.values() if w.state != EXITED and w.node_id in gone]
        for w in lost:
            self.exited(w, None, None, f"worker lost: Ray node {w.node_id} left the cluster")
            self.kill_actor(w)
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
                with self.lock:
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
        for node_id, node in self.nodes.items():
            if node_id not in self._probes:
                continue  # not looked at yet
            m = node_machine(node, self._probes[node_id], self.defaults, self.catalog)
            if m is None:
                continue
            machines.append(m)
            node_of[m.id] = node_id
            self._accept_data_center(m.data_center_id)
        machines.sort(key=lambda m: m.id)
        with self.lock:
            if [m.id for m in machines] != [m.id for m in self.machines]:
                log.info("Ray machines: %s", ", ".join(
                    f"{m.name} ({m.data_center_id}, {m.cpu_count} CPU, "
                    f"{len(m.gpus)} x {m.gpus[0].type_id if m.gpus else 'no GPU'})"
                    for m in machines) or "none")
            self.machines = machines
            self.node_of = node_of

    def _accept_data_center(self, dc: str) -> None:
        """A data center named by a node is one endpoints and volumes may ask for."""
        if self.catalog is None or dc in self.catalog.data_centers:
            return
        self.catalog.data_centers.append(dc)
        if dc not in self.catalog.default_data_centers:
            self.catalog.default_data_centers.append(dc)

