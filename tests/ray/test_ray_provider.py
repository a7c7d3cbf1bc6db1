"""The Ray provider's interface driven directly (this test process is the Ray driver): park and
resume through the actor, stop with SIGTERM, and a start that fails on the node."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from runplane.catalog.catalog import build_catalog
from runplane.config import MachineSettings
from runplane.providers.base import EXITED, PARKED, RUNNING, WorkerSpec
from runplane.providers.ray_actor import START_FAILED
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


async def test_park_resume_and_stop_go_through_the_actor(ray_cluster: RayNodes,
                                                         tmp_path: Path) -> None:
    from runplane.providers.ray_provider import RayProvider

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
        wait_for(lambda: _status(pid) == psutil.STATUS_STOPPED, 30, "SIGSTOP on the node")
        assert provider.get("ticker").state == PARKED
        provider.resume("ticker")
        wait_for(lambda: _status(pid) not in (psutil.STATUS_STOPPED, "gone"), 30, "SIGCONT")
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
