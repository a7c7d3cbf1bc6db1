"""Held-request wake-up benchmark: how soon a waiting client hears of a job's end, one table.

    .venv/bin/python benchmarks/job_waits.py [--n 300] [--poll-n 40]

A real ``runplane serve`` process (SQLite, durable results) and a lean worker that speaks the
worker protocol over loopback (job-take, then job-done when told). For each job the client's
request is opened and held by the server *before* the worker posts its result; the wake-up
latency is from the worker sending job-done to the client having read its answer, so it
includes the result's durable commit (the answer waits for it) and both HTTP legs:

1. ``GET /status-sync/{id}?wait=60000`` (RunPod's JS and Go SDKs' wait), woken by the job's
   settling;
2. ``POST /runsync?wait=60000``, the same wait through the older route (the peer: same
   mechanism, measured in the same run);
3. ``GET /stream/{id}?wait=60000`` held on an empty stream, woken by a job-stream chunk (from
   the worker sending the chunk to the client reading it);
4. what a client without a held route gets: polling ``/status`` every second, as the runpod
   Python SDK's ``Job.output()`` does (fewer samples: each costs ~0.5 s);
5. the server's own part, in one process with no HTTP and no other process to switch to:
   from ``JobHandoff.done`` (the job-done route's operation) to a held ``/status-sync``
   request, driven through the ASGI app, having sent its answer.

Load is sequential (one job at a time) with aiohttp on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from jobs import Runplane, _register_worker, pct

from runplane.config import load_settings
from runplane.server import build_services, create_app

HOLD_MS = 60_000
SETTLE_S = 0.02  # after opening a held request, before the worker answers


class Rig:
    """One endpoint, one lean worker and one client session."""

    def __init__(self, rp: Runplane, ep: str, wid: str, token: str,
                 client: aiohttp.ClientSession, worker: aiohttp.ClientSession) -> None:
        self.rp, self.ep, self.client, self.worker = rp, ep, client, worker
        self.take_url = f"{rp.url}/v2/{ep}/job-take/{wid}?gpu=&job_in_progress=0"
        self.done_url = f"{rp.url}/v2/{ep}/job-done/{wid}/{{}}?gpu=&isStream=false"
        self.chunk_url = f"{rp.url}/v2/{ep}/job-stream/{wid}/{{}}?gpu="
        self.wh = {"Authorization": token, "Content-Type": "application/json"}

    async def run(self) -> str:
        async with self.client.post(f"{self.rp.url}/v2/{self.ep}/run",
                                    json={"input": {"x": 1}}) as r:
            return (await r.json())["id"]

    async def take(self) -> dict:
        while True:
            async with self.worker.get(self.take_url, headers=self.wh) as r:
                if r.status == 200:
                    return await r.json()

    async def done(self, job_id: str) -> None:
        async with self.worker.post(self.done_url.format(job_id), headers=self.wh,
                                    data=b'{"output": 1}') as r:
            await r.read()

    async def chunk(self, job_id: str) -> None:
        async with self.worker.post(self.chunk_url.format(job_id), headers=self.wh,
                                    data=b'{"output": "c"}') as r:
            await r.read()


async def _timed(coro_factory, trigger) -> float:  # type: ignore[no-untyped-def]
    """Open the held request, let the server hold it, then trigger and time the answer."""
    answered: list[float] = []

    async def client() -> None:
        await coro_factory()
        answered.append(time.perf_counter())

    task = asyncio.create_task(client())
    await asyncio.sleep(SETTLE_S)
    t0 = time.perf_counter()
    await trigger()
    await task
    return (answered[0] - t0) * 1000


async def measure(rp: Runplane, n: int, poll_n: int) -> dict[str, list[float]]:
    ep = rp.endpoint()
    wid, token = await _register_worker(rp, ep)
    out: dict[str, list[float]] = {"status-sync": [], "runsync": [], "stream": [], "poll": []}
    async with aiohttp.ClientSession(headers=rp.headers) as client, \
            aiohttp.ClientSession() as worker:
        rig = Rig(rp, ep, wid, token, client, worker)
        base = f"{rp.url}/v2/{ep}"
        async def status_sync_sample() -> float:
            job_id = await rig.run()
            await rig.take()

            async def held() -> None:
                async with client.get(f"{base}/status-sync/{job_id}?wait={HOLD_MS}") as r:
                    body = await r.json()
                assert body["status"] == "COMPLETED", body

            return await _timed(held, lambda: rig.done(job_id))

        async def runsync_sample() -> float:
            async def held() -> None:
                async with client.post(f"{base}/runsync?wait={HOLD_MS}",
                                       json={"input": {"x": 1}}) as r:
                    body = await r.json()
                assert body["status"] == "COMPLETED", body

            # The runsync is held once the worker has its job: timed from the job-done.
            task = asyncio.create_task(held())
            job = await rig.take()
            await asyncio.sleep(SETTLE_S)
            t0 = time.perf_counter()
            await rig.done(job["id"])
            await task
            return (time.perf_counter() - t0) * 1000

        async def stream_sample() -> float:
            job_id = await rig.run()
            await rig.take()

            async def held() -> None:
                async with client.get(f"{base}/stream/{job_id}?wait={HOLD_MS}") as r:
                    body = await r.json()
                assert body["stream"] == [{"output": "c"}], body

            dt = await _timed(held, lambda: rig.chunk(job_id))
            await rig.done(job_id)
            return dt

        # Interleaved, the order turned each time, so that no kind gets the quieter moments.
        samplers = [("status-sync", status_sync_sample), ("runsync", runsync_sample),
                    ("stream", stream_sample)]
        for i in range(n + 20):  # the first 20 warm up
            for key, sample in (samplers if i % 2 else samplers[::-1]):
                dt = await sample()
                if i >= 20:
                    out[key].append(dt)

        for _ in range(poll_n):
            job_id = await rig.run()
            await rig.take()

            async def poll(job_id: str = job_id) -> None:
                while True:
                    async with client.get(f"{base}/status/{job_id}") as r:
                        if (await r.json())["status"] == "COMPLETED":
                            return
                    await asyncio.sleep(1.0)

            task = asyncio.create_task(poll())
            await asyncio.sleep(0.05 + (time.perf_counter() % 1.0))  # any phase of the poll
            t0 = time.perf_counter()
            await rig.done(job_id)
            await task
            out["poll"].append((time.perf_counter() - t0) * 1000)
    return out


async def in_process(tmp: Path, n: int) -> list[float]:
    """Row 5: ``JobHandoff.done`` -> the held ``/status-sync`` answered, in one process."""
    settings = load_settings(data_dir=tmp / "in-process", limits={"enabled": False},
                             controller={"enabled": False})
    services = build_services(settings)
    app = create_app(services)
    users = services.users
    users.bootstrap_admin()
    key = users.create_key(users.create_user("bench")).secret
    auth = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]

    async def call(method: str, path: str, body: bytes = b"", query: bytes = b"") -> list:
        sent: list = []
        delivered = False

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never goes away
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append((time.perf_counter(), message))

        scope = {"type": "http", "method": method, "path": path, "query_string": query,
                 "headers": auth, "http_version": "1.1", "scheme": "http",
                 "server": ("bench", 80), "client": ("127.0.0.1", 1), "root_path": ""}
        await app(scope, receive, send)
        return sent

    tpl = await call("POST", "/v1/templates", orjson.dumps(
        {"name": "bench", "imageName": "runplane/local:.", "isServerless": True}))
    tid = orjson.loads(tpl[-1][1]["body"])["id"]
    made = await call("POST", "/v1/endpoints", orjson.dumps({"templateId": tid, "name": "b"}))
    ep = orjson.loads(made[-1][1]["body"])["id"]
    wid, _ = services.workers.register(ep, manual=True)
    worker = services.workers.get(wid)
    broker, handoff = services.broker, services.handoff
    user_id = users.find_user("bench")["id"]
    out: list[float] = []
    try:
        for i in range(n + 20):
            job = await broker.submit(ep, user_id, {"input": {"x": 1}}, sync=False,
                                      ttl_ms=3_600_000, execution_timeout_ms=None,
                                      low_priority=False, webhook=None)
            handoff.confirm(worker, await handoff.take(worker, 1, 1.0))
            held = asyncio.create_task(call("GET", f"/v2/{ep}/status-sync/{job.id}",
                                            query=f"wait={HOLD_MS}".encode()))
            await asyncio.sleep(0.002)
            t0 = time.perf_counter()
            await handoff.done(worker, job.id, {"output": 1}, False)
            sent = await held
            assert b"COMPLETED" in sent[-1][1]["body"], sent
            if i >= 20:
                out.append((sent[-1][0] - t0) * 1000)
    finally:
        await broker.shutdown()
        broker.close()
        services.engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--poll-n", type=int, default=40)
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="runplane-bench-waits-"))
    rp = Runplane(tmp)
    try:
        got = asyncio.run(measure(rp, args.n, args.poll_n))
    finally:
        rp.stop()
    got["in-process"] = asyncio.run(in_process(tmp, args.n))
    ref = pct(got["runsync"], 50)
    print(f"# held-request wake-up — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} "
          f"cores, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, load average {load_start:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; {args.n} jobs each (after 20 warm-up), "
          f"{args.poll_n} polled")
    print()
    print("| wake-up after the worker's post (ms) | p50 | p90 | p99 | mean | p50 / runsync's |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"status-sync": "`/status-sync?wait=` after job-done",
             "runsync": "`/runsync?wait=` after job-done (peer)",
             "stream": "`/stream?wait=` (empty) after a job-stream chunk",
"poll": "polling `/status` every 1 s (runpod SDK `Job.output`) after job-done",
             "in-process": "in process, no HTTP: `JobHandoff.done` -> held `/status-sync` "
                           "answered"}
    for key, label in names.items():
        v = got[key]
        print(f"| {label} | {pct(v, 50):.2f} | {pct(v, 90):.2f} | {pct(v, 99):.2f} | "
              f"{statistics.mean(v):.2f} | {pct(v, 50) / ref:.2f} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
