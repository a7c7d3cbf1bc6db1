"""/metrics after real traffic: jobs through the worker routes in-process, the real controller
tick starting a real (idle) worker process on a declared GPU."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runplane.clock import ManualClock
from runplane.controller import autoscaler
from runplane.observability.metrics import reason_category
from runplane.worker_state import WorkerState as Status
from tests.api.obs_kit import T0, LeanWorker, clocked_server, samples, value
from tests.conftest import Server, client_for, create_endpoint

A40 = "NVIDIA A40"


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    server = clocked_server(tmp_path / "data", ManualClock(T0), machine={
        "detect_gpus": False, "declared_gpus": [{"type": A40, "count": 2, "cuda": "12.4"}]})
    yield server
    await server.services.controller.shutdown()
    server.services.broker.close()
    server.services.engine.dispose()


@pytest.fixture
async def alice(srv: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(srv, srv.user_key) as c:
        yield c


async def scrape(srv: Server, key: str | None = "admin") -> dict:
    async with client_for(srv, srv.admin_key if key == "admin" else key) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(r.text)


async def test_job_metrics_after_real_traffic(srv: Server, alice: httpx.AsyncClient) -> None:
    clock: ManualClock = srv.services.clock  # type: ignore[assignment]
    ep = (await create_endpoint(alice))["id"]
    worker = await LeanWorker.register(srv.app, alice, ep)
    ids = []
    for i in range(3):
        r = await alice.post(f"/v2/{ep}/run", json={"input": {"i": i}})
        ids.append(r.json()["id"])
    clock.advance(2.0)
    first = await worker.take()
    assert first is not None and first["id"] == ids[0]
    clock.advance(0.5)
    await worker.done(ids[0], {"output": "ok"})
    second = await worker.take()
    assert second is not None
    clock.advance(1.5)
    await worker.done(ids[1], {"error": "boom"})
    clock.advance(1.0)
    await worker.aclose()

    m = await scrape(srv)
    assert value(m, "runplane_jobs_submitted_total", endpoint_id=ep) == 3
    assert value(m, "runplane_jobs_finished_total", endpoint_id=ep, status="COMPLETED") == 1
    assert value(m, "runplane_jobs_finished_total", endpoint_id=ep, status="FAILED") == 1
    assert value(m, "runplane_queue_depth", endpoint_id=ep) == 1
    assert value(m, "runplane_jobs_in_progress", endpoint_id=ep) == 0
    # The third job was submitted at T0 and is still waiting: 5 s on the clock.
    assert value(m, "runplane_queue_oldest_age_seconds", endpoint_id=ep) == pytest.approx(5.0)
    # Delays 2.0 s and 2.5 s; executions 0.5 s and 1.5 s.
    assert value(m, "runplane_job_delay_seconds_count", endpoint_id=ep) == 2
    assert value(m, "runplane_job_delay_seconds_sum", endpoint_id=ep) == pytest.approx(4.5)
    assert value(m, "runplane_job_delay_seconds_bucket", endpoint_id=ep, le="1.0") == 0
    assert value(m, "runplane_job_delay_seconds_bucket", endpoint_id=ep, le="2.5") == 2
    assert value(m, "runplane_job_execution_seconds_count", endpoint_id=ep) == 2
    assert value(m, "runplane_job_execution_seconds_sum", endpoint_id=ep) == pytest.approx(2.0)
    assert value(m, "runplane_job_execution_seconds_bucket", endpoint_id=ep, le="1.0") == 1
    assert value(m, "runplane_workers", endpoint_id=ep, state="idle") == 1
    assert value(m, "runplane_workers", endpoint_id=ep, state="running") == 0
    machine = srv.services.provider.machines()[0].id
    assert value(m, "runplane_machine_gpus", machine_id=machine, gpu_type_id=A40) == 2
    assert value(m, "runplane_machine_gpus_used", machine_id=machine, gpu_type_id=A40) == 0
    assert value(m, "runplane_info", version=__import__("runplane").__version__) == 1
    assert not any(name.endswith("_created") for name, _ in m)


async def test_requeue_and_cancel_are_counted(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    worker = await LeanWorker.register(srv.app, alice, ep)
    job = (await alice.post(f"/v2/{ep}/run", json={"input": {}})).json()["id"]
    assert (await worker.take())["id"] == job  # type: ignore[index]
    srv.services.workers.retire(worker.id, "gone")  # its job goes back to the queue
    await alice.post(f"/v2/{ep}/cancel/{job}")
    await worker.aclose()
    m = await scrape(srv)
    assert value(m, "runplane_jobs_requeued_total", endpoint_id=ep) == 1
    assert value(m, "runplane_jobs_finished_total", endpoint_id=ep, status="CANCELLED") == 1
    assert value(m, "runplane_queue_depth", endpoint_id=ep) == 0


def idle_template(tmp_path: Path) -> dict:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "idle.py").write_text("import time\ntime.sleep(120)\n")
    return {"imageName": f"local:{app}", "dockerStartCmd": [sys.executable, "idle.py"]}


async def test_scaling_cold_start_and_gpu_use(
        srv: Server, alice: httpx.AsyncClient, tmp_path: Path) -> None:
    clock: ManualClock = srv.services.clock  # type: ignore[assignment]
    ep = (await create_endpoint(alice, template=idle_template(tmp_path), gpuTypeIds=[A40],
                                workersMin=1, workersMax=1))["id"]
    controller = srv.services.controller
    await controller.tick()  # workersMin=1: starts one worker (a real process)

    m = await scrape(srv)
    assert value(m, "runplane_scaling_decisions_total", endpoint_id=ep, action="up",
                 reason="workers_min_max") == 1
    assert value(m, "runplane_workers", endpoint_id=ep, state="initializing") == 1
    assert value(m, "runplane_endpoint_desired_workers", endpoint_id=ep) == 1
    machine = srv.services.provider.machines()[0].id
    assert value(m, "runplane_machine_gpus_used", machine_id=machine, gpu_type_id=A40) == 1
    assert value(m, "runplane_worker_cold_start_seconds_count", endpoint_id=ep) is None

    # The worker takes its first job 4 s after it was started: a 4 s cold start.
    (worker_id,) = list(controller.tracked)
    clock.advance(4.0)
    registry = srv.services.workers
    registry.first_take(registry.get(worker_id))
    await controller.tick()
    m = await scrape(srv)
    assert value(m, "runplane_worker_cold_start_seconds_count", endpoint_id=ep) == 1
    assert value(m, "runplane_worker_cold_start_seconds_sum", endpoint_id=ep) == pytest.approx(4.0)
    assert value(m, "runplane_worker_cold_start_seconds_bucket", endpoint_id=ep, le="3.0") == 0
    assert value(m, "runplane_worker_cold_start_seconds_bucket", endpoint_id=ep, le="5.0") == 1
    assert value(m, "runplane_controller_ticks_total") == 2

    stats = (await alice.get(f"/v1/endpoints/{ep}/stats?window=60")).json()
    assert sum(p["coldStarts"] for p in stats["points"]) == 1
    assert [p["coldStartP90"] for p in stats["points"] if p["coldStarts"]] == [4000]


async def test_deleted_endpoint_series_are_dropped(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    await alice.post(f"/v2/{ep}/run", json={"input": {}})
    await alice.post(f"/v2/{ep}/purge-queue")
    assert value(await scrape(srv), "runplane_jobs_submitted_total", endpoint_id=ep) == 1
    assert (await alice.delete(f"/v1/endpoints/{ep}")).status_code == 204
    srv.services.observability.sample(srv.services.clock.now())
    m = await scrape(srv)
    assert not [k for k in m if ("endpoint_id", ep) in k[1]]


async def test_metrics_auth_setting(tmp_path: Path) -> None:
    srv = clocked_server(tmp_path / "data", ManualClock(T0), metrics_require_auth=True)
    try:
        for key, status in ((None, 401), ("rp_wrong", 401), (srv.user_key, 403),
                            (srv.admin_key, 200)):
            async with client_for(srv, key) as c:
                r = await c.get("/metrics")
            assert r.status_code == status, (key, r.text)
            if status != 200:
                assert r.json()["status"] == status
    finally:
        srv.services.broker.close()
        srv.services.engine.dispose()


async def test_metrics_need_an_admin_key_by_default(srv: Server) -> None:
    # /metrics names every user's endpoints: closed unless the operator opens it.
    async with client_for(srv, None) as c:
        assert (await c.get("/metrics")).status_code == 401
    async with client_for(srv, srv.user_key) as c:
        assert (await c.get("/metrics")).status_code == 403
    await scrape(srv)


async def test_metrics_can_be_opened(tmp_path: Path) -> None:
    srv = clocked_server(tmp_path / "data", ManualClock(T0), metrics_require_auth=False)
    try:
        await scrape(srv, key=None)
    finally:
        srv.services.broker.close()
        srv.services.engine.dispose()


@pytest.mark.parametrize(("setup", "expected"), [
    (dict(q=autoscaler.QueueStats(1, 0, T0), workers=[]), "scale_from_zero"),
    (dict(q=autoscaler.QueueStats(3, 1, T0 - 60),
          workers=[autoscaler.WorkerSnapshot("w1", Status.RUNNING, 1)]), "queue_delay"),
    (dict(q=autoscaler.QueueStats(4, 0, T0), workers=[], s=autoscaler.ScalerSettings(
        scaler_type="REQUEST_COUNT", scaler_value=2)), "request_count"),
    (dict(q=autoscaler.QueueStats(), workers=[], s=autoscaler.ScalerSettings(workers_min=2)),
     "workers_min_max"),
])
def test_scale_up_reasons_have_categories(setup: dict, expected: str) -> None:
    d = autoscaler.decide(setup.get("s", autoscaler.ScalerSettings()), setup["q"],
                          setup["workers"], T0)
    assert d.start > 0
    assert reason_category(d.reason) == expected


@pytest.mark.parametrize(("worker", "expected"), [
    (autoscaler.WorkerSnapshot("w1", Status.IDLE, 0, idle_since=T0 - 60), "idle_timeout"),
    (autoscaler.WorkerSnapshot("w1", Status.UNHEALTHY), "unhealthy"),
    (autoscaler.WorkerSnapshot("w1", Status.IDLE, 0, idle_since=T0, version=-1), "outdated"),
])
def test_scale_down_reasons_have_categories(worker: autoscaler.WorkerState, expected: str) -> None:
    d = autoscaler.decide(autoscaler.ScalerSettings(), autoscaler.QueueStats(), [worker], T0)
    (stop,) = d.stop
    assert reason_category(stop[1]) == expected
