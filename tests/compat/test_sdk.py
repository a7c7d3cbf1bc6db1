"""The real runpod SDK (1.12.0) as worker and as client against a live runplane server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import runpod

from tests.compat.conftest import Workers, status, wait_for
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


def sdk_endpoint(live: LiveServer, endpoint_id: str) -> runpod.Endpoint:
    runpod.api_key = live.user_key
    runpod.endpoint_url_base = f"{live.url}/v2"
    return runpod.Endpoint(endpoint_id)


def test_sync_handler_and_sync_client(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "sync")
    ep = sdk_endpoint(live, ep_id)
    # run_sync; s3Config and webhook pass through to the handler.
    out = ep.run_sync({"input": {"a": 1}, "s3Config": {"bucketName": "bkt"}}, timeout=60)
    assert out == {"echo": {"a": 1}, "s3": {"bucketName": "bkt"}, "webhook": None}
    # run + status + output.
    job = ep.run({"b": 2})
    assert job.output(timeout=60) == {"echo": {"b": 2}, "s3": None, "webhook": None}
    assert job.status() == "COMPLETED"
    st = status(live, ep_id, job.job_id)
    assert st["workerId"] and st["executionTime"] >= 0 and st["delayTime"] >= 0
    # A handler that raises: FAILED with the SDK's error payload kept.
    job = ep.run({"raise": "kaboom"})
    wait_for(lambda: job.status() == "FAILED", what="FAILED")
    err = json.loads(status(live, ep_id, job.job_id)["error"])
    assert err["error_message"] == "kaboom" and "ValueError" in err["error_type"]
    # A NaN output (the SDK writes a bare NaN token) is refused: the job fails saying why,
    # and the worker goes on to the next job.
    job = ep.run({"nan": True})
    wait_for(lambda: job.status() == "FAILED", what="FAILED")
    assert "not JSON" in status(live, ep_id, job.job_id)["error"]
    # progress_update is visible while the job runs.
    job = ep.run({"progress": 2})
    wait_for(lambda: status(live, ep_id, job.job_id).get("output") == "half way", what="progress")
    assert job.output(timeout=60)["echo"] == {"progress": 2}
    # refresh_worker returned by the handler: result kept, the manual worker stays usable.
    assert ep.run_sync({"refresh": True}, timeout=60) == {"echo": {"refresh": True}}
    assert ep.run_sync({"after": 1}, timeout=60)["echo"] == {"after": 1}
    health = ep.health()
    assert health["jobs"]["completed"] >= 5 and health["jobs"]["failed"] == 2
    assert health["workers"]["idle"] + health["workers"]["running"] == 1


def test_purge_queue_and_cancel_with_sync_client(live: LiveServer, new_endpoint) -> None:
    ep_id = new_endpoint()
    ep = sdk_endpoint(live, ep_id)
    a, b = ep.run({"x": 1}), ep.run({"x": 2})
    assert a.cancel() == {"id": a.job_id, "status": "CANCELLED"}
    assert ep.purge_queue() == {"removed": 1, "status": "completed"}
    assert b.status() == "CANCELLED"


def test_async_handler_with_concurrency(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "concurrent")
    ep = sdk_endpoint(live, ep_id)
    jobs = [ep.run({"sleep": 1.5, "n": i}) for i in range(6)]
    headers = {"Authorization": f"Bearer {live.user_key}"}

    def overlapping() -> bool:
        listed = httpx.get(f"{live.url}/v2/{ep_id}/workers", headers=headers).json()
        return any(len(w["jobs"]) >= 2 for w in listed)

    wait_for(overlapping, what="two jobs running at once on one worker")
    assert [j.output(timeout=60) for j in jobs] == [{"echo": {"sleep": 1.5, "n": i}} for i in range(6)]


def test_generator_handlers_and_stream(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "gen")
    ep = sdk_endpoint(live, ep_id)
    job = ep.run({"n": 3})
    assert list(job.stream()) == ["chunk0", "chunk1", "chunk2"]
    assert status(live, ep_id, job.job_id)["output"] == []

    ep2_id = new_endpoint()
    workers.start(ep2_id, "agen_aggregate")
    ep2 = sdk_endpoint(live, ep2_id)
    assert ep2.run_sync({"n": 4}, timeout=60) == [{"i": i} for i in range(4)]
    # Server-Sent Events: one event per chunk, then the final status.
    job = ep2.run({"n": 3})
    events = []
    with httpx.stream("GET", f"{live.url}/v2/{ep2_id}/stream/{job.job_id}", timeout=60,
                      headers={"Authorization": live.user_key, "Accept": "text/event-stream"}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[:3] == [{"output": {"i": i}} for i in range(3)]
    assert events[3]["status"] == "COMPLETED" and events[3]["output"] == [{"i": i} for i in range(3)]


def test_stream_survives_a_pause_longer_than_the_sdk_read_timeout(
        live: LiveServer, workers: Workers, new_endpoint) -> None:
    # /stream holds an empty stream (10 s by default) and the sync client reads it with a
    # 10 s timeout (retrying a GET that timed out): a quiet handler must not break its stream.
    ep_id = new_endpoint()
    workers.start(ep_id, "pausing_gen")
    job = sdk_endpoint(live, ep_id).run({"pause": 10.5})
    assert list(job.stream()) == ["before", "after"]


def test_cancel_running_async_job_reaches_the_handler(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "async")
    ep = sdk_endpoint(live, ep_id)
    job = ep.run({"sleep": 60})
    wait_for(lambda: job.status() == "IN_PROGRESS", what="IN_PROGRESS")
    assert job.cancel()["status"] == "CANCELLED"
    wait_for(lambda: any(r["id"] == job.job_id and r["tag"] == "cancelled" for r in workers.records()),
             what="CancelledError in the handler")
    assert job.status() == "CANCELLED"
    # The worker is free again.
    assert ep.run_sync({"sleep": 0}, timeout=60) == {"echo": {"sleep": 0}}


def test_execution_timeout_stops_the_job(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "async")
    ep = sdk_endpoint(live, ep_id)
    job = ep.run({"input": {"sleep": 60}, "policy": {"executionTimeout": 5000}})
    wait_for(lambda: status(live, ep_id, job.job_id)["status"] == "TIMED_OUT", timeout=40, what="TIMED_OUT")
    assert "5000 ms" in status(live, ep_id, job.job_id)["error"]
    wait_for(lambda: any(r["id"] == job.job_id and r["tag"] == "cancelled" for r in workers.records()),
             what="CancelledError in the handler")


def test_worker_killed_mid_job_is_retried_on_another(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    first = workers.start(ep_id, "sync")
    ep = sdk_endpoint(live, ep_id)
    job = ep.run({"sleep": 4})
    wait_for(lambda: status(live, ep_id, job.job_id)["status"] == "IN_PROGRESS", what="IN_PROGRESS")
    victim = status(live, ep_id, job.job_id)["workerId"]
    wait_for(lambda: any(r["id"] == job.job_id for r in workers.records()), what="handler started")
    workers.kill(first)
    workers.start(ep_id, "sync")
    assert job.output(timeout=90) == {"echo": {"sleep": 4}, "s3": None, "webhook": None}
    st = status(live, ep_id, job.job_id)
    assert st["retries"] == 1 and st["workerId"] != victim
    runs = [r for r in workers.records() if r["id"] == job.job_id]
    assert len(runs) == 2 and runs[0]["worker"] == victim and runs[1]["worker"] != victim


def test_refresh_worker_config_stops_the_worker(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    proc = workers.start(ep_id, "refresh")
    ep = sdk_endpoint(live, ep_id)
    assert ep.run_sync({"r": 1}, timeout=60)["echo"] == {"r": 1}
    # The SDK leaves its loops after the job and exits 0; `runplane worker run` follows.
    assert proc.wait(timeout=60) == 0


def test_asyncio_client(live: LiveServer, workers: Workers, new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "agen")
    from aiohttp import ClientSession
    from runpod.endpoint.asyncio.asyncio_runner import Endpoint as AsyncioEndpoint

    runpod.api_key = live.user_key
    runpod.endpoint_url_base = f"{live.url}/v2"

    async def main() -> None:
        async with ClientSession() as session:
            ep = AsyncioEndpoint(ep_id, session)
            job = await ep.run({"n": 3})
            chunks = [c async for c in job.stream()]
            assert chunks == [{"i": 0}, {"i": 1}, {"i": 2}]
            assert await job.status() == "COMPLETED"
            assert await job.output() == []
            job2 = await ep.run({"n": 2})
            assert await job2.output(timeout=60) == []
            health = await ep.health()
            assert health["jobs"]["completed"] >= 2
            # Cancel and purge on an endpoint without workers.
            idle = AsyncioEndpoint(ep2, session)
            j3 = await idle.run({"x": 1})
            await idle.run({"x": 2})
            assert (await j3.cancel())["status"] == "CANCELLED"
            assert await idle.purge_queue() == {"removed": 1, "status": "completed"}

    ep2 = new_endpoint()
    asyncio.run(main())
