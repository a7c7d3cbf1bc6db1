"""The job routes RunPod's own clients use beyond PROTOCOL.md (issue 16): /status-sync,
/stream?wait=, /metrics, /health's ``ready``, and the OpenAI passthrough, in-process with the
wire-exact lean worker of test_jobs."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.api import test_jobs
from tests.api.test_jobs import Env
from tests.conftest import client_for

env = test_jobs.env  # the in-process server, alice, bob and an endpoint


async def _held(coro, at_least: float):  # type: ignore[no-untyped-def]
    """Await ``coro`` and check it was held (not answered at once)."""
    t0 = time.monotonic()
    out = await coro
    assert time.monotonic() - t0 >= at_least
    return out


async def test_status_sync_is_held_until_the_job_ends(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    job = await w.take_job()

    async def finish() -> None:
        await asyncio.sleep(0.3)
        await w.done(job["id"], {"output": {"ok": 1}})

    task = asyncio.create_task(finish())
    r = await _held(env.alice.get(f"/v2/{env.ep}/status-sync/{job_id}?wait=5000"), 0.25)
    await task
    body = r.json()
    assert r.status_code == 200 and body["status"] == "COMPLETED" and body["output"] == {"ok": 1}
    assert body["id"] == job_id and body["workerId"] == w.id and "executionTime" in body
    # A final job answers at once; a running one after ?wait= with its status.
    r = await env.alice.get(f"/v2/{env.ep}/status-sync/{job_id}?wait=1000")
    assert r.json()["status"] == "COMPLETED"
    other = await env.run()
    r = await _held(env.alice.get(f"/v2/{env.ep}/status-sync/{other}?wait=1000"), 0.9)
    assert r.json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize("query", ["?wait=999", "?wait=300001", "?wait=soon"])
async def test_status_sync_and_stream_refuse_a_bad_wait(env: Env, query: str) -> None:
    job_id = await env.run()
    for op in ("status-sync", "stream"):
        r = await env.alice.get(f"/v2/{env.ep}/{op}/{job_id}{query}")
        assert r.status_code == 400 and r.json()["field"] == "wait", r.text


async def test_status_sync_ownership_and_deletion(env: Env) -> None:
    job_id = await env.run()
    assert (await env.bob.get(f"/v2/{env.ep}/status-sync/{job_id}")).status_code == 404
    assert (await env.alice.get(f"/v2/{env.ep}/status-sync/nope")).status_code == 404

    async def expire() -> None:
        await asyncio.sleep(0.2)
        env.clock.advance(25 * 3600)
        env.broker.sweep()

    task = asyncio.create_task(expire())
    r = await env.alice.get(f"/v2/{env.ep}/status-sync/{job_id}?wait=5000")
    await task
    assert r.status_code == 404


async def test_stream_holds_an_empty_stream_until_a_chunk(env: Env) -> None:
    w = await env.worker()
    job_id = await env.run()
    await w.take_job()

    async def produce() -> None:
        await asyncio.sleep(0.3)
        await w.chunk(job_id, "a")

    task = asyncio.create_task(produce())
    r = await _held(env.alice.get(f"/v2/{env.ep}/stream/{job_id}?wait=5000"), 0.25)
    await task
    assert r.json() == {"id": job_id, "status": "IN_PROGRESS", "stream": [{"output": "a"}]}
    # Nothing new: held for the whole wait, then an empty stream.
    r = await _held(env.alice.get(f"/v2/{env.ep}/stream/{job_id}?wait=1000"), 0.9)
    assert r.json()["stream"] == []

    async def end() -> None:
        await asyncio.sleep(0.2)
        await w.done(job_id, {"output": ["a"]}, is_stream=True)

    task = asyncio.create_task(end())
    r = await _held(env.alice.get(f"/v2/{env.ep}/stream/{job_id}?wait=5000"), 0.15)
    await task
    assert r.json() == {"id": job_id, "status": "COMPLETED", "stream": [], "output": ["a"]}
    # A final job is answered at once.
    t0 = time.monotonic()
    assert (await env.alice.get(f"/v2/{env.ep}/stream/{job_id}")).json()["status"] == "COMPLETED"
    assert time.monotonic() - t0 < 1.0


async def test_metrics_and_health_count_ready_workers(env: Env) -> None:
    r = await env.alice.get(f"/v2/{env.ep}/metrics")
    assert r.status_code == 200
    assert r.json() == {"readyWorkers": [], "workers": {
        "idle": 0, "running": 0, "initializing": 0, "unhealthy": 0, "throttled": 0,
        "parked": 0, "ready": 0, "total": 0}}
    starting = await env.worker()  # registered, never took: INITIALIZING
    busy = await env.worker()
    idle = await env.worker()
    job_id = await env.run()
    assert (await busy.take_job())["id"] == job_id
    assert (await idle.take()).status_code == 204
    body = (await env.alice.get(f"/v2/{env.ep}/metrics")).json()
    assert sorted(body["readyWorkers"]) == sorted([busy.id, idle.id])
    assert body["workers"] | {} == {"idle": 1, "running": 1, "initializing": 1, "unhealthy": 0,
                                    "throttled": 0, "parked": 0, "ready": 2, "total": 3}
    health = (await env.alice.get(f"/v2/{env.ep}/health")).json()
    assert health["workers"]["ready"] == 2 and health["workers"]["initializing"] == 1
    assert starting.id not in body["readyWorkers"]
    assert (await env.bob.get(f"/v2/{env.ep}/metrics")).status_code == 404


# -- the OpenAI passthrough ----------------------------------------------------------------


async def test_openai_passthrough_non_stream(env: Env) -> None:
    w = await env.worker()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    async def work() -> dict:
        job = await w.take_job()
        await w.done(job["id"], {"output": [{"object": "chat.completion", "choices": []}]},
                     is_stream=True)
        return job

    task = asyncio.create_task(work())
    r = await env.alice.post(f"/v2/{env.ep}/openai/v1/chat/completions", json=body)
    job = await task
    assert job["input"] == {"openai_route": "/v1/chat/completions", "openai_input": body}
    assert r.status_code == 200 and r.json() == {"object": "chat.completion", "choices": []}

    # /v1/models is a GET: its input is {}; an error object from the handler is its status.
    async def refuse() -> dict:
        job = await w.take_job()
        await w.done(job["id"], {"output": [{"object": "error", "message": "no", "code": 404}]},
                     is_stream=True)
        return job

    task = asyncio.create_task(refuse())
    r = await env.alice.get(f"/v2/{env.ep}/openai/v1/models")
    job = await task
    assert job["input"] == {"openai_route": "/v1/models", "openai_input": {}}
    assert r.status_code == 404 and r.json()["message"] == "no"

    # A handler that raises: a 500 in OpenAI's error shape.
    async def fail() -> None:
        job = await w.take_job()
        await w.done(job["id"], {"error": "kaboom"})

    task = asyncio.create_task(fail())
    r = await env.alice.post(f"/v2/{env.ep}/openai/v1/completions", json={"prompt": "x"})
    await task
    assert r.status_code == 500 and r.json()["error"]["message"] == "kaboom"

    # A generator handler without return_aggregate_stream: its chunk is the answer.
    async def unaggregated() -> None:
        job = await w.take_job()
        await w.chunk(job["id"], {"object": "text_completion", "choices": [{"text": "x"}]})
        await w.done(job["id"], {"output": []}, is_stream=True)

    task = asyncio.create_task(unaggregated())
    r = await env.alice.post(f"/v2/{env.ep}/openai/v1/completions", json={"prompt": "x"})
    await task
    assert r.status_code == 200 and r.json()["choices"] == [{"text": "x"}]


async def test_openai_passthrough_stream(env: Env) -> None:
    w = await env.worker()
    first = 'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
    second = 'data: {"choices": [{"delta": {"content": "b"}}]}\n\ndata: [DONE]\n\n'

    async def work() -> None:
        job = await w.take_job()
        await w.chunk(job["id"], first)
        await asyncio.sleep(0.1)
        await w.chunk(job["id"], second)
        await w.done(job["id"], {"output": [first, second]}, is_stream=True)

    task = asyncio.create_task(work())
    raw = b""
    async with env.alice.stream("POST", f"/v2/{env.ep}/openai/v1/chat/completions",
                                json={"messages": [], "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        async for part in r.aiter_bytes():
            raw += part
    await task
    assert raw.decode() == first + second  # passed through as streamed, one [DONE]

    # Dict chunks become data events, and a [DONE] is added; a failure mid-stream is an
    # error event.
    async def work2() -> None:
        job = await w.take_job()
        await w.chunk(job["id"], {"choices": [{"text": "x"}]})
        await w.done(job["id"], {"error": "lost the GPU"})

    task = asyncio.create_task(work2())
    r = await env.alice.post(f"/v2/{env.ep}/openai/v1/completions",
                             json={"prompt": "p", "stream": True})
    await task
    events = [e for e in r.text.split("\n\n") if e]
    assert orjson.loads(events[0][6:]) == {"choices": [{"text": "x"}]}
    assert orjson.loads(events[1][6:])["error"]["message"] == "lost the GPU"


async def test_openai_refusals(env: Env) -> None:
    url = f"/v2/{env.ep}/openai/v1/chat/completions"
    assert (await env.bob.post(url, json={})).status_code == 404
    r = await env.alice.post(url, content=b"[1]")
    assert r.status_code == 400 and r.json()["error"]
    assert (await env.alice.post(f"/v2/{env.ep}/openai/v2/x", json={})).status_code == 404
    assert (await env.alice.get(f"/v2/{env.ep}/openai/v1/")).status_code == 404
    assert env.broker.queue_metrics(env.ep).in_queue == 0  # nothing was submitted


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "status-sync/x"), ("GET", "stream/x?wait=1000"), ("GET", "metrics"),
    ("POST", "openai/v1/chat/completions"), ("GET", "openai/v1/models"), ("POST", "batch"),
    ("GET", "batch"), ("GET", "batch/b/requests"), ("PUT", "batch/b"),
    ("DELETE", "batch/b/requests/r"),
])
async def test_the_new_routes_want_a_key(env: Env, method: str, path: str) -> None:
    async with client_for(env.srv, None) as anon:
        r = await anon.request(method, f"/v2/{env.ep}/{path}", json={})
    assert r.status_code == 401 and r.json()["error"], r.text
