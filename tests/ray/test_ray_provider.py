"""The Ray provider's interface driven directly (this test process is the Ray driver): park and
resume through the actor, stop with SIGTERM, and a start that fails on the node."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from runplane.catalog.catalog import build_catalog
from runplane.config import MachineSettings
from runplane.providers.base import EXITED, PARKED, RUNNING, HttpPorts, WorkerSpec
from runplane.providers.ray.actor import START_FAILED
from tests.e2e.scaling_kit import pid_alive, wait_for
from tests.ray.conftest import RayNodes

pytest.importorskip("ray")

TICKER = "import itertools, time\nfor i in itertools.count():\n    print('tick', i, flush=True)\n" \
         "    time.sleep(0.05)\n"


def _status(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


def _worker_status(supervisor: int) -> str:
    """The state of what runs under the worker's supervisor (``node_pid``): "stopped" when
    all of it is frozen, else one of its states; the supervisor itself is never frozen (it
    must hear its actor's death: providers/runtimes/process.py)."""
    try:
        under = psutil.Process(supervisor).children(recursive=True)
        states = {p.status() for p in under}
    except psutil.NoSuchProcess:
        return "gone"
    if not states:
        return "gone"
    return psutil.STATUS_STOPPED if states == {psutil.STATUS_STOPPED} else \
        next(iter(states - {psutil.STATUS_STOPPED}))


async def test_park_resume_and_stop_go_through_the_actor(ray_cluster: RayNodes,
                                                         tmp_path: Path) -> None:
    from runplane.providers.ray.provider import RayProvider

    app = tmp_path / "app"
    app.mkdir()
    (app / "tick.py").write_text(TICKER)
    provider = RayProvider(MachineSettings(), tmp_path, build_catalog(),
                           address=ray_cluster.address)
    try:
        cpu = next(m for m in provider.machines() if m.name == "cpu-node")
        spec = WorkerSpec("ticker", f"local:{app}", [sys.executable, "-u", "tick.py"], {},
                          provider.log_path("ticker"), (), cpu.id)
        assert provider.start(spec).state == RUNNING
        pid = int(wait_for(lambda: provider.get("ticker").data.get("node_pid"), 60, "the pid"))
        wait_for(lambda: "tick 3" in provider.logs("ticker"), 30, "output relayed")

        provider.park("ticker")
        wait_for(lambda: _worker_status(pid) == psutil.STATUS_STOPPED, 30, "SIGSTOP on the node")
        assert _status(pid) != psutil.STATUS_STOPPED  # the supervisor still waits
        assert provider.get("ticker").state == PARKED
        provider.resume("ticker")
        wait_for(lambda: _worker_status(pid) not in (psutil.STATUS_STOPPED, "gone"), 30,
                 "SIGCONT")
        seen = provider.logs("ticker").count("tick")
        wait_for(lambda: provider.logs("ticker").count("tick") > seen, 30, "ticking again")

        info = await provider.stop("ticker", 5.0)
        # SIGTERM ended it; its supervisor's shell says so as 128 + 15, as container engines do.
        assert info is not None and (info.state, info.exit_code) == (EXITED, 128 + 15)
        assert not pid_alive(pid)
        provider.forget("ticker")
        assert provider.list() == []

        # A directory missing on the node: the worker exits as a command that cannot be found,
        # and its log says why.
        bad = WorkerSpec("bad", f"local:{tmp_path / 'nowhere'}", ["python", "x.py"], {},
                         provider.log_path("bad"), (), cpu.id)
        provider.start(bad)
        gone = wait_for(lambda: (i := provider.get("bad")).state == EXITED and i, 60, "the exit")
        assert gone.exit_code == START_FAILED
        assert "is not a directory" in provider.logs("bad")
    finally:
        await provider.close()


QUITTER = "import pathlib, time\nprint('waiting', flush=True)\n" \
          "while not pathlib.Path('go').exists():\n    time.sleep(0.05)\n" \
          "print('bye', flush=True)\nraise SystemExit(3)\n"


def _ticks(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("tick ")]


async def test_a_restarted_provider_takes_the_actor_over_and_removes_the_leftovers(
        ray_cluster: RayNodes, tmp_path: Path) -> None:
    """The first provider leaves the cluster (``close``: ray.shutdown, as a server that keeps
    its workers does); its detached actors outlive it. A second one on the same data dir takes
    the running worker over by its actor's name, with its output going on in the same log, and
    kills what it did not take over (a parked worker's actor) with its process."""
    import ray

    from runplane.providers.ray.provider import RayProvider

    app = tmp_path / "app"
    app.mkdir()
    (app / "tick.py").write_text(TICKER)
    first = RayProvider(MachineSettings(), tmp_path, build_catalog(), address=ray_cluster.address)
    second = None
    try:
        cpu = next(m for m in first.machines() if m.name == "cpu-node")
        pids, data = {}, {}
        (app / "quit.py").write_text(QUITTER)
        for wid in ("kept", "parked", "quits"):
            script = "quit.py" if wid == "quits" else "tick.py"
            # "kept" as a load-balancing worker: its ports are chosen on the node.
            first.start(WorkerSpec(wid, f"local:{app}", [sys.executable, "-u", script], {},
                                   first.log_path(wid), (), cpu.id,
                                   http=HttpPorts() if wid == "kept" else None))
            pids[wid] = int(wait_for(lambda w=wid: first.get(w).data.get("node_pid"), 60, wid))
            wait_for(lambda w=wid: "tick 3" in first.logs(w) or "waiting" in first.logs(w), 30,
                     "output relayed")
            data[wid] = first.get(wid).data
        first.park("parked")
        wait_for(lambda: _worker_status(pids["parked"]) == psutil.STATUS_STOPPED, 30, "SIGSTOP")
        await first.close()
        assert not ray.is_initialized()
        seen = max(_ticks(first.logs("kept")))
        (app / "go").touch()  # "quits" ends while no provider watches
        wait_for(lambda: not pid_alive(pids["quits"]), 30, "the exit")

        second = RayProvider(MachineSettings(), tmp_path, build_catalog(),
                             address=ray_cluster.address)
        info = second.adopt("kept", data["kept"], second.log_path("kept"))
        assert info is not None and info.state == RUNNING
        assert info.data["node_pid"] == pids["kept"]
        assert info.data["actor"] == data["kept"]["actor"]
        # Where the load balancer reaches it comes back with it.
        assert info.data["http"] == data["kept"]["http"] and data["kept"]["http"]["port"]
        # Output goes on into the same log, what was written meanwhile included: no tick is
        # missing (the seam may repeat the last chunk read before the restart).
        wait_for(lambda: max(_ticks(second.logs("kept"))) > seen + 20, 30, "ticking on")
        ticks = _ticks(second.logs("kept"))
        assert set(ticks) == set(range(max(ticks) + 1))
        assert "taken over by a restarted server" in second.logs("kept")

        # One that exited meanwhile is not taken over; its last output and exit code are
        # copied into its log.
        assert second.adopt("quits", data["quits"], second.log_path("quits")) is None
        assert "bye\n--- runplane: exited with code 3 while the server was down" \
            in second.logs("quits")

        def actor_gone(wid: str) -> bool:
            try:
                ray.get_actor(data[wid]["actor"], namespace="runplane")
            except ValueError:
                return True
            return False

        second.remove_leftovers()
        wait_for(lambda: not pid_alive(pids["parked"]), 30, "the parked worker's process gone")
        for wid in ("parked", "quits"):
            wait_for(lambda w=wid: actor_gone(w), 30, f"{wid}'s actor killed")
        assert pid_alive(pids["kept"]) and not actor_gone("kept")

        # stop goes through the taken-over actor, which is then gone too.
        stopped = await second.stop("kept", 5.0)
        assert stopped is not None and (stopped.state, stopped.exit_code) == (EXITED, 128 + 15)
        assert not pid_alive(pids["kept"])
        wait_for(lambda: actor_gone("kept"), 30, "the actor killed")
        second.forget("kept")
        assert second.list() == []
    finally:
        if second is not None:
            await second.close()
        elif ray.is_initialized():
            await first.close()
