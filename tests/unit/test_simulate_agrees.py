"""The simulator and the live controller agree: the same trace, driven through the real
server (SQLite store, broker, worker registry, the worker protocol spoken in-process, the
in-memory ``FakeProvider``) and through ``runplane simulate``'s world, gives the same scaling
decisions at the same virtual times.

The live side is driven as the simulator drives its own world: one manual clock for the
server and the controller; a tick every ``tick_s`` and at once when kicked; each started
worker makes its first job-take a fixed cold start after its start, takes the next queued
job whenever it is free (in the order workers became free), and finishes it after the
trace's execution time.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from runplane.clock import ManualClock
from runplane.config import ControllerSettings
from runplane.simulate.engine import START, Candidate, Run, Setup
from runplane.simulate.timing import parse_duration
from runplane.simulate.trace import TraceJob, make_trace
from tests.api.test_jobs import Worker
from tests.conftest import client_for, create_endpoint, make_server
from tests.unit.fake_provider import FakeProvider
from tests.unit.test_controller_tick import A40, Observer, Rig, controller_for

COLD_S = 2.0
TRACE = make_trace("agreement", [
    TraceJob(0.0, 4.0), TraceJob(0.5, 4.0), TraceJob(1.2, 1.0), TraceJob(12.3, 1.0),
    TraceJob(12.6, 3.0), TraceJob(25.1, 2.0), TraceJob(26.0, 0.5), TraceJob(47.7, 1.0),
])


class _LiveWorld:
    """The live server driven like the simulator's world (see the module docstring)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.events: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        self.order = itertools.count()
        self.free: list[Worker] = []  # waiting for a job, in the order they became free
        self.durations: dict[str, float] = {}
        self.started: set[str] = set()
        self.parked: set[str] = set()

    def at(self, t: float, action: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.events, (t, next(self.order), action))

    def registered(self, wid: str):  # noqa: ANN201 - the broker's Worker
        return self.rig.srv.services.broker.workers.get(wid)

    async def dispatch(self) -> None:
        broker = self.rig.srv.services.broker
        while self.free and broker.queue_metrics(self.rig.ep).in_queue:
            w = self.free.pop(0)
            reg = self.registered(w.id)
            if reg is None or not reg.can_take():
                continue  # as the simulator: gone from the free list until free again
            job = await w.take_job()
            self.at(self.rig.clock.now() + self.durations[job["id"]],
                    lambda w=w, j=job["id"]: self.finish(w, j))

    async def finish(self, w: Worker, job_id: str) -> None:
        await w.done(job_id, {"output": "ok"})
        reg = self.registered(w.id)
        if reg is not None and reg.can_take():
            self.free.append(w)
        await self.dispatch()

    async def become_free(self, w: Worker) -> None:
        reg = self.registered(w.id)
        if reg is not None and reg.can_take() and not reg.jobs:
            if reg.first_take_at is None:
                r = await w.take()  # the first job-take: it gets the head job if one waits
                if r.status_code == 200:
                    job = r.json()
                    self.at(self.rig.clock.now() + self.durations[job["id"]],
                            lambda: self.finish(w, job["id"]))
                    return
                assert r.status_code == 204, r.text
            self.free.append(w)
            await self.dispatch()

    async def arrive(self, execution_s: float) -> None:
        r = await self.rig.alice.post(f"/v2/{self.rig.ep}/run", json={"input": {}})
        assert r.status_code == 200, r.text
        self.durations[r.json()["id"]] = execution_s
        await self.dispatch()

    def notice(self) -> None:
        """New processes get their first job-take a cold start later; thawed workers are
        free at once (the simulator's revival time is 0 here)."""
        now = self.rig.clock.now()
        for wid in self.rig.provider.specs:
            if wid not in self.started:
                self.started.add(wid)
                self.at(now + COLD_S, lambda w=self.rig.worker(wid): self.become_free(w))
            reg = self.registered(wid)
            if reg is not None and reg.parked:
                self.parked.add(wid)
            elif wid in self.parked:
                self.parked.discard(wid)
                if reg is not None:
                    self.at(now, lambda w=self.rig.worker(wid): self.become_free(w))

    async def run(self, horizon_s: float, tick_s: float) -> None:
        for tj in TRACE.jobs:
            self.at(START + tj.at, lambda e=tj.execution_s: self.arrive(e))
        clock, kick = self.rig.clock, self.rig.controller.wake
        next_tick = START
        while clock.now() < START + horizon_s:
            if self.events and self.events[0][0] < next_tick:
                t, _, action = heapq.heappop(self.events)
                clock.advance(t - clock.now())
                await action()
                self.notice()
                if kick.is_set():
                    kick.clear()
                    next_tick = clock.now()
                continue
            clock.advance(next_tick - clock.now())
            await self.rig.tick()
            self.notice()
            if kick.is_set():
                kick.clear()
                continue
            next_tick = clock.now() + tick_s


class _TimedObserver(Observer):
    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        self.rig.scaled.append((round(self.rig.clock.now() - START, 3), action, workers,
                                reason))  # type: ignore[arg-type]


async def _live(tmp_path: Path, candidate: Candidate, horizon_s: float) -> list[tuple]:
    clock = ManualClock(START)
    srv = make_server(tmp_path / "data", clock, job_take_hold_s=0.01, machine={
        "detect_gpus": False, "declared_gpus": [{"type": A40, "count": 2, "cuda": "12.4"}]})
    provider = FakeProvider(srv.services.provider.machines()[0], tmp_path / "logs", clock)
    cfg = ControllerSettings()
    async with client_for(srv, srv.user_key) as alice:
        rig = Rig(srv, alice, clock, provider, controller_for(srv, provider, clock, cfg))
        rig.controller.add_observer(_TimedObserver(rig))
        srv.services.broker.add_enqueue_listener(rig.controller.on_enqueue)
        app = tmp_path / "app"
        app.mkdir()
        ep = await create_endpoint(alice, template={
            "imageName": f"local:{app}", "dockerStartCmd": [sys.executable, "handler.py"]},
            gpuTypeIds=[A40], **candidate.settings())
        rig.ep = ep["id"]
        await _LiveWorld(rig).run(horizon_s, cfg.tick_s)
    await rig.controller.shutdown()
    srv.services.broker.close()
    srv.services.engine.dispose()
    return list(rig.scaled)


CANDIDATES = [
    Candidate("queue delay", "QUEUE_DELAY", 1, idle_timeout_s=3, workers_max=2, flashboot=True),
    Candidate("request count, no FlashBoot", "REQUEST_COUNT", 1, idle_timeout_s=3,
              workers_max=2, flashboot=False),
    Candidate("adaptive", "ADAPTIVE", 1, idle_timeout_s=3, workers_max=2, flashboot=True),
]


@pytest.mark.parametrize("candidate", CANDIDATES, ids=[c.label for c in CANDIDATES])
async def test_simulator_and_live_controller_decide_alike(tmp_path: Path,
                                                          candidate: Candidate) -> None:
    horizon = TRACE.duration_s + 20
    live = await _live(tmp_path, candidate, horizon)
    setup = Setup(cold_start=parse_duration(str(COLD_S)), revival=parse_duration("0"), gpus=2,
                  drain_s=20)
    ledger = await Run(TRACE, candidate, setup).run()
    simulated = [(round(t, 3), action, n, reason) for t, action, n, reason in ledger.scaled]
    assert len(live) >= 3, live  # the trace makes it scale up and down
    assert simulated == live
