"""What the controller says shows in the API: why jobs wait (its reason on /health, on a
queued job's /status and on the endpoint), workers wanted but whose capacity is taken
(throttled), and the workers themselves (``includeWorkers``).

The app runs in-process (no lifespan), so the test drives the real controller's tick itself.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, client_for, create_endpoint, make_server

H100 = "NVIDIA H100 80GB HBM3"
A40 = "NVIDIA A40"


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    # One declared A40 and no detected GPUs, whatever this host has.
    server = make_server(tmp_path / "data", machine={
        "detect_gpus": False, "declared_gpus": [{"type": A40, "count": 1, "cuda": "12.4"}]})
    yield server
    await server.services.controller.shutdown()  # stops every process the tick started
    server.services.engine.dispose()


@pytest.fixture
async def alice(srv: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(srv, srv.user_key) as c:
        yield c


def template(tmp_path: Path) -> dict:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "idle.py").write_text("import time\ntime.sleep(120)\n")
    return {"imageName": f"local:{app}", "dockerStartCmd": [sys.executable, "idle.py"]}


async def test_no_fit_reason_on_status_health_and_endpoint(
        srv: Server, alice: httpx.AsyncClient, tmp_path: Path) -> None:
    ep = await create_endpoint(alice, template=template(tmp_path), gpuTypeIds=[H100])
    r = await alice.post(f"/v2/{ep['id']}/run", json={"input": {"x": 1}})
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    assert "reason" not in (await alice.get(f"/v2/{ep['id']}/status/{job_id}")).json()

    await srv.services.controller.tick()

    status = (await alice.get(f"/v2/{ep['id']}/status/{job_id}")).json()
    assert status["status"] == "IN_QUEUE"
    assert status["reason"].startswith(f"no machine has {H100}"), status
    health = (await alice.get(f"/v2/{ep['id']}/health")).json()
    assert health["reason"] == status["reason"]
    assert health["workers"]["throttled"] == 0  # no machine can ever hold it: not throttled
    got = (await alice.get(f"/v1/endpoints/{ep['id']}")).json()
    assert got["reason"] == status["reason"]
    listed = (await alice.get("/v1/endpoints")).json()
    assert [e.get("reason") for e in listed] == [status["reason"]]
    assert srv.services.provider.list() == []  # nothing was started


async def test_taken_capacity_is_throttled_and_clears(
        srv: Server, alice: httpx.AsyncClient, tmp_path: Path) -> None:
    ep = await create_endpoint(alice, template=template(tmp_path), gpuTypeIds=[A40],
                               workersMin=2, workersMax=2)
    await srv.services.controller.tick()

    health = (await alice.get(f"/v2/{ep['id']}/health")).json()
    assert health["workers"]["throttled"] == 1, health
    assert health["workers"]["initializing"] == 1
    assert health["reason"] == f"all {A40} GPUs are in use"
    assert len(srv.services.provider.list()) == 1

    # Wanting one worker fits the one GPU: nothing is throttled and no reason is left.
    r = await alice.patch(f"/v1/endpoints/{ep['id']}", json={"workersMin": 1})
    assert r.status_code == 200, r.text
    await srv.services.controller.tick()
    health = (await alice.get(f"/v2/{ep['id']}/health")).json()
    assert health["workers"]["throttled"] == 0 and "reason" not in health, health
    assert "reason" not in (await alice.get(f"/v1/endpoints/{ep['id']}")).json()


async def test_include_workers_lists_started_and_manual_workers(
        srv: Server, alice: httpx.AsyncClient, tmp_path: Path) -> None:
    ep = await create_endpoint(alice, template=template(tmp_path), gpuTypeIds=[A40],
                               workersMin=1, workersMax=1)
    other = await create_endpoint(alice, template=template(tmp_path), gpuTypeIds=[A40])
    await srv.services.controller.tick()
    r = await alice.post(f"/v2/{ep['id']}/workers", json={})
    assert r.status_code == 201, r.text
    manual = r.json()["id"]

    got = (await alice.get(f"/v1/endpoints/{ep['id']}", params={"includeWorkers": "true"})).json()
    by_id = {w["id"]: w for w in got["workers"]}
    assert len(by_id) == 2 and manual in by_id
    (started,) = [w for i, w in by_id.items() if i != manual]
    assert started["workerStatus"] == "INITIALIZING" and started["gpu"]["id"] == A40
    assert started["slsVersion"] == 0 and started["desiredStatus"] == "RUNNING"
    listed = (await alice.get("/v1/endpoints", params={"includeWorkers": "true"})).json()
    assert {e["id"]: len(e["workers"]) for e in listed} == {ep["id"]: 2, other["id"]: 0}

    # A change of the endpoint makes the running worker outdated (a rolling update).
    await alice.patch(f"/v1/endpoints/{ep['id']}", json={"idleTimeout": 9})
    got = (await alice.get(f"/v1/endpoints/{ep['id']}", params={"includeWorkers": "true"})).json()
    assert {w["id"]: w["workerStatus"] for w in got["workers"]}[started["id"]] == "OUTDATED"

    # A retired worker is no longer listed.
    assert (await alice.delete(f"/v2/{ep['id']}/workers/{manual}")).status_code == 200
    got = (await alice.get(f"/v1/endpoints/{ep['id']}", params={"includeWorkers": "true"})).json()
    assert [w["id"] for w in got["workers"]] == [started["id"]]
