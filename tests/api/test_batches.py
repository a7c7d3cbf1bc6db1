"""Batch jobs (RunPod's beta) in-process: states, limits, paging, low priority, cancel, a
restart; with the wire-exact lean worker of test_jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runplane.services import batches as rules
from tests.api import test_jobs
from tests.api.test_jobs import Env
from tests.conftest import client_for, make_server

env = test_jobs.env  # the in-process server, alice, bob and an endpoint


def bodies(n: int, start: int = 0) -> list[dict]:
    return [{"input": {"i": i}} for i in range(start, start + n)]


async def create(env: Env, body: object) -> dict:
    r = await env.alice.post(f"/v2/{env.ep}/batch", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_lifecycle_draft_finalize_results(env: Env) -> None:
    b = await create(env, bodies(2))
    assert b["status"] == "DRAFT" and b["id"].startswith("batch_")
    assert b["endpointId"] == env.ep and b["requestTotal"] == 2 and b["requestCompleted"] == 0
    url = f"/v2/{env.ep}/batch/{b['id']}"
    r = await env.alice.post(f"{url}/requests", json={"requests": bodies(2, 2)})
    assert r.json()["requestTotal"] == 4
    page = (await env.alice.get(f"{url}/requests?limit=3")).json()
    assert [x["status"] for x in page["requests"]] == ["IN_QUEUE"] * 3
    assert page["total"] == 4 and page["hasMore"] is True and page["offset"] == 0
    # A DRAFT runs nothing.
    assert env.broker.queue_metrics(env.ep).in_queue == 0
    removed = page["requests"][1]["id"]
    r = await env.alice.delete(f"{url}/requests/{removed}")
    assert r.status_code == 200 and r.json()["requestTotal"] == 3
    assert (await env.alice.put(url, json={"name": "nightly"})).json()["name"] == "nightly"

    r = await env.alice.post(f"{url}/finalize")
    assert r.status_code == 200 and r.json()["status"] == "FINALIZED"
    assert (await env.alice.post(f"{url}/finalize")).json()["status"] == "FINALIZED"  # resent
    q = env.broker.queue_metrics(env.ep)
    assert q.in_queue == 3 and q.in_queue_normal == 0  # low priority: scales nothing up
    for path, body in ((f"{url}/requests", {"requests": bodies(1)}), (f"{url}/requests/x", None)):
        r = await (env.alice.post(path, json=body) if body else env.alice.delete(path))
        assert r.status_code == 409, r.text

    w = await env.worker()
    seen = []
    for expected in ("COMPLETED", "FAILED", "COMPLETED"):
        job = await w.take_job()
        seen.append(job["input"]["i"])
        if expected == "COMPLETED":
            await w.done(job["id"], {"output": {"twice": job["input"]["i"] * 2}})
        else:
            await w.done(job["id"], {"error": "bad input"})
        if len(seen) == 1:
            b = (await env.alice.get(url)).json()
            assert b["requestCompleted"] == 1 and b["requestInProgress"] == 0
    assert sorted(seen) == [0, 2, 3]
    b = (await env.alice.get(url)).json()
    assert (b["status"], b["requestTotal"], b["requestCompleted"], b["requestFailed"]) == \
        ("FINALIZED", 3, 2, 1)  # no COMPLETED state: done when the counts add up
    reqs = (await env.alice.get(f"{url}/requests")).json()["requests"]
    assert [r["status"] for r in reqs] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert reqs[0]["output"] == {"twice": 0} and reqs[1]["error"] == "bad input"
    assert reqs[0]["startedAt"].endswith("Z") and reqs[0]["completedAt"].endswith("Z")
    # A request's id is its job's.
    assert (await env.status(reqs[2]["id"]))["output"] == {"twice": 6}
    # Results outlive the jobs' retention.
    env.clock.advance(2 * 3600)
    env.broker.sweep()
    await asyncio.sleep(0.05)
    assert (await env.alice.get(f"/v2/{env.ep}/status/{reqs[2]['id']}")).status_code == 404
    reqs = (await env.alice.get(f"{url}/requests?offset=2&limit=5")).json()
    assert reqs["requests"][0]["output"] == {"twice": 6} and reqs["hasMore"] is False


async def test_batch_jobs_never_go_before_interactive_ones(env: Env) -> None:
    b = await create(env, bodies(3))
    await env.alice.post(f"/v2/{env.ep}/batch/{b['id']}/finalize")
    interactive = await env.run({"input": {"now": True}})
    w = await env.worker()
    assert (await w.take_job())["id"] == interactive


async def test_cancel_drops_queued_and_lets_running_finish(env: Env) -> None:
    b = await create(env, bodies(3))
    url = f"/v2/{env.ep}/batch/{b['id']}"
    await env.alice.post(f"{url}/finalize")
    w = await env.worker()
    running = await w.take_job()
    b = (await env.alice.post(f"{url}/cancel")).json()
    # Still draining: the running request goes on.
    assert b["status"] == "FINALIZED" and b["requestCancelled"] == 2
    assert b["requestInProgress"] == 1
    assert env.broker.queue_metrics(env.ep).in_queue == 0
    await w.done(running["id"], {"output": "finished"})
    b = (await env.alice.get(url)).json()
    assert b["status"] == "CANCELLED" and b["requestCompleted"] == 1
    assert (await env.alice.post(f"{url}/cancel")).json()["status"] == "CANCELLED"
    assert (await env.alice.post(f"{url}/finalize")).status_code == 409
    # A DRAFT is cancelled at once.
    d = await create(env, bodies(1))
    d = (await env.alice.post(f"/v2/{env.ep}/batch/{d['id']}/cancel")).json()
    assert d["status"] == "CANCELLED" and d["requestCancelled"] == 1
    # A finalized batch whose requests all ended: CANCELLED at once, its results kept.
    f = await create(env, bodies(1))
    await env.alice.post(f"/v2/{env.ep}/batch/{f['id']}/finalize")
    job = await w.take_job()
    await w.done(job["id"], {"output": "kept"})
    f = (await env.alice.post(f"/v2/{env.ep}/batch/{f['id']}/cancel")).json()
    assert (f["status"], f["requestCompleted"], f["requestCancelled"]) == ("CANCELLED", 1, 0)


async def test_limits_and_bad_input(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await env.alice.post(f"/v2/{env.ep}/batch", json=[{"input": 1}])
    assert r.status_code == 400 and r.json()["field"] == "requests[0].input"
    r = await env.alice.post(f"/v2/{env.ep}/batch", json={"input": {}})
    assert r.status_code == 400
    r = await env.alice.post(f"/v2/{env.ep}/batch", json=[
        {"input": {}}, {"input": {}, "webhook": "http://169.254.169.254/hook"}])
    assert r.status_code == 400 and r.json()["field"] == "requests[1].webhook", r.text
    monkeypatch.setattr(rules, "MAX_REQUESTS_PER_BATCH", 3)
    r = await env.alice.post(f"/v2/{env.ep}/batch", json=bodies(4))
    assert r.status_code == 400 and r.json()["field"] == "requests"
    b = await create(env, bodies(3))
    r = await env.alice.post(f"/v2/{env.ep}/batch/{b['id']}/requests", json=bodies(1))
    assert r.status_code == 400 and "at most 3" in r.json()["message"]
    # 10 active batches per endpoint (DRAFT, or FINALIZED with requests to end).
    for _ in range(rules.MAX_ACTIVE_BATCHES - 1):
        await create(env, [])
    r = await env.alice.post(f"/v2/{env.ep}/batch", json=[])
    assert r.status_code == 409, r.text
    await env.alice.post(f"/v2/{env.ep}/batch/{b['id']}/cancel")
    await create(env, [])  # room again
    assert (await env.alice.get(f"/v2/{env.ep}/batch?limit=0")).status_code == 400
    listed = (await env.alice.get(f"/v2/{env.ep}/batch?limit=4")).json()
    assert listed["total"] == 11 and len(listed["batches"]) == 4 and listed["hasMore"]
    created = [x["createdAt"] for x in listed["batches"]]
    assert created == sorted(created, reverse=True)


async def test_ownership(env: Env) -> None:
    b = await create(env, bodies(1))
    for method, path in (("GET", ""), ("GET", "/requests"), ("POST", "/finalize"),
                         ("POST", "/cancel"), ("PUT", "")):
        r = await env.bob.request(method, f"/v2/{env.ep}/batch/{b['id']}{path}", json={})
        assert r.status_code == 404, (method, path)
    # Another of alice's endpoints does not see it either.
    from tests.conftest import create_endpoint

    other = (await create_endpoint(env.alice))["id"]
    assert (await env.alice.get(f"/v2/{other}/batch/{b['id']}")).status_code == 404
    assert (await env.alice.get(f"/v2/{env.ep}/batch/nope")).status_code == 404
    assert (await env.alice.get(f"/v2/{env.ep}/batch/{b['id']}/bogus")).status_code == 404


async def test_a_restart_keeps_batches_and_matches_their_jobs(env: Env, tmp_path: Path) -> None:
    b = await create(env, bodies(3))
    url = f"/v2/{env.ep}/batch/{b['id']}"
    await env.alice.post(f"{url}/finalize")
    w = await env.worker()
    first = await w.take_job()
    await w.done(first["id"], {"output": "one"})
    env.broker.close()
    srv = make_server(tmp_path / "data", env.clock)
    try:
        async with client_for(srv, srv.user_key) as alice:
            b = (await alice.get(url)).json()
            assert (b["status"], b["requestCompleted"], b["requestTotal"]) == ("FINALIZED", 1, 3)
            assert srv.services.broker.queue_metrics(env.ep).in_queue == 2
            r = await alice.post(f"/v2/{env.ep}/workers", json={})
            w2 = test_jobs.Worker(srv, env.ep, r.json()["id"], r.json()["token"], r.json()["env"])
            for _ in range(2):
                job = await w2.take_job()
                await w2.done(job["id"], {"output": "later"})
            b = (await alice.get(url)).json()
            assert b["requestCompleted"] == 3
    finally:
        srv.services.broker.close()
        srv.services.engine.dispose()
