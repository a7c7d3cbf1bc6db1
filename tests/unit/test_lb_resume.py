"""``strict-resume`` of a scaled-down worker (controller/revive.py): the pure rules as tables
(which stops are scale-downs, whether a request may start a worker again, what a pending
restart waits for), then whole controller ticks over a real store, broker and worker
registry with the in-memory provider (as tests/unit/test_controller_tick.py)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from runplane.clock import ManualClock
from runplane.config import ControllerSettings
from runplane.controller import autoscaler as asc
from runplane.controller.allocations import Allocations
from runplane.controller.launcher import Launcher
from runplane.controller.reconcile import Controller
from runplane.controller.revive import (
    EXPIRE,
    SETTLE,
    START,
    WAIT_EXIT,
    WAIT_ROOM,
    Pending,
    ScaledDown,
    may_restart,
    next_step,
)
from runplane.controller.worker_rows import WorkerTable
from runplane.lb.demand import Demand
from runplane.services.host_access import LocalImagePolicy
from runplane.services.pods import PodService
from runplane.services.references import References
from runplane.store.tables import usage_records, workers
from runplane.worker_state import IDLE, INITIALIZING, PARKED, RUNNING, UNHEALTHY
from tests.conftest import Server, client_for, make_server
from tests.unit.fake_provider import FakeProvider

# -- which stops are scale-downs (autoscaler.decide's ``scaled_down``) ----------------------

NOW = 1000.0
IDLE_LONG = asc.WorkerSnapshot("idle", IDLE, idle_since=NOW - 60)


@pytest.mark.parametrize("settings, worker, stopped, scaled_down", [
    # Idle past its idleTimeout, FlashBoot off: stopped, a scale-down.
    (asc.ScalerSettings(flashboot=False), IDLE_LONG, True, True),
    # FlashBoot on: parked instead (not stopped at all).
    (asc.ScalerSettings(flashboot=True), IDLE_LONG, False, False),
    # Unhealthy, or outdated: stopped, but not for idleness.
    (asc.ScalerSettings(flashboot=False), asc.WorkerSnapshot("sick", UNHEALTHY), True, False),
    (asc.ScalerSettings(flashboot=False, version=2),
     asc.WorkerSnapshot("old", IDLE, idle_since=NOW - 1, version=1), True, False),
    # Parked: evicted for its age or workersMax is a scale-down; for a change of the
    # endpoint, or FlashBoot turned off, it is not.
    (asc.ScalerSettings(flashboot=True, max_parked_s=100),
     asc.WorkerSnapshot("p", PARKED, parked_since=NOW - 200), True, True),
    (asc.ScalerSettings(flashboot=True, workers_max=0),
     asc.WorkerSnapshot("p", PARKED, parked_since=NOW - 1), True, True),
    (asc.ScalerSettings(flashboot=True, version=2),
     asc.WorkerSnapshot("p", PARKED, parked_since=NOW - 1, version=1), True, False),
    (asc.ScalerSettings(flashboot=False),
     asc.WorkerSnapshot("p", PARKED, parked_since=NOW - 1), True, False),
    # Busy: kept.
    (asc.ScalerSettings(flashboot=False), asc.WorkerSnapshot("busy", RUNNING, jobs=1), False,
     False),
])
def test_which_stops_are_scale_downs(settings: asc.ScalerSettings, worker: asc.WorkerSnapshot,
                                     stopped: bool, scaled_down: bool) -> None:
    d = asc.decide(settings, asc.QueueStats(), [worker], NOW)
    assert (worker.id in [wid for wid, _ in d.stop]) == stopped
    assert (worker.id in d.scaled_down) == scaled_down


# -- whether a request may start a worker again, and what a pending restart waits for -------

REC = ScaledDown("w1", "ep1", "m1", at=NOW - 10)


@pytest.mark.parametrize("record, endpoint_id, keep_s, refused", [
    (REC, "ep1", 3600, None),
    (None, "ep1", 3600, "not scaled down"),  # crashed, unhealthy, outdated, never existed
    (REC, "ep2", 3600, "another endpoint"),  # another endpoint's (another user's) worker
    (REC, "ep1", 5, "more than 5s ago"),
])
def test_may_restart(record: ScaledDown | None, endpoint_id: str, keep_s: float,
                     refused: str | None) -> None:
    why = may_restart(record, endpoint_id, NOW, keep_s)
    assert (why is None) if refused is None else (why is not None and refused in why)


@pytest.mark.parametrize("until, settled, old_present, count, workers_max, expected", [
    (NOW + 5, False, True, 0, 1, WAIT_EXIT),  # the old process is still stopping
    (NOW + 5, False, False, 0, 1, SETTLE),  # gone: the store must hold its exit first
    (NOW + 5, True, False, 1, 1, WAIT_ROOM),  # at workersMax: wait within the request's time
    (NOW + 5, True, False, 0, 1, START),
    (NOW + 5, True, False, 2, 3, START),
    (NOW - 1, True, False, 0, 1, EXPIRE),  # the request gave up
])
def test_next_step(until: float, settled: bool, old_present: bool, count: int,
                   workers_max: int, expected: str) -> None:
    p = Pending(REC, until, settled=settled)
    assert next_step(p, old_present=old_present, workers=count, workers_max=workers_max,
                     now=NOW) == expected


# -- whole ticks ----------------------------------------------------------------------------


@dataclass
class Rig:
    srv: Server
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    clock: ManualClock
    provider: FakeProvider
    controller: Controller
    scaled: list[str]

    async def tick(self, n: int = 1) -> None:
        for _ in range(n):
            await self.controller.tick()
            for _ in range(10):  # the stops and the store barrier it spawned
                await asyncio.sleep(0.01)

    async def endpoint(self, client: httpx.AsyncClient, app: Path, **workers: int) -> str:
        r = await client.post("/v2/serverless", json={
            "name": "lb", "type": "LOAD_BALANCER", "image": f"local:{app}",
            "args": f"{sys.executable} app.py", "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
            "workers": {"min": 0, "max": 2, "idleTimeout": 5, **workers},
            "flashboot": "OFF", "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def ready(self, worker_id: str) -> None:
        """What the prober does on a worker's first 200."""
        registry = self.srv.services.workers
        w = registry.get(worker_id)
        assert w is not None
        registry.first_take(w)

    def row(self, worker_id: str) -> Any:
        with self.srv.services.engine.connect() as conn:
            return conn.execute(select(workers).where(workers.c.id == worker_id)).one()


class Scaled:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        self.out.append(action)

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        pass

    def ticked(self, now: float) -> None:
        pass


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    srv = make_server(tmp_path / "data", machine={"detect_gpus": False})
    s = srv.services
    clock = ManualClock(time.time())
    provider = FakeProvider(s.provider.machines()[0], tmp_path / "logs", clock)
    allocations = Allocations(provider, cpu_overcommit=1.0)
    launcher = Launcher(provider, s.catalog, s.volumes, s.registry_auths)
    refs = References(s.volumes, s.registry_auths, LocalImagePolicy(s.settings.security,
                                                                     lambda _: None))
    pods = PodService(s.engine, clock, s.catalog, provider, s.templates, s.billing, launcher,
                      allocations, refs)
    writer = s.broker.writer

    async def settle() -> bool:  # as server.py wires it
        await writer.write()
        return not writer.pending

    controller = Controller(
        settings=ControllerSettings(startup_timeout_s=300, max_parked_s=600), clock=clock,
        provider=provider, endpoints=s.endpoints, templates=s.templates,
        queues=Demand(s.broker, s.lb),
        registry=s.workers, billing=s.billing, launcher=launcher, allocations=allocations,
        rows=WorkerTable(s.engine), pods=pods, settle=settle)
    scaled: list[str] = []
    controller.add_observer(Scaled(scaled))
    async with client_for(srv, srv.user_key) as alice, client_for(srv, srv.other_key) as bob:
        yield Rig(srv, alice, bob, clock, provider, controller, scaled)
    await controller.shutdown()
    s.broker.close()
    s.engine.dispose()


async def scaled_down_worker(r: Rig, ep: str) -> str:
    """A worker of ``ep`` started by a waiting request, ready, then scaled down for idleness
    (idleTimeout 5 s)."""
    waiting = asyncio.create_task(r.srv.services.lb.acquire(ep, None, 30))
    await asyncio.sleep(0)
    await r.tick()
    waiting.cancel()  # the request went away: no demand left
    await asyncio.sleep(0.01)
    [wid] = r.provider.running()
    r.ready(wid)
    r.clock.advance(10)
    await r.tick(2)
    assert r.provider.running() == []
    assert r.srv.services.workers.get(wid) is None
    assert r.row(wid).reason.startswith("idle for")
    return wid


async def test_a_scaled_down_worker_starts_again_under_its_id(rig: Rig, tmp_path: Path) -> None:
    r = rig
    ep = await r.endpoint(r.alice, tmp_path)
    wid = await scaled_down_worker(r, ep)
    first = r.row(wid)
    r.clock.advance(30)
    restart_at = r.clock.now()
    assert r.controller.revivals.request(wid, ep, 60, restart_at)
    await r.tick(3)  # the store holds the old exit, then it starts
    assert r.provider.running() == [wid]
    w = r.srv.services.workers.get(wid)
    assert w is not None and w.status == INITIALIZING and w.endpoint_id == ep
    row = r.row(wid)  # the new run's row under the same id
    assert row.stopped_at is None and row.reason is None and row.exit_code is None
    assert row.started_at >= restart_at > first.stopped_at
    assert row.machine_id == first.machine_id  # where it ran
    assert r.controller.tracked[wid].billed_from == restart_at  # billed from its new start
    with r.srv.services.engine.connect() as conn:
        billed = conn.execute(select(usage_records).where(usage_records.c.pod_id == wid)).all()
    [old_run] = billed  # the previous run's interval, closed; the new one opens at restart_at
    assert old_run.start_at == first.started_at and old_run.end_at < restart_at
    assert r.scaled == ["up", "down", "up"]
    # Its previous run's record was used up: once live again it is a worker like any other.
    assert wid not in r.controller.revivals.records
    # includeWorkers shows it again, with the new run's start.
    pods = r.srv.services.worker_pods([ep])[ep]
    assert [p.id for p in pods] == [wid]
    assert pods[0].last_started_at  # shown as lastStartedAt


async def test_what_is_not_started_again(rig: Rig, tmp_path: Path) -> None:
    r = rig
    ep = await r.endpoint(r.alice, tmp_path)
    theirs = await r.endpoint(r.bob, tmp_path)
    wid = await scaled_down_worker(r, ep)
    # Named on another endpoint (another user's): refused, whoever asks.
    assert not r.controller.revivals.request(wid, theirs, 60, r.clock.now())
    # A crashed worker: refused.
    waiting = asyncio.create_task(r.srv.services.lb.acquire(theirs, None, 30))
    await asyncio.sleep(0)
    await r.tick()
    waiting.cancel()
    await asyncio.sleep(0.01)
    [crashed] = r.provider.running()
    r.provider.crash(crashed)
    await r.tick()
    assert r.srv.services.workers.get(crashed) is None
    assert not r.controller.revivals.request(crashed, theirs, 60, r.clock.now())
    # An id nobody has: refused.
    assert not r.controller.revivals.request("nosuchworker", ep, 60, r.clock.now())
    # Past the time a scaled-down worker stays resumable (max_parked_s, 600 s here).
    r.clock.advance(601)
    await r.tick()
    assert not r.controller.revivals.request(wid, ep, 60, r.clock.now())
    assert r.controller.revivals.pending == {}


async def test_at_workers_max_it_waits_for_room(rig: Rig, tmp_path: Path) -> None:
    r = rig
    ep = await r.endpoint(r.alice, tmp_path, max=1)
    wid = await scaled_down_worker(r, ep)
    # A manual worker holds the endpoint's only place.
    other, _ = r.srv.services.workers.register(ep, manual=True)
    assert r.controller.revivals.request(wid, ep, 20, r.clock.now())
    await r.tick(3)
    assert r.provider.running() == [] and wid in r.controller.revivals.pending
    r.srv.services.workers.retire(other, "gone")
    await r.tick()
    assert r.provider.running() == [wid]
    # Scaled down again; a request that gave up drops its restart.
    r.ready(wid)
    r.clock.advance(10)
    await r.tick(2)
    assert r.provider.running() == [] and wid in r.controller.revivals.records
    r.srv.services.workers.register(ep, manual=True)
    assert r.controller.revivals.request(wid, ep, 5, r.clock.now())
    r.clock.advance(6)
    await r.tick(2)
    assert r.controller.revivals.pending == {} and r.provider.running() == []
