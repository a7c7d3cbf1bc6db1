"""What runs on a Ray node: the worker actor and the node probe.

``WorkerActor`` holds one worker (or pod) process. Ray places it (hard node affinity, the
worker's GPUs as ``num_gpus``) and gives it GPU ids; the actor runs the template's command
through the same process runtime as the local provider, with ``CUDA_VISIBLE_DEVICES`` set to
the GPUs Ray assigned. Output goes to a log file on the node; the provider pulls it with
``poll`` (a short long-poll returning new bytes, and the exit code once the process is gone
and its output drained) and appends it to the server's per-worker log.

It is an async actor: every method runs on the actor's one event-loop thread, which lives as
long as the actor, so the parent-death signal the runtime sets on the child (tied to the thread
that started it) fires only when the actor itself dies: a killed actor or a lost node takes
the worker process with it. The actor is detached (names.py): the server that made it may
die or restart, and its next run takes the actor over (``describe``, then ``poll`` from the
offset the previous run last asked for).

Nothing here imports ray at module level: the default install never loads it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from runplane.providers.base import EXITED, HttpPorts, WorkerSpec
from runplane.providers.http_ports import http_data
from runplane.providers.http_ports import resolve as resolve_ports
from runplane.providers.runtimes.process import ProcessRuntime

# Exit code reported when the process could not be started at all (missing directory or
# command on the node), as a shell would for a command it cannot find.
START_FAILED = 127
_CHUNK = 1 << 20


def node_log_dir() -> Path:
    return Path(tempfile.gettempdir()) / "runplane-ray"


class WorkerActor:
    """One worker process on this node. Create with ``num_gpus`` = the worker's GPU count."""

    def __init__(self, worker_id: str, worker_user: str = "", name: str = "") -> None:
        self.worker_id = worker_id
        # Dies with its actor; as ``worker_user`` when the node's raylet is root (run_as.py).
        self.runtime = ProcessRuntime(outlive=False, worker_user=worker_user)
        # Named after the actor, which is unique: a worker started again under its id
        # (strict-resume) or a file an actor killed before it was drained left behind is
        # never mistaken for this actor's output.
        self.log_path = node_log_dir() / f"{name or worker_id}.log"
        self.error: str | None = None
        self.failed_at: float | None = None
        self.started_at = time.time()
        self.where: dict[str, Any] = {}  # start()'s answer, for a server that takes over
        # The offset the provider last asked for: everything before it reached the server's
        # log (the provider asks for the next bytes only once it appended the previous ones).
        self.asked = 0
        self.parked = False

    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start the process; returns where it runs (pid, node, GPU ids) or the error."""
        import ray

        gpu_ids = tuple(int(i) for i in ray.get_gpu_ids())
        node_id = ray.get_runtime_context().get_node_id()
        where = {"node_id": node_id, "hostname": socket.gethostname(), "gpus": list(gpu_ids)}
        ws = WorkerSpec(self.worker_id, spec["image"], list(spec["command"]), dict(spec["env"]),
                        self.log_path, gpu_ids, spec.get("machine_id", ""),
                        http=HttpPorts(*spec["http"]) if spec.get("http") else None)
        # A load-balancing worker: free ports of this node, reached at the node's address.
        ws = resolve_ports(ws, ray.util.get_node_ip_address(), mapped=False)
        where.update(http_data(ws))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- runplane: on Ray node {node_id} ({where['hostname']}), "
                      f"GPUs {list(gpu_ids)}\n".encode())
        try:
            info = self.runtime.start(ws)
        except Exception as err:
            self.error = str(err)
            self.failed_at = time.time()
            with open(self.log_path, "ab") as log:
                log.write(f"--- runplane: could not start: {err}\n".encode())
            return {**where, "error": self.error}
        self.where = {**where, "pid": info.pid}
        return self.where

    def _state(self) -> tuple[bool, int | None, float | None]:
        if self.error is not None:
            return True, START_FAILED, self.failed_at
        info = self.runtime.get(self.worker_id)
        if info is None:
            return False, None, None  # not started yet
        return info.state == EXITED, info.exit_code, info.stopped_at

    def _size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    async def poll(self, offset: int, wait_s: float) -> dict[str, Any]:
        """Output past ``offset`` as soon as there is some (or ``wait_s`` passed); ``exited``
        with the exit code once the process is gone and the caller has everything it wrote
        (``offset`` at the end: its last output came in an earlier answer). Only then is the
        node's log deleted: an answer may never arrive (a poll the previous server sent
        before it died), and the server that takes over asks for that output again."""
        self.asked = max(self.asked, offset)
        deadline = time.monotonic() + wait_s
        while True:
            exited, code, stopped_at = self._state()
            size = self._size()
            if size > offset or exited or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        data = b""
        if size > offset:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read(_CHUNK)
        done = exited and size <= offset
        if done:
            try:
                self.log_path.unlink()
            except FileNotFoundError:
                pass
        return {"data": data, "offset": offset + len(data), "exited": done,
                "exit_code": code if done else None, "stopped_at": stopped_at if done else None}

    async def stop(self, grace_s: float) -> int | None:
        """SIGTERM the process group, SIGKILL after ``grace_s``; returns its exit code."""
        info = await self.runtime.stop(self.worker_id, grace_s)
        return info.exit_code if info else None

    async def park(self) -> None:
        if self.runtime.get(self.worker_id) is not None:
            self.runtime.park(self.worker_id)
            self.parked = True

    async def resume(self) -> None:
        if self.runtime.get(self.worker_id) is not None:
            self.runtime.resume(self.worker_id)
            self.parked = False

    async def describe(self) -> dict[str, Any]:
        """What a restarted server needs to take this worker over: start()'s answer (empty
        when it never ran), since when, whether the process still runs (and is parked), its
        exit code if not, and the offset of the output the previous server last asked for."""
        exited, code, _ = self._state()
        return {"where": self.where, "started_at": self.started_at, "offset": self.asked,
                "exited": exited, "exit_code": code, "parked": self.parked}


def probe_node() -> dict[str, Any]:
    """What Ray does not say about a node: its NVIDIA GPUs through NVML (names, memory, the
    driver's CUDA version), CPU model, disk and host name. Runs as a task on that node."""
    import psutil

    from runplane.catalog.machines import _cpu_model, detect_nvidia_gpus

    gpus = detect_nvidia_gpus(None)
    probe_dir = node_log_dir() if node_log_dir().exists() else Path(tempfile.gettempdir())
    return {
        "hostname": socket.gethostname(),
        "cpu_type": _cpu_model(),
        "gpus": [{"name": g.type_id, "memory_in_gb": g.memory_in_gb, "uuid": g.uuid}
                 for g in gpus],
        "cuda": gpus[0].cuda_version if gpus else None,
        "disk_in_gb": psutil.disk_usage(str(probe_dir)).total / 2**30,
        "cpus": os.cpu_count(),
        "setpriv": shutil.which("setpriv") is not None,
    }
