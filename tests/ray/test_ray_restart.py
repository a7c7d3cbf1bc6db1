"""Ray worker actors outlive the server (issue 14): after a SIGKILL of ``runplane serve`` and a
start, the running worker's detached actor is taken over by its name, and its job completes on
it without a retry and without running twice; what the previous run left and the new one did
not take over (a parked worker's actor) is killed, its GPU back to Ray. A real cluster, a real
server, the unmodified runpod SDK handler; every wait is a poll with a deadline."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.e2e.scaling_kit import final, pid_alive, run, status, wait_for, workers
from tests.ray.conftest import RayNodes
from tests.ray.kit import log_says, make_endpoint, make_template, ray_server

pytest.importorskip("ray")

RTX_4090 = "NVIDIA GeForce RTX 4090"


def _processes_of(worker_id: str) -> dict[int, int]:
    """pid -> parent pid of every live process started as the worker (by its environment)."""
    mine = {}
    for p in psutil.process_iter(["pid", "ppid"]):
        try:
            if p.environ().get("RUNPOD_POD_ID") == worker_id and \
                    p.status() != psutil.STATUS_ZOMBIE:
                mine[p.pid] = p.info["ppid"]
        except psutil.Error:
            continue
    return mine


def _supervisors_of(worker_id: str) -> list[int]:
    """The worker's processes whose parent is not one of them: one per actor that runs it."""
    mine = _processes_of(worker_id)
    return [pid for pid, parent in mine.items() if parent not in mine]


def test_a_sigkilled_server_takes_its_ray_worker_over_and_kills_the_leftovers(
        ray_cluster: RayNodes, tmp_path: Path) -> None:
    srv = ray_server(tmp_path, ray_cluster.address)
    try:
        with srv.client() as c:
            template, state = make_template(c, tmp_path)
            # A parked worker holding the GPU node's GPU: not taken over (it holds no job).
            flash = make_endpoint(c, template, "flash", gpuTypeIds=[RTX_4090], flashboot=True)
            first = final(c, flash, run(c, flash, {"echo": "parks"}), 120)
            assert first["status"] == "COMPLETED", first
            parked_pid = first["output"]["pid"]
            wait_for(lambda: [w["workerStatus"] for w in workers(c, flash)] == ["PARKED"], 60,
                     "the park")
            # A job running on a CPU worker when the server dies.
            ep = make_endpoint(c, template, "kept", computeType="CPU", idleTimeout=30)
            job = run(c, ep, {"block": True, "echo": "kept"})
            pid_file = state / f"{job}.pid"
            pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 120,
                               "the handler"))
            held = wait_for(lambda: (s := status(c, ep, job))["status"] == "IN_PROGRESS" and s,
                            30, "the job to be taken")

        srv.kill()
        assert pid_alive(pid) and pid_alive(parked_pid), "a worker died with the server"
        srv.start(timeout=120)

        with srv.client() as c:
            # The result goes over the connection the job was taken with, which the killed
            # server closed: the SDK alone would drop it ("Server disconnected"), the
            # accelerator sends it again (docs/workers.md).
            (state / "release").touch()
            done = final(c, ep, job, 60)
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "kept", done
            assert done["retries"] == 0 and done["workerId"] == held["workerId"], done
            assert (state / f"{job}.attempts").read_text() == "1"
            assert done["output"]["pid"] == pid
            log_says(c, held["workerId"], "taken over by a restarted server")
            # One actor runs it: no second one was started beside the taken-over one.
            assert [w["id"] for w in workers(c, ep)] == [held["workerId"]]
            assert len(_supervisors_of(held["workerId"])) == 1

            # The parked worker's actor was a leftover: killed, its process with it, and its
            # GPU back to Ray, so the next GPU job gets a new worker on that node.
            # Every process of it: the SDK's heartbeat process (forked, frozen with the worker)
            # included, which the actor's death alone would leave behind.
            wait_for(lambda: not _processes_of(first["workerId"]), 60,
                     "the leftover's processes gone")
            assert not pid_alive(parked_pid)
            again = final(c, flash, run(c, flash, {"echo": "again"}), 120)
            assert again["status"] == "COMPLETED", again
            assert again["workerId"] != first["workerId"] and again["output"]["cuda"] == "0"
    finally:
        srv.stop()
