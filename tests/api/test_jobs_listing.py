"""GET /v1/endpoints/{id}/jobs and GET /v1/jobs/{id}: filters, order, limits, ownership,
stream chunks without moving /stream's cursor, and final jobs read back from the store after a
restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runplane.clock import ManualClock, iso
from tests.api.obs_kit import T0, LeanWorker, clocked_server
from tests.conftest import Server, client_for, create_endpoint


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    server = clocked_server(tmp_path / "data", ManualClock(T0))
    yield server
    server.services.broker.close()
    server.services.engine.dispose()


@pytest.fixture
async def alice(srv: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(srv, srv.user_key) as c:
        yield c


async def submit(srv: Server, client: httpx.AsyncClient, ep: str, n: int) -> list[str]:
    """``n`` jobs one second apart, input ``{"i": k}``."""
    ids = []
    for k in range(n):
        r = await client.post(f"/v2/{ep}/run", json={"input": {"i": k}})
        ids.append(r.json()["id"])
        srv.services.clock.advance(1)  # type: ignore[attr-defined]
    return ids


async def listing(client: httpx.AsyncClient, ep: str, query: str = "") -> list[dict]:
    r = await client.get(f"/v1/endpoints/{ep}/jobs{query}")
    assert r.status_code == 200, r.text
    assert r.json()["endpointId"] == ep
    return r.json()["jobs"]


async def test_filters_order_and_job_objects(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    ids = await submit(srv, alice, ep, 5)
    worker = await LeanWorker.register(srv.app, alice, ep)
    assert (await worker.take())["id"] == ids[0]  # type: ignore[index]
    await worker.done(ids[0], {"output": {"ok": True}})
    assert (await worker.take())["id"] == ids[1]  # type: ignore[index]
    await worker.done(ids[1], {"error": "boom"})
    assert (await worker.take())["id"] == ids[2]  # type: ignore[index]
    await alice.post(f"/v2/{ep}/cancel/{ids[3]}")
    await worker.aclose()

    everything = await listing(alice, ep)
    assert [j["id"] for j in everything] == ids[::-1]  # newest first
    assert [j["id"] for j in await listing(alice, ep, "?status=IN_QUEUE")] == [ids[4]]
    assert [j["id"] for j in await listing(alice, ep, "?status=IN_PROGRESS")] == [ids[2]]
    assert [j["id"] for j in await listing(alice, ep, "?status=COMPLETED")] == [ids[0]]
    assert [j["id"] for j in await listing(alice, ep, "?status=FAILED")] == [ids[1]]
    assert [j["id"] for j in await listing(alice, ep, "?status=CANCELLED")] == [ids[3]]
    assert await listing(alice, ep, "?status=TIMED_OUT") == []

    # The same object /status answers, plus createdAt; no input unless asked for.
    done = everything[-1]
    status = (await alice.get(f"/v2/{ep}/status/{ids[0]}")).json()
    assert {k: v for k, v in done.items() if k != "createdAt"} == status
    assert done["createdAt"] == iso(T0)
    assert "input" not in done
    with_input = await listing(alice, ep, "?includeInput=true&limit=2")
    assert [j["input"] for j in with_input] == [{"i": 4}, {"i": 3}]


async def test_queued_jobs_are_listed_oldest_first(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    ids = await submit(srv, alice, ep, 4)
    assert [j["id"] for j in await listing(alice, ep, "?status=IN_QUEUE")] == ids
    assert [j["id"] for j in await listing(alice, ep, "?status=IN_QUEUE&limit=2")] == ids[:2]
    assert [j["id"] for j in await listing(alice, ep, "?limit=2")] == ids[:1:-1]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=501", "?limit=x", "?status=DONE",
                                   "?status=in_queue"])
async def test_bad_parameters_are_400(srv: Server, alice: httpx.AsyncClient, query: str) -> None:
    ep = (await create_endpoint(alice))["id"]
    r = await alice.get(f"/v1/endpoints/{ep}/jobs{query}")
    assert r.status_code == 400, r.text
    assert r.json()["field"] == query[1:].split("=")[0]


async def test_limit_bounds_are_inclusive(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    await submit(srv, alice, ep, 2)
    assert len(await listing(alice, ep, "?limit=1")) == 1
    assert len(await listing(alice, ep, "?limit=500")) == 2


async def test_other_users_get_404(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    (job,) = await submit(srv, alice, ep, 1)
    async with client_for(srv, srv.other_key) as bob:
        assert (await bob.get(f"/v1/endpoints/{ep}/jobs")).status_code == 404
        r = await bob.get(f"/v1/jobs/{job}")
        assert r.status_code == 404 and r.json()["error"] == f"job {job} not found"
    assert (await alice.get("/v1/endpoints/nope/jobs")).status_code == 404
    assert (await alice.get("/v1/jobs/nope")).status_code == 404
    async with client_for(srv, None) as anon:
        assert (await anon.get(f"/v1/jobs/{job}")).status_code == 401
    async with client_for(srv, srv.admin_key) as admin:
        assert (await admin.get(f"/v1/jobs/{job}")).status_code == 200


async def test_job_page_shows_chunks_without_taking_them(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    (job,) = await submit(srv, alice, ep, 1)
    worker = await LeanWorker.register(srv.app, alice, ep)
    await worker.take()
    await worker.chunk(job, "a")
    await worker.chunk(job, "b")
    page = (await alice.get(f"/v1/jobs/{job}?includeInput=true")).json()
    assert page["id"] == job and page["status"] == "IN_PROGRESS" and page["endpointId"] == ep
    assert page["input"] == {"i": 0}
    assert page["stream"] == [{"output": "a"}, {"output": "b"}]
    assert page["createdAt"] == iso(T0) and page["startedAt"] == iso(T0 + 1)
    assert page["completedAt"] is None
    # /stream still hands both chunks to the client.
    stream = (await alice.get(f"/v2/{ep}/stream/{job}")).json()
    assert stream["stream"] == [{"output": "a"}, {"output": "b"}]
    assert "input" not in (await alice.get(f"/v1/jobs/{job}")).json()
    await worker.done(job, {"output": "ab"})
    await worker.aclose()
    page = (await alice.get(f"/v1/jobs/{job}")).json()
    assert page["status"] == "COMPLETED" and page["output"] == "ab"
    assert page["completedAt"] == iso(T0 + 1)


async def test_final_jobs_are_read_from_the_store_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    srv = clocked_server(tmp_path / "data", clock)
    async with client_for(srv, srv.user_key) as alice:
        ep = (await create_endpoint(alice))["id"]
        ids = await submit(srv, alice, ep, 3)
        worker = await LeanWorker.register(srv.app, alice, ep)
        await worker.take()
        await worker.chunk(ids[0], "x")
        await worker.done(ids[0], {"output": 1})
        await worker.aclose()
        key = srv.user_key
    srv.services.broker.close()  # flushes every write
    srv.services.engine.dispose()

    from runplane.config import load_settings
    from runplane.server import build_services, create_app

    settings = load_settings(data_dir=tmp_path / "data", job_take_hold_s=0.05)
    services = build_services(settings, clock)
    again = Server(settings, services, create_app(services), "", key, "")
    try:
        assert ids[0] not in services.broker.jobs  # final: not loaded into memory
        async with client_for(again, key) as alice:
            listed = await listing(alice, ep, "?includeInput=true")
            assert [(j["id"], j["status"]) for j in listed] == [
                (ids[2], "IN_QUEUE"), (ids[1], "IN_QUEUE"), (ids[0], "COMPLETED")]
            assert listed[-1]["input"] == {"i": 0} and listed[-1]["output"] == 1
            completed = await listing(alice, ep, "?status=COMPLETED")
            assert [j["id"] for j in completed] == [ids[0]] and "input" not in completed[0]
            # A bare-number output survives the store (SQLite reads it back as a number).
            status = (await alice.get(f"/v2/{ep}/status/{ids[0]}")).json()
            assert status["output"] == 1
            page = (await alice.get(f"/v1/jobs/{ids[0]}")).json()
            assert page["stream"] == [{"output": "x"}] and page["status"] == "COMPLETED"
            # Past its result retention the job is gone, as /status says.
            clock.advance(settings.broker.run_result_retention_s + 1)
            assert [j["id"] for j in await listing(alice, ep)] == [ids[2], ids[1]]
    finally:
        services.broker.close()
        services.engine.dispose()
