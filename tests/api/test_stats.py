"""GET /v1/endpoints/{id}/stats: buckets on an injected ManualClock, fed by real traffic
through the job and worker routes; the bucketing and percentiles themselves in isolation."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runplane.clock import ManualClock
from runplane.observability.stats import (
    WORKER_STATES,
    Sample,
    StatsStore,
    bucket_seconds_for,
    percentile,
)
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


def clock_of(srv: Server) -> ManualClock:
    return srv.services.clock  # type: ignore[return-value]


async def stats(client: httpx.AsyncClient, ep: str, window: int | None = None) -> dict:
    url = f"/v1/endpoints/{ep}/stats" + (f"?window={window}" if window is not None else "")
    r = await client.get(url)
    assert r.status_code == 200, r.text
    return r.json()


async def test_jobs_land_in_their_buckets(srv: Server, alice: httpx.AsyncClient) -> None:
    clock = clock_of(srv)
    ep = (await create_endpoint(alice))["id"]
    worker = await LeanWorker.register(srv.app, alice, ep)
    clock.advance(1)  # T0+1: two jobs submitted
    ids = [(await alice.post(f"/v2/{ep}/run", json={"input": {}})).json()["id"] for _ in range(2)]
    clock.advance(12)  # T0+13: both taken, 12 s after submission
    assert (await worker.take())["id"] == ids[0]  # type: ignore[index]
    assert (await worker.take())["id"] == ids[1]  # type: ignore[index]
    clock.advance(3)  # T0+16: one completes after 3 s, the other fails
    await worker.done(ids[0], {"output": 1})
    await worker.done(ids[1], {"error": "bad"})
    srv.services.observability.ticked(clock.now())  # the controller tick's sampler
    clock.advance(25)  # T0+41
    await worker.aclose()

    body = await stats(alice, ep, window=60)
    assert body["endpointId"] == ep and body["bucketSeconds"] == 10
    points = body["points"]
    assert [p["t"] for p in points] == [T0 - 10 + 10 * i for i in range(6)]
    by_t = {p["t"]: p for p in points}
    first, second = by_t[T0], by_t[T0 + 10]
    assert (first["requests"], first["completed"], first["failed"]) == (2, 0, 0)
    assert first["delayP90"] is None and first["executionP90"] is None
    assert (second["requests"], second["completed"], second["failed"]) == (0, 1, 1)
    assert second["delayP70"] == second["delayP90"] == second["delayP98"] == 12_000
    assert second["executionP70"] == 3_000
    # Sampled at T0+16: one idle worker and an empty queue; carried forward until T0+40,
    # where the route samples the current bucket itself.
    assert second["workers"] == {"initializing": 0, "idle": 1, "running": 0, "throttled": 0,
                                 "unhealthy": 0, "parked": 0}
    assert by_t[T0 + 20]["workers"]["idle"] == 1 and by_t[T0 + 20]["requests"] == 0
    assert by_t[T0 + 40]["workers"]["idle"] == 1
    # Before the first sample there is nothing to carry.
    assert by_t[T0 - 10]["workers"]["idle"] == 0 and by_t[T0 - 10]["requests"] == 0


async def test_queue_depth_is_sampled(srv: Server, alice: httpx.AsyncClient) -> None:
    clock = clock_of(srv)
    ep = (await create_endpoint(alice))["id"]
    for _ in range(3):
        await alice.post(f"/v2/{ep}/run", json={"input": {}})
    srv.services.observability.ticked(clock.now())
    clock.advance(10)
    await alice.post(f"/v2/{ep}/purge-queue")
    points = (await stats(alice, ep, window=20))["points"]
    assert [(p["t"], p["inQueue"], p["requests"], p["failed"]) for p in points] == [
        (T0, 3, 3, 0), (T0 + 10, 0, 0, 3)]  # purged jobs are CANCELLED: counted as failed


async def test_window_picks_the_bucket_width(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    for window, width, n in ((10, 10, 1), (3600, 10, 360), (3601, 60, 61), (21_600, 60, 360),
                             (21_601, 300, 73), (86_400, 300, 288)):
        body = await stats(alice, ep, window)
        assert (body["bucketSeconds"], len(body["points"])) == (width, n), window
        ts = [p["t"] for p in body["points"]]
        assert ts == sorted(ts) and all(t % width == 0 for t in ts)
    assert len((await stats(alice, ep))["points"]) == 360  # default: one hour


async def test_older_history_lives_in_the_coarser_rings(srv: Server, alice: httpx.AsyncClient) -> None:
    clock = clock_of(srv)
    ep = (await create_endpoint(alice))["id"]
    await alice.post(f"/v2/{ep}/run", json={"input": {}})
    clock.advance(2 * 3600)
    assert sum(p["requests"] for p in (await stats(alice, ep, 3600))["points"]) == 0
    assert sum(p["requests"] for p in (await stats(alice, ep, 3 * 3600))["points"]) == 1
    assert sum(p["requests"] for p in (await stats(alice, ep, 86_400))["points"]) == 1
    clock.advance(23 * 3600)  # 25 h after: out of every ring
    assert sum(p["requests"] for p in (await stats(alice, ep, 86_400))["points"]) == 0


@pytest.mark.parametrize("window", ["0", "86401", "-5", "abc", "1.5"])
async def test_bad_window_is_400(srv: Server, alice: httpx.AsyncClient, window: str) -> None:
    ep = (await create_endpoint(alice))["id"]
    r = await alice.get(f"/v1/endpoints/{ep}/stats?window={window}")
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "window"


async def test_stats_of_others_and_unknown_endpoints_are_404(srv: Server, alice: httpx.AsyncClient) -> None:
    ep = (await create_endpoint(alice))["id"]
    async with client_for(srv, srv.other_key) as bob:
        assert (await bob.get(f"/v1/endpoints/{ep}/stats")).status_code == 404
    assert (await alice.get("/v1/endpoints/nope/stats")).status_code == 404
    async with client_for(srv, None) as anon:
        assert (await anon.get(f"/v1/endpoints/{ep}/stats")).status_code == 401
    async with client_for(srv, srv.admin_key) as admin:
        assert (await admin.get(f"/v1/endpoints/{ep}/stats")).status_code == 200


# -- the store and percentiles alone ---------------------------------------------------------


def test_percentiles_are_nearest_rank_and_close() -> None:
    assert percentile(None, 0.9) is None
    store = StatsStore()
    for ms in range(1, 101):  # 1..100 ms
        store.taken("ep", T0, ms)
    p = store.series("ep", T0, 10)["points"][0]
    assert p["delayP70"] == pytest.approx(70, rel=0.045)
    assert p["delayP90"] == pytest.approx(90, rel=0.045)
    assert p["delayP98"] == pytest.approx(98, rel=0.045)
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(7, 1.5) for _ in range(2000))
    store = StatsStore()
    for v in values:
        store.finished("ep", T0, True, v)
    p = store.series("ep", T0, 10)["points"][0]
    for key, q in (("executionP70", 0.70), ("executionP90", 0.90), ("executionP98", 0.98)):
        exact = values[int(q * len(values)) - 1]
        assert p[key] == pytest.approx(exact, rel=0.045), key


def test_a_ring_slot_is_reused_not_mixed() -> None:
    store = StatsStore()
    store.submitted("ep", T0)
    store.submitted("ep", T0 + 3600)  # the same slot of the 10 s ring, an hour later
    points = store.series("ep", T0 + 3600, 3600)["points"]
    assert [p["requests"] for p in points if p["requests"]] == [1]


def test_sample_and_drop() -> None:
    store = StatsStore()
    store.sample("ep", T0, Sample((1, 2, 3, 4, 5, 6), 7))
    p = store.series("ep", T0, 10)["points"][0]
    assert p["workers"] == dict(zip(WORKER_STATES, (1, 2, 3, 4, 5, 6), strict=True))
    assert p["inQueue"] == 7
    store.drop("ep")
    assert not store.has("ep")
    assert store.series("ep", T0, 10)["points"][0]["inQueue"] == 0


def test_bucket_seconds_for() -> None:
    assert [bucket_seconds_for(w) for w in (1, 3600, 3601, 21_600, 21_601, 86_400)] == \
        [10, 10, 60, 60, 300, 300]
