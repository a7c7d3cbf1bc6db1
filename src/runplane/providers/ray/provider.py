"""The Ray provider: workers and pods as Ray actors on the nodes of a Ray cluster.

runplane connects to the cluster as a driver (``ray.init(address=...)``). Every live node that
offers CPUs or GPUs is a machine (``nodes.node_machine``: Ray's resources, the operator's
labels and custom resources, and a probe task that reads NVML on the node). The scheduler
places a worker on one of those machines, as it does locally, so its reasons stay visible;
the provider then starts a ``WorkerActor`` pinned to that node (hard node affinity,
``num_gpus`` = the worker's GPU count, plus a sliver of the node's ``accelerator_type:<X>`` and
``runplane-dc:<ID>`` resources when it declares them), which runs the template's command
through the process runtime with the GPUs Ray assigned.

A background thread (the *pump*, pump.py) keeps one ``poll`` call outstanding per worker:
it appends the worker's output to ``<data_dir>/logs/<id>.log`` (so logs work as for local
workers) and learns the exit code. A worker whose actor dies, or whose node leaves the
cluster, is reported exited (exit code None, ``data["lost"]`` saying why): the controller then
retires it, which re-queues its jobs, and the scheduler places its replacement on the nodes
that remain. The same thread refreshes the node list every ``refresh_s``; ``machines()`` and ``list()`` only
read what it gathered, so the reconcile loop never waits on Ray.

Worker actors are detached and named after the server's owner token (names.py): they
outlive the server, so a restarted server takes them over by name (``adopt``) and kills the
rest of what its previous run left (``remove_leftovers``). A server stopped with its workers
kept leaves them running; ``stop`` (a drain, a scale-down) kills the actor once its process
is gone.

Import this module only when the ray provider is chosen: it imports ray.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any, cast

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine
from runplane.config import MachineSettings
from runplane.providers.base import (
    EXITED,
    PARKED,
    RUNNING,
    HttpPorts,
    ImageError,
    ProcessInfo,
    WorkerSpec,
)
from runplane.providers.ray.actor import WorkerActor
from runplane.providers.ray.names import actor_name, is_owned, leftovers, owner_of
from runplane.providers.ray.nodes import (
    accelerator_resource,
    data_center_resource,
)
from runplane.providers.ray.pump import RayPump, RayWorker
from runplane.providers.runtimes.process import local_image_path, read_tail

log = logging.getLogger("runplane.providers.ray")

_SLIVER = 0.001  # of a label-like resource (accelerator type, data center): pins, never fills
_DESCRIBE_TIMEOUT_S = 10.0  # an actor that does not answer a take-over in this is not taken
_LEFTOVER_GRACE_S = 1.0  # SIGTERM to SIGKILL for what a previous run left (its jobs moved on)


def check_image_syntax(image: str) -> Path:
    """``local:/abs/dir`` or ``file:///abs/dir`` -> the path; the directory must exist on the
    node that runs the worker (a shared filesystem, or the same path on every node), not
    necessarily on the server's host, so only the form is checked here."""
    return local_image_path(image, "the Ray provider", "a directory present on every Ray "
                            "node (e.g. a shared filesystem)")


def _copy_rest(actor: Any, offset: int, log_path: Path, chunks: int = 16) -> None:
    """Append what a worker that exited while no server listened wrote after ``offset``."""
    try:
        for _ in range(chunks):
            got = cast(dict[str, Any], ray.get(actor.poll.remote(offset, 0.0),
                                               timeout=_DESCRIBE_TIMEOUT_S))
            with open(log_path, "ab") as f:
                f.write(got["data"])
            offset = got["offset"]
            if got["exited"]:
                return
    except Exception:  # its last output is a courtesy, not the exit itself
        log.debug("could not copy the rest of %s", log_path, exc_info=True)


class RayProvider:
    """Places worker specs on Ray nodes as actors; see the module docstring."""

    name = "ray"

    def __init__(self, settings: MachineSettings, data_dir: Path, catalog: Catalog | None = None,
                 address: str = "", namespace: str = "runplane", refresh_s: float = 1.0,
                 probe_timeout_s: float = 30.0, worker_user: str = "") -> None:
        """``worker_user``: whom worker processes run as on a node whose raylet is root
        (``[security] worker_user``, providers/runtimes/run_as.py)."""
        self.defaults = settings
        self._worker_user = worker_user
        self.catalog = catalog
        self.log_dir = data_dir / "logs"
        self.refresh_s = refresh_s
        self.probe_timeout_s = probe_timeout_s
        if not ray.is_initialized():
            ray.init(address=address or None, namespace=namespace, log_to_driver=False,
                     logging_level=logging.WARNING)
        self.address = address
        self.namespace = namespace
        self._actor_cls = ray.remote(WorkerActor)
        self._owner = owner_of(data_dir)
        self._run = secrets.token_hex(3)
        self._serial = 0
        # (namespace, name) of every actor this run made or took over: never a leftover.
        self._mine: set[tuple[str, str]] = set()
        self._pump = RayPump(settings, catalog, refresh_s, probe_timeout_s)

    # -- the provider interface -------------------------------------------------------

    def machines(self) -> list[Machine]:
        return self._pump.machines

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
        with self._pump.lock:
            old = self._pump.workers.get(spec.id)
            if old is not None and old.state != EXITED:
                raise RuntimeError(f"worker {spec.id} is already running")
            node_id = self._pump.node_of.get(spec.machine_id)
            node = self._pump.nodes.get(node_id or "")
            if node_id is None or node is None:
                raise OSError(f"machine {spec.machine_id} is no longer in the Ray cluster")
        resources: dict[str, float] = {}
        if spec.gpu_indices and (accel := accelerator_resource(node)):
            resources[accel] = _SLIVER
        if dc := data_center_resource(node):
            resources[dc] = _SLIVER
        self._serial += 1
        name = actor_name(self._owner, spec.id, self._run, self._serial)
        with self._pump.lock:
            self._mine.add((self.namespace, name))
        try:
            # Detached: it outlives this server (a restart takes it over by its name).
            actor = self._actor_cls.options(
                name=name, namespace=self.namespace, lifetime="detached", num_cpus=0,
                num_gpus=len(spec.gpu_indices), resources=resources, max_restarts=0,
                max_concurrency=64,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(spec.id, self._worker_user, name)
        except Exception as err:  # e.g. the cluster is unreachable
            raise OSError(f"Ray refused the worker's actor: {err}") from err
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as f:
            f.write(f"--- runplane: starting {spec.id} as a Ray actor on node {node_id}: "
                    f"{' '.join(spec.command)}\n".encode())
        return self._pump.track(spec, node_id, actor, name, self.namespace).info()

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        """SIGTERM through the actor, SIGKILL after ``grace_s``; returns once the process is
        gone (or its actor, if the actor cannot be reached: the process dies with it)."""
        with self._pump.lock:
            w = self._pump.workers.get(worker_id)
        if w is None:
            return None
        if w.state != EXITED:
            self._pump.call(w, "stop", grace_s)
            # The actor answers within the grace period once it runs; one that never started
            # (its node full or gone) is killed through Ray.
            deadline = time.monotonic() + grace_s + 15.0
            while w.state != EXITED and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if w.state != EXITED:
                self._pump.kill_actor(w)
                self._pump.exited(w, None, None,
                                  "killed through Ray: the actor did not answer stop")
        return w.info()

    def park(self, worker_id: str) -> None:
        """SIGSTOP the worker's process group, sent by its actor (a signal: never blocks)."""
        w = self._pump.workers[worker_id]
        if w.state == RUNNING:
            self._pump.call(w, "park")
            w.state = PARKED

    def resume(self, worker_id: str) -> None:
        """SIGCONT through the actor; ProcessLookupError when the worker died while parked
        (so the controller resumes or starts another instead of waiting for this one)."""
        w = self._pump.workers[worker_id]
        if w.state == EXITED:
            raise ProcessLookupError(f"worker {worker_id} exited while parked "
                                     f"({w.lost or f'exit code {w.exit_code}'})")
        if w.state == PARKED:
            self._pump.call(w, "resume")
            w.state = RUNNING

    def park_blocks(self, worker_id: str) -> bool:
        """Never: park and resume are one actor call each, sent without waiting."""
        return False

    def list(self) -> list[ProcessInfo]:
        with self._pump.lock:
            return [w.info() for w in self._pump.workers.values()]

    def adopt(self, worker_id: str, data: dict[str, object], log_path: Path) -> ProcessInfo | None:
        """Take over the detached actor a previous run recorded (``data["actor"]``) if it is
        this server's, alive, and its process still runs: its output goes on into the same
        log from the offset the previous run last asked for. None otherwise (an actor left
        alive is then a leftover, killed by ``remove_leftovers``)."""
        name, namespace = data.get("actor"), str(data.get("namespace") or self.namespace)
        if data.get("runtime") != "ray" or not isinstance(name, str) \
                or not is_owned(name, self._owner):
            return None
        try:
            actor = ray.get_actor(name, namespace=namespace)
            found = cast(dict[str, Any], ray.get(actor.describe.remote(),
                                                 timeout=_DESCRIBE_TIMEOUT_S))
        except ValueError:
            return None  # no such actor any more
        except Exception as err:  # noqa: BLE001 - dead, unreachable, or its node is gone
            log.warning("Ray actor %s of worker %s cannot be taken over: %s", name, worker_id, err)
            return None
        where = found["where"]
        if not where.get("pid"):
            return None  # never started its process
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if found["exited"]:
            _copy_rest(actor, int(found["offset"]), log_path)
            with open(log_path, "ab") as f:
                f.write(f"--- runplane: exited with code {found['exit_code']} while the "
                        f"server was down\n".encode())
            return None
        gpus, http = data.get("gpus"), where.get("http")
        spec = WorkerSpec(worker_id, str(data.get("image", "")), [], {}, log_path,
                          tuple(int(i) for i in gpus) if isinstance(gpus, list) else (),
                          http=HttpPorts(int(http["port"]), int(http["health_port"]),
                                         str(http["host"])) if isinstance(http, dict) else None)
        with self._pump.lock:
            self._mine.add((namespace, name))
        with open(log_path, "ab") as f:
            f.write(f"--- runplane: taken over by a restarted server; output goes on from "
                    f"byte {found['offset']} of the node's log\n".encode())
        w = RayWorker(spec, str(where.get("node_id") or data.get("node_id") or ""), actor,
                      float(found["started_at"]), state=PARKED if found["parked"] else RUNNING,
                      offset=int(found["offset"]), where=where, name=name, namespace=namespace)
        return self._pump.follow(w).info()

    def remove_leftovers(self) -> None:
        """Kill every actor of this server's owner that this run neither made nor took over
        (a previous run's pods, parked workers, workers the store no longer lists); their
        processes die with them. Other servers' actors on the cluster are never touched.
        In the background: stopping them takes a grace period, which start-up need not wait
        for (a new worker that needs a leftover's GPUs waits in Ray until it is freed)."""
        def run() -> None:
            try:
                self._remove_leftovers()
            except Exception:  # e.g. the provider closed meanwhile: the next start retries
                log.warning("removing a previous run's Ray actors failed", exc_info=True)

        threading.Thread(target=run, daemon=True, name="runplane-ray-leftovers").start()

    def _remove_leftovers(self) -> None:
        # This run's actors are read after the listing: one started meanwhile (added to
        # ``_mine`` before it is created) is either not listed or known to be this run's.
        try:
            named = ray.util.list_named_actors(all_namespaces=True)
        except Exception as err:  # noqa: BLE001 - the cluster is unreachable: next start
            log.warning("could not list Ray actors to remove leftovers: %s", err)
            return
        with self._pump.lock:
            mine = set(self._mine)
        found: list[tuple[str, Any]] = []
        for namespace, name in leftovers(named, self._owner, mine):
            try:
                found.append((name, ray.get_actor(name, namespace=namespace)))
            except ValueError:
                pass  # gone meanwhile
        # Their process groups first (a parked one included): killing an actor kills its
        # process through the parent-death signal, but not what that process forked (the
        # SDK's heartbeat process), which the supervisor's group kill takes.
        stops = [actor.stop.remote(_LEFTOVER_GRACE_S) for _, actor in found]
        if stops:
            ray.wait(stops, num_returns=len(stops), timeout=_LEFTOVER_GRACE_S + 5.0)
        for name, actor in found:
            try:
                ray.kill(actor, no_restart=True)
                log.info("killed Ray actor %s: left by a previous run, not taken over", name)
            except Exception as err:  # noqa: BLE001
                log.warning("could not kill leftover Ray actor %s: %s", name, err)

    def get(self, worker_id: str) -> ProcessInfo | None:
        w = self._pump.workers.get(worker_id)
        return w.info() if w else None

    def forget(self, worker_id: str) -> None:
        with self._pump.lock:
            w = self._pump.workers.get(worker_id)
            if w is not None and w.state == EXITED:
                del self._pump.workers[worker_id]

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return read_tail(self.log_path(worker_id), tail_bytes)

    async def close(self) -> None:
        """Stop the pump and leave the cluster. Worker actors are detached: the ones still
        running (kept for the next run) stay; ``stop`` already killed the others."""
        await asyncio.to_thread(self._pump.close, 5.0)
        ray.shutdown()

