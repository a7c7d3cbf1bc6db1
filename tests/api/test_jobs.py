"""The job API and worker routes in-process (httpx ASGI transport), with a lean worker that
speaks the wire protocol exactly as the runpod SDK does (raw credential, form content-type,
``&``-appended query). Time-based rules run on a ManualClock through ``broker.sweep()``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from runplane.clock import ManualClock
from tests.conftest import Server, client_for, create_endpoint, make_server


@dataclass
class Env:
    srv: Server
    clock: ManualClock
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    ep: str

    @property
    def broker(self):  # type: ignore[no-untyped-def]
        return self.srv.services.broker

    async def worker(self, ep: str | None = None) -> Worker:
        r = await self.alice.post(f"/v2/{ep or self.ep}/workers", json={})
        assert r.status_code == 201, r.text
        body = r.json()
        return Worker(self.srv, ep or self.ep, body["id"], body["token"], body["env"])

    async def run(self, body: dict | None = None, **kw: object) -> str:
        r = await self.alice.post(f"/v2/{self.ep}/run", json=body or {"input": {"x": 1}}, **kw)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "IN_QUEUE"
        return r.json()["id"]

    async def status(self, job_id: str) -> dict:
        r = await self.alice.get(f"/v2/{self.ep}/status/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


class Worker:
    """What the SDK sends, byte for byte where it matters."""

    def __init__(self, srv: Server, ep: str, worker_id: str, token: str, env: dict) -> None:
        self.ep = ep
        self.id = worker_id
        self.token = token
        self.env = env
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=srv.app), base_url="http://runplane.test",
            headers={"Authorization": token, "Content-Type": "application/json"},
        )

    def _url(self, var: str, job_id: str = "") -> str:
        url = self.env[var].replace("http://127.0.0.1:8000", "")
        return url.replace("$RUNPOD_POD_ID", self.id).replace("$ID", job_id or self.id)

    async def take(self, batch: int = 1) -> httpx.Response:
        url = self._url("RUNPOD_WEBHOOK_GET_JOB")
        if batch > 1:
            url = url.replace("/job-take/", "/job-take-batch/") + f"&batch_size={batch}"
        return await self.http.get(url + "&job_in_progress=0")

    async def take_job(self) -> dict:
        r = await self.take()
        assert r.status_code == 200, r.text
        return r.json()

    async def post(self, var: str, job_id: str, body: bytes | str, is_stream: bool = False) -> httpx.Response:
        url = self._url(var, job_id) + f"&isStream={'true' if is_stream else 'false'}"
        data = body.encode() if isinstance(body, str) else body
        return await self.http.post(
            url, content=data,
            headers={"charset": "utf-8", "Content-Type": "application/x-www-form-urlencoded"},
        )

    async def done(self, job_id: str, body: dict | str, is_stream: bool = False) -> httpx.Response:
        raw = body if isinstance(body, str) else orjson.dumps(body).decode()
        r = await self.post("RUNPOD_WEBHOOK_POST_OUTPUT", job_id, raw, is_stream)
        assert r.status_code == 200, r.text
        return r

    async def chunk(self, job_id: str, output: object) -> None:
        r = await self.post("RUNPOD_WEBHOOK_POST_STREAM", job_id, orjson.dumps({"output": output}).decode())
        assert r.status_code == 200, r.text

    async def ping(self, *job_ids: str, **params: str) -> None:
        q = {"runpod_version": "1.12.0", **params}
        if job_ids:
            q["job_id"] = ",".join(job_ids)
        r = await self.http.get(self._url("RUNPOD_WEBHOOK_PING"), params=q)
        assert r.status_code == 200, r.text

    async def stop(self) -> httpx.Response:
        return await self.http.get(self._url("RUNPOD_WEBHOOK_GET_JOB").replace("/job-take/", "/job-stop/"))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(time.time())
    srv = make_server(
        tmp_path / "data", clock, job_take_hold_s=0.3, webhook_retry_delay_s=0.05,
        worker_heartbeat_timeout_s=30.0, job_lost_grace_s=15.0, job_max_retries=2,
        max_run_body_bytes=50_000, max_runsync_body_bytes=100_000,
    )
    async with client_for(srv, srv.user_key) as alice, client_for(srv, srv.other_key) as bob:
        ep = await create_endpoint(alice)
        yield Env(srv, clock, alice, bob, ep["id"])
    srv.services.broker.close()
    srv.services.engine.dispose()


async def test_run_take_done_round_trip(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run({"input": {"x": 1}, "webhook": None, "s3Config": {"bucketName": "b"}, "extra": 7})
    assert job_id.endswith("-u1")
    job = await w.take_job()
    assert job["id"] == job_id and job["input"] == {"x": 1}
    assert job["s3Config"] == {"bucketName": "b"} and job["extra"] == 7
    env.clock.advance(0.25)
    st = await env.status(job_id)
    assert st["status"] == "IN_PROGRESS" and st["workerId"] == w.id
    await w.done(job_id, {"output": {"y": 2}})
    st = await env.status(job_id)
    assert st["status"] == "COMPLETED" and st["output"] == {"y": 2}
    assert st["workerId"] == w.id and st["executionTime"] == 250 and "delayTime" in st
    assert st["retries"] == 0
    health = (await env.alice.get(f"/v2/{env.ep}/health")).json()
    assert health["jobs"] == {"completed": 1, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
    assert health["workers"]["idle"] == 1


async def test_empty_take_is_204_after_hold_and_worker_states(env: Env) -> None:
    w = await env.worker()
    assert env.broker.workers.get(w.id).status == "INITIALIZING"
    r = await w.take()
    assert r.status_code == 204
    assert env.broker.workers.get(w.id).status == "IDLE"
    job_id = await env.run()
    await w.take_job()
    assert env.broker.workers.get(w.id).status == "RUNNING"
    assert env.broker.workers.snapshot(env.ep)[0].jobs == (job_id,)
    await w.done(job_id, {"output": 1})
    assert env.broker.workers.get(w.id).status == "IDLE"


async def test_long_poll_receives_a_job_submitted_later(env: Env) -> None:
    env.srv.services.handoff.hold_s = 5.0
    w = await env.worker()
    take = asyncio.create_task(w.take())
    await asyncio.sleep(0.05)
    assert env.broker.workers.snapshot(env.ep)[0].polling
    job_id = await env.run()
    r = await take
    assert r.status_code == 200 and r.json()["id"] == job_id


async def test_batch_take_returns_a_list(env: Env) -> None:
    w = await env.worker()
    ids = [await env.run() for _ in range(3)]
    r = await w.take(batch=5)
    assert r.status_code == 200
    assert [j["id"] for j in r.json()] == ids


async def test_bad_input_is_400_and_changes_nothing(env: Env) -> None:
    cases = [
        (b"{not json", "malformed JSON"),
        (b"[]", "JSON object"),
        (b'{"nope": 1}', "input"),
        (b'{"input": "text"}', "input"),
        (b'{"input": {}, "policy": {"ttl": 5}}', "policy.ttl"),
        (b'{"input": {}, "policy": {"executionTimeout": "1"}}', "policy.executionTimeout"),
        (b'{"input": {}, "policy": {"lowPriority": "yes"}}', "policy.lowPriority"),
        (b'{"input": {}, "policy": {"ttI": 50000}}', "policy.ttI"),
        (b'{"input": {}, "webhook": "ftp://x"}', "webhook"),
        (b'{"input": {}, "s3Config": 3}', "s3Config"),
    ]
    for raw, word in cases:
        for op in ("run", "runsync"):
            r = await env.alice.post(f"/v2/{env.ep}/{op}", content=raw)
            assert r.status_code == 400, (raw, r.text)
            assert word in r.json()["error"], (raw, r.json())
    r = await env.alice.post(f"/v2/{env.ep}/runsync?wait=50", json={"input": {}})
    assert r.status_code == 400 and "wait" in r.json()["error"]
    health = (await env.alice.get(f"/v2/{env.ep}/health")).json()
    assert health["jobs"]["inQueue"] == 0


async def test_payload_limit_is_413_json(env: Env) -> None:
    big = {"input": {"blob": "x" * 60_000}}
    r = await env.alice.post(f"/v2/{env.ep}/run", json=big)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    # /runsync has its own, larger limit.
    r = await env.alice.post(f"/v2/{env.ep}/runsync?wait=1000", json=big)
    assert r.status_code == 200 and r.json()["status"] == "IN_QUEUE"


async def test_ownership_and_unknown_ids_are_404(env: Env) -> None:
    job_id = await env.run()
    for path in (f"/v2/{env.ep}/status/{job_id}", f"/v2/{env.ep}/health", f"/v2/{env.ep}/stream/{job_id}"):
        r = await env.bob.get(path)
        assert r.status_code == 404, path
        assert r.json()["status"] == 404
    r = await env.bob.post(f"/v2/{env.ep}/run", json={"input": {}})
    assert r.status_code == 404
    r = await env.bob.post(f"/v2/{env.ep}/cancel/{job_id}")
    assert r.status_code == 404
    assert (await env.status(job_id))["status"] == "IN_QUEUE"
    assert (await env.alice.get("/v2/nope/health")).status_code == 404
    assert (await env.alice.get(f"/v2/{env.ep}/status/nope-u1")).status_code == 404
    other = await create_endpoint(env.bob)
    assert (await env.alice.get(f"/v2/{other['id']}/status/{job_id}")).status_code == 404
    r = await env.alice.get(f"/v2/{env.ep}/status/{job_id}", headers={"Authorization": env.srv.user_key})
    assert r.status_code == 200  # raw key works like Bearer
    assert (await env.alice.get(f"/v2/{env.ep}/status/{job_id}", headers={"Authorization": "Bearer rpl_x"})).status_code == 401


async def test_worker_credential_is_scoped(env: Env) -> None:
    w = await env.worker()
    # A user key cannot take jobs.
    r = await env.alice.get(f"/v2/{env.ep}/job-take/{w.id}?gpu=")
    assert r.status_code == 401
    # A worker credential cannot use the client routes nor /v1.
    r = await w.http.post(f"/v2/{env.ep}/run", json={"input": {}})
    assert r.status_code == 401
    r = await w.http.get("/v1/endpoints")
    assert r.status_code == 401
    # Nor another endpoint's worker routes, nor another worker's identity.
    other = await create_endpoint(env.alice)
    r = await w.http.get(f"/v2/{other['id']}/job-take/{w.id}?gpu=&job_in_progress=0")
    assert r.status_code == 403
    w2 = await env.worker()
    r = await w.http.get(f"/v2/{env.ep}/job-take/{w2.id}?gpu=&job_in_progress=0")
    assert r.status_code == 403


async def test_job_done_body_forms_and_idempotence(env: Env) -> None:
    w = await env.worker()
    a, b, c, d = [await env.run() for _ in range(4)]
    r = await w.take(batch=4)
    assert len(r.json()) == 4
    # NaN from Python's json encoder (form content-type): no client could read it back, so
    # the result is refused and the job fails saying why (tests/security has the table).
    r = await w.post("RUNPOD_WEBHOOK_POST_OUTPUT", a, '{"output": {"v": NaN, "w": Infinity}}')
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    st = await env.status(a)
    assert st["status"] == "FAILED" and "not JSON" in st["error"]
    # Handler exception: a JSON string in error.
    await w.done(b, {"error": '{"error_type": "<class \'ValueError\'>", "error_message": "boom"}'})
    st = await env.status(b)
    assert st["status"] == "FAILED" and "boom" in st["error"]
    # Non-string error is stringified; output kept.
    await w.done(c, {"output": {"partial": 1}, "error": {"code": 3}})
    st = await env.status(c)
    assert st["status"] == "FAILED" and st["error"] == '{"code":3}' and st["output"] == {"partial": 1}
    # Progress, then final, then a late progress and a duplicate final are ignored.
    await w.done(d, {"status": "IN_PROGRESS", "output": "50%"})
    st = await env.status(d)
    assert st["status"] == "IN_PROGRESS" and st["output"] == "50%"
    await w.done(d, {})
    st = await env.status(d)
    assert st["status"] == "COMPLETED" and st["output"] is None
    r = await w.done(d, {"output": "again"})
    assert r.json()["status"] == "ignored"
    await w.done(d, {"status": "IN_PROGRESS", "output": "late"})
    assert (await env.status(d))["output"] is None
    # Unknown job: acknowledged.
    assert (await w.done("nope-u1", {"output": 1})).json()["status"] == "ignored"
    # Empty body is a 400 (not stored), not a crash.
    r = await w.post("RUNPOD_WEBHOOK_POST_OUTPUT", a, "")
    assert r.status_code == 400


async def test_cancel_queued_and_running(env: Env) -> None:
    w = await env.worker()
    running = await env.run()
    await w.take_job()
    queued = await env.run()
    r = await env.alice.post(f"/v2/{env.ep}/cancel/{queued}")
    assert r.json() == {"id": queued, "status": "CANCELLED"}
    r = await env.alice.post(f"/v2/{env.ep}/cancel/{running}")
    assert r.json() == {"id": running, "status": "CANCELLED"}
    r = await w.stop()
    assert r.status_code == 200 and r.json() == {"jobsToStop": [running]}
    # The cancelled queued job is never handed out.
    assert (await w.take()).status_code == 204
    # A late result is acknowledged and ignored.
    assert (await w.done(running, {"output": 1})).json()["status"] == "ignored"
    assert (await env.status(running))["status"] == "CANCELLED"
    assert (await w.stop()).status_code == 204


async def test_execution_timeout(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run({"input": {}, "policy": {"executionTimeout": 5000}})
    await w.take_job()
    env.clock.advance(4.9)
    env.broker.sweep()
    assert (await env.status(job_id))["status"] == "IN_PROGRESS"
    env.clock.advance(0.2)
    env.broker.sweep()
    await asyncio.sleep(0.05)
    st = await env.status(job_id)
    assert st["status"] == "TIMED_OUT" and "5000 ms" in st["error"]
    assert (await w.stop()).json() == {"jobsToStop": [job_id]}
    assert (await w.done(job_id, {"output": 1})).json()["status"] == "ignored"


async def test_endpoint_execution_timeout_applies(env: Env) -> None:
    ep = await create_endpoint(env.alice, executionTimeoutMs=7000)
    w = await env.worker(ep["id"])
    r = await env.alice.post(f"/v2/{ep['id']}/run", json={"input": {}})
    job_id = r.json()["id"]
    await w.take_job()
    env.clock.advance(6.5)
    env.broker.sweep()
    assert env.broker.find(job_id).status == "IN_PROGRESS"
    env.clock.advance(1.0)
    env.broker.sweep()
    assert env.broker.find(job_id).status == "TIMED_OUT"


async def test_ttl_deletes_queued_and_running_jobs(env: Env) -> None:
    w = await env.worker()
    running = await env.run({"input": {}, "policy": {"ttl": 10_000}})
    await w.take_job()
    queued = await env.run({"input": {}, "policy": {"ttl": 10_000}})
    env.clock.advance(10.5)
    env.broker.sweep()
    for job_id in (running, queued):
        r = await env.alice.get(f"/v2/{env.ep}/status/{job_id}")
        assert r.status_code == 404
    assert (await w.stop()).json() == {"jobsToStop": [running]}
    assert (await w.take()).status_code == 204
    health = (await env.alice.get(f"/v2/{env.ep}/health")).json()
    assert health["jobs"]["inQueue"] == 0 and health["jobs"]["inProgress"] == 0


async def test_result_retention(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()
    await w.done(job_id, {"output": 1})
    env.clock.advance(env.srv.settings.broker.run_result_retention_s - 5)
    env.broker.sweep()
    assert (await env.status(job_id))["status"] == "COMPLETED"
    env.clock.advance(10)
    env.broker.sweep()
    env.broker.writer.flush()
    assert (await env.alice.get(f"/v2/{env.ep}/status/{job_id}")).status_code == 404
    # /runsync results are kept a minute.
    r = await env.alice.post(f"/v2/{env.ep}/runsync?wait=1000", json={"input": {}})
    sync_id = r.json()["id"]
    assert sync_id.startswith("sync-")
    await w.take_job()
    await w.done(sync_id, {"output": 2})
    env.clock.advance(61)
    env.broker.sweep()
    env.broker.writer.flush()
    assert (await env.alice.get(f"/v2/{env.ep}/status/{sync_id}")).status_code == 404


async def test_heartbeat_loss_requeues_then_fails(env: Env) -> None:
    w1 = await env.worker()
    job_id = await env.run()
    await w1.take_job()
    await w1.ping(job_id)
    for attempt in (1, 2):
        env.clock.advance(31)
        env.broker.sweep()
        st = await env.status(job_id)
        assert st["status"] == "IN_QUEUE" and st["retries"] == attempt
        w = await env.worker()
        assert (await w.take_job())["id"] == job_id
        await w.ping(job_id)
    assert env.broker.workers.get(w1.id).status == "UNHEALTHY"
    env.clock.advance(31)
    env.broker.sweep()
    await asyncio.sleep(0.05)
    st = await env.status(job_id)
    assert st["status"] == "FAILED" and "out of retries (2)" in st["error"] and "heartbeat" in st["error"]
    assert (await env.alice.get(f"/v2/{env.ep}/health")).json()["jobs"]["retried"] == 2


async def test_job_missing_from_pings_is_requeued_after_grace(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()
    await w.ping()  # does not list the job
    env.clock.advance(10)
    await w.ping()
    env.broker.sweep()
    assert (await env.status(job_id))["status"] == "IN_PROGRESS"
    env.clock.advance(6)
    await w.ping()
    env.broker.sweep()
    st = await env.status(job_id)
    assert st["status"] == "IN_QUEUE" and st["retries"] == 1
    # A ping that lists the job keeps it.
    await w.take_job()
    await w.ping()
    env.clock.advance(10)
    await w.ping(job_id)
    env.clock.advance(10)
    env.broker.sweep()
    assert (await env.status(job_id))["status"] == "IN_PROGRESS"


async def test_unhealthy_report_and_stop_pod(env: Env) -> None:
    events: list[tuple[str, str]] = []
    env.broker.workers.add_listener(lambda wid, ep, event, reason: events.append((wid, event)))
    w = await env.worker()
    await w.ping(status="unhealthy", check="network", reason="no route")
    assert env.broker.workers.get(w.id).status == "UNHEALTHY"
    assert (w.id, "unhealthy") in events
    # stopPod from a managed (controller-started) worker: desired EXITED, no more jobs.
    wid, token = env.broker.workers.register(env.ep, manual=False)
    managed = Worker(env.srv, env.ep, wid, token, env.broker.workers.worker_env(env.ep, wid, token))
    job_id = await env.run()
    await managed.take_job()
    await managed.done(job_id, {"output": 1, "stopPod": True})
    assert (wid, "stop_requested") in events
    assert env.broker.workers.get(wid).desired_status == "EXITED"
    await env.run()
    assert (await managed.take()).status_code == 204


async def test_parked_worker_gets_no_jobs_and_no_heartbeat_timeout(env: Env) -> None:
    w = await env.worker()
    await w.ping()
    env.broker.workers.set_parked(w.id, True)
    await env.run()
    assert (await w.take()).status_code == 204
    env.clock.advance(100)
    env.broker.sweep()
    assert env.broker.workers.get(w.id).status == "PARKED"
    env.broker.workers.set_parked(w.id, False)
    assert (await w.take()).status_code == 200


async def test_retire_requeues_and_revokes(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()
    r = await env.alice.delete(f"/v2/{env.ep}/workers/{w.id}")
    assert r.status_code == 200
    st = await env.status(job_id)
    assert st["status"] == "IN_QUEUE" and st["retries"] == 1
    assert (await w.take()).status_code == 401


async def test_stream_chunks_are_handed_out_once(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()
    await w.chunk(job_id, "a")
    await w.chunk(job_id, {"b": 1})
    r = (await env.alice.get(f"/v2/{env.ep}/stream/{job_id}")).json()
    assert r == {"id": job_id, "status": "IN_PROGRESS", "stream": [{"output": "a"}, {"output": {"b": 1}}]}
    # Nothing new: an empty stream once ?wait= ran out (test_client_routes: the hold).
    r = (await env.alice.get(f"/v2/{env.ep}/stream/{job_id}?wait=1000")).json()
    assert r["stream"] == []
    await w.chunk(job_id, "c")
    await w.done(job_id, {"output": ["a", {"b": 1}, "c"]}, is_stream=True)
    r = (await env.alice.get(f"/v2/{env.ep}/stream/{job_id}")).json()
    assert r == {"id": job_id, "status": "COMPLETED", "stream": [{"output": "c"}],
                 "output": ["a", {"b": 1}, "c"]}
    assert (await env.alice.get(f"/v2/{env.ep}/stream/{job_id}")).json()["stream"] == []
    assert (await env.status(job_id))["output"] == ["a", {"b": 1}, "c"]


async def test_stream_as_server_sent_events(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()
    await w.chunk(job_id, 1)

    async def produce() -> None:
        await asyncio.sleep(0.05)
        await w.chunk(job_id, 2)
        await asyncio.sleep(0.05)
        await w.done(job_id, {"output": []}, is_stream=True)

    task = asyncio.create_task(produce())
    events = []
    async with env.alice.stream("GET", f"/v2/{env.ep}/stream/{job_id}",
                                headers={"Accept": "text/event-stream"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, orjson.loads(line[6:])))
    await task
    assert events[:2] == [("chunk", {"output": 1}), ("chunk", {"output": 2})]
    assert events[2][0] == "status" and events[2][1]["status"] == "COMPLETED"
    assert len(events) == 3


async def test_runsync_waits_for_the_result(env: Env) -> None:
    w = await env.worker()

    async def work() -> None:
        job = await w.take_job()
        await w.done(job["id"], {"output": job["input"]["x"] * 2})

    task = asyncio.create_task(work())
    r = await env.alice.post(f"/v2/{env.ep}/runsync", json={"input": {"x": 21}})
    await task
    body = r.json()
    assert body["status"] == "COMPLETED" and body["output"] == 42 and body["id"].startswith("sync-")
    # Not done within ?wait: the id and status only.
    r = await env.alice.post(f"/v2/{env.ep}/runsync?wait=1000", json={"input": {"x": 1}})
    assert r.json() == {"id": r.json()["id"], "status": "IN_QUEUE"}


async def test_retry_and_purge(env: Env) -> None:
    w = await env.worker()
    failed = await env.run()
    await w.take_job()
    await w.done(failed, {"error": "bad"})
    ok = await env.run()
    await w.take_job()
    await w.done(ok, {"output": 1})
    r = await env.alice.post(f"/v2/{env.ep}/retry/{ok}")
    assert r.status_code == 400
    r = await env.alice.post(f"/v2/{env.ep}/retry/{failed}")
    assert r.json() == {"id": failed, "status": "IN_QUEUE"}
    st = await env.status(failed)
    assert "error" not in st and st["status"] == "IN_QUEUE"
    assert (await w.take_job())["id"] == failed
    await w.done(failed, {"output": "fine"})
    assert (await env.status(failed))["output"] == "fine"
    queued = [await env.run() for _ in range(3)]
    r = await env.alice.post(f"/v2/{env.ep}/purge-queue")
    assert r.json() == {"removed": 3, "status": "completed"}
    assert (await env.status(queued[0]))["status"] == "CANCELLED"
    assert (await w.take()).status_code == 204


async def test_low_priority_jobs_go_last_and_do_not_count_as_normal(env: Env) -> None:
    low = await env.run({"input": {}, "policy": {"lowPriority": True}})
    normal = await env.run()
    m = env.broker.queue_metrics(env.ep)
    assert (m.in_queue, m.in_queue_normal) == (2, 1)
    assert m.oldest_queued_at is not None
    w = await env.worker()
    assert (await w.take_job())["id"] == normal
    assert (await w.take_job())["id"] == low


async def test_enqueue_listener_and_webhook(env: Env) -> None:
    from aiohttp import web

    seen: list[str] = []
    env.broker.add_enqueue_listener(seen.append)
    received: list[dict] = []
    calls = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=500)
        received.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        w = await env.worker()
        job_id = await env.run({"input": {}, "webhook": f"http://127.0.0.1:{port}/hook"})
        assert seen == [env.ep]
        await w.take_job()
        await w.done(job_id, {"output": "hi"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.02)
        assert calls == 2
        assert received[0]["id"] == job_id and received[0]["output"] == "hi"
        assert received[0]["status"] == "COMPLETED"
    finally:
        await runner.cleanup()


async def test_state_survives_a_restart(env: Env, tmp_path: Path) -> None:
    w = await env.worker()
    running = await env.run()
    await w.take_job()
    queued = [await env.run() for _ in range(3)]
    env.broker.writer.flush()
    # A second server over the same store (the first one is simply abandoned).
    srv2 = make_server(tmp_path / "data", job_take_hold_s=0.3)
    try:
        b2 = srv2.services.broker
        assert [b2.jobs[j].status for j in queued] == ["IN_QUEUE"] * 3
        assert b2.jobs[running].status == "IN_PROGRESS" and b2.jobs[running].worker_id == w.id
        w2 = Worker(srv2, env.ep, w.id, w.token, w.env)
        assert (await w2.take_job())["id"] == queued[0]
        await w2.done(running, {"output": "after restart"})
        assert b2.jobs[running].status == "COMPLETED"
        assert b2.queue_metrics(env.ep).in_queue == 2
    finally:
        srv2.services.broker.close()
        srv2.services.engine.dispose()
