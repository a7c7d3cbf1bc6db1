"""Table tests for whole ``Controller.tick()`` passes, without processes: a real SQLite store,
broker and worker registry (``make_server``), a controller built over them with the
in-memory ``FakeProvider`` and a manual clock, and the worker protocol spoken in-process.

Each case is a list of steps and what must hold after them. The controller's clock starts at
the real time (the broker stamps workers' idle times with it) and only moves when a step says.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from runplane.clock import ManualClock
from runplane.config import ControllerSettings
from runplane.controller.allocations import Allocations
from runplane.controller.launcher import Launcher
from runplane.controller.reconcile import Controller
from runplane.controller.records import WorkerHold
from runplane.controller.worker_rows import WorkerTable
from runplane.services.host_access import LocalImagePolicy
from runplane.services.pods import PodService
from runplane.services.references import References
from runplane.store.tables import workers
from tests.api.test_jobs import Worker
from tests.conftest import Server, client_for, create_endpoint, make_server
from tests.unit.fake_provider import FakeProvider

A40 = "NVIDIA A40"
H100 = "NVIDIA H100 80GB HBM3"


@dataclass
class Rig:
    srv: Server
    alice: httpx.AsyncClient
    clock: ManualClock
    provider: FakeProvider
    controller: Controller
    ep: str = ""
    jobs: list[str] = field(default_factory=list)
    scaled: list[tuple[str, str]] = field(default_factory=list)  # (action, reason)

    async def tick(self) -> None:
        await self.controller.tick()
        for _ in range(5):  # let the stops it asked for run (the fake's are immediate)
            await asyncio.sleep(0)

    def worker(self, worker_id: str) -> Worker:
        env = self.provider.specs[worker_id].env
        return Worker(self.srv, self.ep, worker_id, env["RUNPOD_AI_API_KEY"], env)


class Observer:
    """Records the controller's "scaled" events on the rig."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        self.rig.scaled.append((action, reason))

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        pass

    def ticked(self, now: float) -> None:
        pass


def controller_for(srv: Server, provider: FakeProvider, clock: ManualClock,
                   cfg: ControllerSettings) -> Controller:
    """What a composition root does, with the fake provider: the parts in dependency order."""
    s = srv.services
    allocations = Allocations(provider, cpu_overcommit=1.0)
    launcher = Launcher(provider, s.catalog, s.volumes, s.registry_auths)
    refs = References(s.volumes, s.registry_auths, LocalImagePolicy(s.settings.security,
                                                                     lambda _: None))
    pods = PodService(s.engine, clock, s.catalog, provider, s.templates, s.billing, launcher,
                      allocations, refs)
    return Controller(settings=cfg, clock=clock, provider=provider, endpoints=s.endpoints,
                      templates=s.templates, queues=s.broker, registry=s.broker.workers,
                      billing=s.billing, launcher=launcher, allocations=allocations,
                      rows=WorkerTable(s.engine), pods=pods)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    # One declared A40 and no detected GPUs, whatever this host has.
    srv = make_server(tmp_path / "data", job_take_hold_s=0.2, machine={
        "detect_gpus": False, "declared_gpus": [{"type": A40, "count": 1, "cuda": "12.4"}]})
    clock = ManualClock(time.time())
    machine = srv.services.provider.machines()[0]
    provider = FakeProvider(machine, tmp_path / "logs", clock)
    cfg = ControllerSettings(startup_timeout_s=30, crash_backoff_base_s=10)
    async with client_for(srv, srv.user_key) as alice:
        r = Rig(srv, alice, clock, provider, controller_for(srv, provider, clock, cfg))
        r.controller.add_observer(Observer(r))
        yield r
    await r.controller.shutdown()
    srv.services.broker.close()
    srv.services.engine.dispose()


# -- steps ---------------------------------------------------------------------------------


async def step(r: Rig, what: str) -> None:
    verb, _, arg = what.partition(" ")
    if verb == "tick":
        await r.tick()
    elif verb == "advance":
        r.clock.advance(float(arg))
    elif verb == "run":  # queue a job
        resp = await r.alice.post(f"/v2/{r.ep}/run", json={"input": {"n": len(r.jobs)}})
        assert resp.status_code == 200, resp.text
        r.jobs.append(resp.json()["id"])
    elif verb == "crash":  # every running process exits by itself
        for wid in r.provider.running():
            r.provider.crash(wid, 1)
    elif verb == "work":  # every running worker takes a queued job and finishes it
        for wid in r.provider.running():
            w = r.worker(wid)
            job = await w.take_job()
            await w.done(job["id"], {"output": "ok"})
    elif verb == "fail-starts":
        r.provider.fail_start = arg
    else:
        raise AssertionError(f"unknown step {what!r}")


@dataclass(frozen=True)
class Case:
    name: str
    endpoint: dict[str, object]
    steps: list[str]
    started: int  # provider.start calls
    running: int  # processes not exited (parked ones included)
    parked: int = 0
    failures: int = 0  # the endpoint's breaker
    reason: str | None = None  # prefix of the endpoint's reason (None: it has none)
    throttled: int = 0
    stopped: tuple[str, ...] = ()  # prefixes of the exited workers' reasons, oldest first
    scaled: tuple[str, ...] = ()  # the observers' "scaled" actions, in order


CPU = {"computeType": "CPU", "vcpuCount": 1}
NO_TAKE = "no job-take within the startup timeout (30s)"
CRASHED = "exited with code 1 before its first job"

CASES = [
    Case("queued job and no worker: one worker starts, once",
         {**CPU, "flashboot": False}, ["run", "tick", "tick"], started=1, running=1,
         scaled=("up",)),
    Case("nothing queued, workersMin 0: quiet", CPU, ["tick", "advance 100", "tick"],
         started=0, running=0),
    Case("a worker past the start-up timeout: stopped, counted against the breaker, replaced",
         {**CPU, "workersMin": 1}, ["tick", "advance 31", "tick"], started=2, running=1,
         failures=1, stopped=(), scaled=("up", "up")),
    Case("... and its exit recorded on the next tick, with why",
         {**CPU, "workersMin": 1}, ["tick", "advance 31", "tick", "tick"], started=2,
         running=1, failures=1, stopped=(NO_TAKE,), scaled=("up", "up")),
    Case("a worker that took its job within the timeout stays",
         {**CPU, "workersMin": 1}, ["tick", "run", "work", "advance 31", "tick"], started=1,
         running=1, scaled=("up",)),
    Case("crashing three times: breaker open, reason shown",
         {**CPU, "workersMin": 1}, ["tick", "crash", "tick", "crash", "tick", "crash", "tick"],
         started=3, running=0, failures=3, throttled=1,
         reason=f"crash loop: 3 consecutive workers failed (last: {CRASHED}); next start in 10s",
         stopped=(CRASHED, CRASHED, CRASHED), scaled=("up", "up", "up")),
    Case("the breaker's backoff over: one more start, 'retrying' while it runs",
         {**CPU, "workersMin": 1},
         ["tick", "crash", "tick", "crash", "tick", "crash", "tick", "advance 11", "tick"],
         started=4, running=1, failures=3,
         reason=f"crash loop: 3 consecutive workers failed (last: {CRASHED}); retrying",
         stopped=(CRASHED, CRASHED, CRASHED), scaled=("up", "up", "up", "up")),
    Case("idle past idleTimeout: stopped",
         {**CPU, "flashboot": False, "idleTimeout": 5},
         ["run", "tick", "work", "advance 8", "tick", "tick"], started=1, running=0,
         stopped=("idle for",), scaled=("up", "down")),
    Case("idle within idleTimeout: kept",
         {**CPU, "flashboot": False, "idleTimeout": 5},
         ["run", "tick", "work", "advance 2", "tick"], started=1, running=1, scaled=("up",)),
    Case("FlashBoot endpoint idle: parked, not stopped",
         {**CPU, "flashboot": True, "idleTimeout": 5},
         ["run", "tick", "work", "advance 8", "tick", "tick"], started=1, running=1, parked=1,
         scaled=("up", "park")),
    Case("a job for a parked worker's endpoint: resumed, nothing started",
         {**CPU, "flashboot": True, "idleTimeout": 5},
         ["run", "tick", "work", "advance 8", "tick", "run", "tick"], started=1, running=1,
         parked=0, scaled=("up", "park", "resume")),
    Case("a failed start says why and counts against the breaker",
         {**CPU, "workersMin": 1}, ["fail-starts no such file", "tick"], started=0,
         running=0, failures=1, reason="could not start: no such file",
         stopped=("could not start: no such file",)),
    Case("no machine fits: the scheduler's reason, nothing started",
         {"gpuTypeIds": [H100], "workersMin": 1}, ["tick"], started=0, running=0,
         reason=f"no machine has {H100}"),
    Case("capacity taken: the rest are throttled",
         {"gpuTypeIds": [A40], "workersMin": 2, "workersMax": 2}, ["tick"], started=1,
         running=1, throttled=1, reason=f"all {A40} GPUs are in use", scaled=("up",)),
    Case("only lowPriority jobs and workersMin 0: they wait, and the endpoint says so",
         CPU, ["run-low", "tick"], started=0, running=0,
         reason="only lowPriority jobs are queued and workersMin is 0"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_tick(rig: Rig, case: Case, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    ep = await create_endpoint(rig.alice, template={
        "imageName": f"local:{app}", "dockerStartCmd": [sys.executable, "handler.py"],
        "env": {"FROM_TEMPLATE": "1"}}, **case.endpoint)
    rig.ep = ep["id"]
    for s in case.steps:
        if s == "run-low":
            resp = await rig.alice.post(f"/v2/{rig.ep}/run",
                                        json={"input": {}, "policy": {"lowPriority": True}})
            assert resp.status_code == 200, resp.text
        else:
            await step(rig, s)

    c = rig.controller
    assert len(rig.provider.specs) == case.started
    assert len(rig.provider.running()) == case.running
    assert sum(len(ws) for ws in c.flashboot.parked.values()) == case.parked
    breaker = c.breakers.get(rig.ep)
    assert (breaker.failures if breaker else 0) == case.failures
    reason = c.endpoint_reason(rig.ep)
    if case.reason is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(case.reason), reason
    assert c.endpoint_status(rig.ep).get("throttled", 0) == case.throttled
    with rig.srv.services.engine.connect() as conn:
        exited = [row.reason for row in conn.execute(
            select(workers.c.reason).where(workers.c.endpoint_id == rig.ep,
                                           workers.c.stopped_at.is_not(None))
            .order_by(workers.c.stopped_at, workers.c.created_at))]
    assert len(exited) == len(case.stopped), exited
    for got, want in zip(exited, case.stopped, strict=True):
        assert got.startswith(want), exited
    assert tuple(action for action, _ in rig.scaled) == case.scaled


async def test_a_started_worker_gets_its_environment_row_and_placement(rig: Rig,
                                                                       tmp_path: Path) -> None:
    ep = await create_endpoint(rig.alice, template={
        "imageName": f"local:{tmp_path}", "dockerStartCmd": [sys.executable, "handler.py"],
        "env": {"FROM_TEMPLATE": "1", "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "false"}},
        gpuTypeIds=[A40], workersMin=1)
    await rig.tick()

    (wid,) = rig.provider.specs
    spec = rig.provider.specs[wid]
    assert spec.command == [sys.executable, "handler.py"] and spec.gpu_indices == (0,)
    assert spec.env["FROM_TEMPLATE"] == "1" and spec.env["RUNPOD_POD_ID"] == wid
    assert spec.env["RUNPOD_ENDPOINT_ID"] == ep["id"]
    # The worker's own variables win over the template's.
    assert spec.env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == "true"
    assert rig.controller.tracked[wid].placement.gpu_indices == (0,)
    assert rig.controller.loads()[0].used_gpus == {0}  # held in the shared ledger
    with rig.srv.services.engine.connect() as conn:
        row = conn.execute(select(workers).where(workers.c.id == wid)).one()
    assert row.started_at is not None and row.log_path == str(rig.provider.log_path(wid))
    assert row.gpu_type_id == A40 and row.gpu_count == 1 and row.desired_status == "RUNNING"
    registered = rig.srv.services.broker.workers.get(wid)
    assert registered is not None and registered.status == "INITIALIZING"

    await rig.controller.shutdown()  # every process stops; rows say why
    assert rig.provider.running() == [] and rig.controller.loads()[0].used_gpus == set()
    with rig.srv.services.engine.connect() as conn:
        row = conn.execute(select(workers).where(workers.c.id == wid)).one()
    assert row.reason == "server shut down" and row.desired_status == "EXITED"


async def test_its_records_are_read_only_to_its_readers(rig: Rig, tmp_path: Path) -> None:
    """The tracked workers and endpoint states have one writer, the controller (issue 24):
    whoever holds it reads a live read-only mapping or its narrow readings."""
    ep = await create_endpoint(rig.alice, template={
        "imageName": f"local:{tmp_path}", "dockerStartCmd": [sys.executable, "handler.py"]},
        gpuTypeIds=[A40], workersMin=1)
    await rig.tick()

    (wid,) = rig.provider.specs
    c = rig.controller
    tracked = c.tracked
    with pytest.raises(TypeError):
        tracked[wid] = tracked[wid]  # type: ignore[index]
    machine_id = rig.provider.machines()[0].id
    r = c.readings
    assert r.worker_holds() == [WorkerHold(wid, ep["id"], machine_id, (0,), parked=False)]
    assert r.parked_since(wid) is None and r.parked_since("nobody") is None
    assert r.desired_workers(ep["id"]) == 1 and r.desired_workers("nobody") == 0
    assert list(r.throttled_workers()) == []

async def test_a_worker_of_an_endpoint_with_a_network_volume_sees_it(rig: Rig,
                                                                    tmp_path: Path) -> None:
    dc = rig.provider.machine.data_center_id
    r = await rig.alice.post("/v1/networkvolumes",
                             json={"name": "v", "size": 10, "dataCenterId": dc})
    assert r.status_code in (200, 201), r.text
    volume = rig.srv.services.volumes.get(r.json()["id"])
    assert volume is not None
    await create_endpoint(rig.alice, template={
        "imageName": f"local:{tmp_path}", "dockerStartCmd": [sys.executable, "handler.py"]},
        computeType="CPU", vcpuCount=1, workersMin=1, networkVolumeId=volume.id)
    await rig.tick()

    (spec,) = rig.provider.specs.values()
    path = rig.srv.services.volumes.path_of(volume)
    assert spec.env["RUNPLANE_VOLUME_PATH"] == str(path) and path.is_dir()
    assert spec.env["RUNPLANE_VOLUME_MOUNT_PATH"] == "/runpod-volume"
