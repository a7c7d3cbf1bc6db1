"""``GET /v1/endpoints/{id}/whatif`` (issue 23, finding 5): its replay is bounded in jobs, span
and steps however long the history; it stops when the client leaves and when the server is
told to stop; past ``[limits] whatif_per_minute`` a key gets a 429 in RunPod's JSON shape."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import insert

from runplane.simulate.budget import Budget
from runplane.simulate.whatif import endpoint_whatif
from runplane.store.db import make_engine
from runplane.store.tables import jobs
from tests.conftest import client_for, create_endpoint, make_server
from tests.e2e.conftest import LiveServer
from tests.security.conftest import serve
from tests.security.test_limits import _endpoint

# Unbounded enough that a full replay of HISTORY would take minutes of CPU.
LONG = {"whatif_max_steps": 50_000_000, "whatif_max_span_s": 86_400,
        "whatif_max_jobs": 100_000, "whatif_cache_s": 0}


def _history(engine_url: str, endpoint: dict[str, str], n: int, span_s: float) -> None:
    """``n`` finished jobs of ``endpoint`` submitted over the last ``span_s``."""
    engine = make_engine(engine_url)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(jobs), [
            {"id": f"{endpoint['id']}-{i}", "endpoint_id": endpoint["id"],
             "user_id": endpoint["userId"],
             "status": "COMPLETED", "payload": {}, "created_at": now - span_s + span_s * i / n,
             "expires_at": now + 86_400, "execution_ms": 1500 + i % 7 * 500}
            for i in range(n)])
    engine.dispose()


async def test_the_replay_is_bounded_on_a_large_history(tmp_path: Path) -> None:
    srv = make_server(tmp_path / "data")
    limits = srv.settings.limits
    try:
        async with client_for(srv, srv.user_key) as alice:
            ep = await create_endpoint(alice, computeType="CPU", workersMax=3, workersMin=1)
        # 20,000 jobs in the last two hours: ten times the job cap, twice the span cap.
        _history(str(srv.services.engine.url), ep, 20_000, 7200)
        endpoint = srv.services.endpoints.get(ep["id"])
        assert endpoint is not None
        budget = Budget(20_000)
        body = await asyncio.to_thread(endpoint_whatif, srv.services.engine, endpoint,
                                       srv.settings, time.time(), 86_400, 10.0, budget)
        assert body["jobs"] == limits.whatif_max_jobs  # the newest 2,000
        assert body["replayedS"] == limits.whatif_max_span_s == 3600
        assert body["current"]["jobs"] == limits.whatif_max_jobs
        assert budget.steps <= 20_000 and body["steps"] == budget.steps
        assert 0 <= body["candidatesTried"] < body["candidates"] == 88
        # The default budget is the setting's.
        assert limits.whatif_max_steps == 150_000
    finally:
        srv.services.broker.close()
        srv.services.engine.dispose()


@pytest.fixture(scope="module")
def long_replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = serve(tmp_path_factory.mktemp("whatif"), RUNPLANE_LIMITS=json.dumps(LONG))
    try:
        yield srv
    finally:
        srv.stop()


def _long_endpoint(srv: LiveServer, c: httpx.Client, name: str) -> str:
    ep_id = _endpoint(c, name)
    ep = c.get(f"/v1/endpoints/{ep_id}").json()
    _history(f"sqlite:///{srv.data_dir / 'runplane.db'}", ep, 3000, 20_000)
    c.patch(f"/v1/endpoints/{ep_id}", json={"workersMax": 3, "workersMin": 1})
    return ep_id


def _slot_free(c: httpx.Client, empty: str, deadline_s: float = 30.0) -> bool:
    """Wait until this key's what-if slot is free (a what-if of an empty endpoint answers 200
    rather than 429): the previous replay's thread has returned."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = c.get(f"/v1/endpoints/{empty}/whatif?target={time.monotonic() % 100 + 1:.3f}")
        if r.status_code == 200:
            return True
        assert r.status_code == 429 and "already running" in r.json()["error"], r.text
        time.sleep(0.2)
    return False


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def test_a_client_that_leaves_stops_the_replay(long_replays: LiveServer) -> None:
    srv = long_replays
    with srv.client(srv.user_key) as alice:
        ep = _long_endpoint(srv, alice, "wi-leave")
        empty = _endpoint(alice, "wi-empty")
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes
            alice.get(f"/v1/endpoints/{ep}/whatif", timeout=2.0)
        assert _slot_free(alice, empty)
        # The replay's thread returned: the server is idle again (a full replay is minutes
        # of CPU; an idle server spends a few hundredths of a second).
        before = _cpu(srv.proc.pid)
        time.sleep(4.0)
        spent = _cpu(srv.proc.pid) - before
        assert spent < 0.5, f"the server spent {spent:.2f} s of CPU after the client left"


def test_the_rate_limit_answers_429_in_runpods_shape(long_replays: LiveServer) -> None:
    srv = long_replays
    with srv.client(srv.other_key) as bob:
        empty = _endpoint(bob, "wi-rate")
        # Each query differs, so no answer comes from the cache (off here anyway).
        answers = [bob.get(f"/v1/endpoints/{empty}/whatif?target={t}").status_code
                   for t in range(1, 7)]
        assert answers == [200] * 6
        r = bob.get(f"/v1/endpoints/{empty}/whatif?target=7")
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["status"] == 429  # RunPod's {"error", "message", "status"}
        assert "what-if replays for this key" in r.json()["error"]


def test_sigterm_is_not_held_up_by_a_replay(long_replays: LiveServer) -> None:
    srv = long_replays
    answers: list[int] = []
    with srv.client(srv.admin_key) as admin:
        ep = _long_endpoint(srv, admin, "wi-term")

        def ask() -> None:
            try:
                answers.append(admin.get(f"/v1/endpoints/{ep}/whatif", timeout=120).status_code)
            except httpx.HTTPError:
                answers.append(0)

        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(2.0)  # the replay is under way
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(timeout=20)
        finally:
            asker.join(timeout=130)
    assert code in (0, -signal.SIGTERM), code  # uvicorn re-raises the signal it handled
    assert answers in ([503], [0]), answers  # told the replay stopped, or cut off
