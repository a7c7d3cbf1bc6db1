"""Job API benchmark: runplane against Celery + Redis on the same machine, one table.

    .venv/bin/python benchmarks/jobs.py [--jobs 10000] [--roundtrips 1000] [--no-celery]

1. runsync round trip, sequential /runsync calls over loopback with aiohttp; p50 and p99:
   a. with a no-op async handler in one real runpod SDK worker (concurrency 3, so it always
      has a job-take long-poll open). The SDK's job loop looks at its local queue every
      100 ms when idle (rp_scale.py run_jobs: asyncio.sleep(0.1)), so this row measures
      mostly the SDK, not the server;
   b. with a lean worker that long-polls job-take and posts job-done at once: the server's
      own round trip (run -> durable insert -> hand-off -> job-done -> durable result).
2. Throughput: 10,000 /run calls (64 in flight) drained at the same time through the worker
   routes by a lean asyncio worker (job-take-batch of 200 + one job-done per job, as the SDK
   posts them); jobs per second from the first /run until every job is COMPLETED. The SDK
   itself pauses 1 s whenever it is saturated, so it cannot measure the server's limit.
   The load comes from a minimal keep-alive HTTP/1.1 client (one request at a time per
   connection, no pipelining): aiohttp's client costs as much CPU per job as the server, and
   on a small machine the two compete for the same cores. The same drain with aiohttp is
   reported on its own row.
3. The same two figures for Celery with a Redis broker and result backend (redis-server
   started here, no persistence options changed), and the ratios.

runplane runs as a real `runplane serve` process over SQLite (WAL, synchronous=NORMAL:
every acknowledged job is committed, durable against a kill of the server process). The
lean round trip and the drain run again with ``durability = "power_loss"`` (synchronous=FULL:
an fsync per group commit, durable against power loss too) unless --no-power-loss.
Needs: redis-server on PATH and `pip install celery redis` in the venv (else --no-celery).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runplane.services.users import UserService  # noqa: E402
from runplane.store.db import make_engine, upgrade  # noqa: E402

HANDLER = textwrap.dedent(
    """
    import runpod

    async def handler(job):
        return job["input"].get("i")

    runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda c: 3})
    """
)


UNREACHED_LIMITS = orjson.dumps({
    "job_api": {op: {"requests": 10**9, "concurrent": 10**6} for op in (
        "run", "runsync", "status", "stream", "cancel", "health", "workers")},
    "worker_registrations_per_minute": 10**6, "creates_per_minute": 10**6,
    "max_queued_jobs_per_endpoint": 10**7}).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# -- runplane ------------------------------------------------------------------------------


def _server_cpu_s(rp: Runplane) -> float:
    import psutil

    times = psutil.Process(rp.proc.pid).cpu_times()
    return times.user + times.system


class Runplane:
    def __init__(self, tmp: Path, durability: str = "crash") -> None:
        self.tmp = tmp
        self.cpu_per_job_us = 0.0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = tmp / f"runplane-{durability}"
        data.mkdir()
        engine = make_engine(f"sqlite:///{data / 'runplane.db'}")
        upgrade(engine)
        users = UserService(engine)
        users.bootstrap_admin()
        self.key = users.create_key(users.create_user("bench")).secret
        engine.dispose()
        # The rate limiter runs (its cost is in every figure) with quotas no benchmark reaches
        # (RunPod's /run limit, 1,000 per 10 s per key, would refuse the 10,000-job drain).
        env = {"RUNPLANE_LIMITS": UNREACHED_LIMITS, **os.environ,
               "RUNPLANE_CONTROLLER": '{"enabled": false}', "PYTHONUNBUFFERED": "1",
               "RUNPLANE_DURABILITY": durability}
        self.log = open(tmp / "server.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runplane", "serve", "--port", str(self.port), "--data-dir", str(data)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((tmp / "server.log").read_text()[-2000:])
            time.sleep(0.1)
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def endpoint(self) -> str:
        with httpx.Client(base_url=self.url, headers=self.headers) as c:
            t = c.post("/v1/templates", json={"name": f"bench-{time.monotonic_ns()}",
                                               "imageName": "runplane/local:.", "isServerless": True})
            t.raise_for_status()
            r = c.post("/v1/endpoints", json={"templateId": t.json()["id"], "name": "bench"})
            r.raise_for_status()
            return r.json()["id"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


async def runplane_roundtrip(rp: Runplane, n: int) -> list[float]:
    ep = rp.endpoint()
    handler = rp.tmp / "noop_handler.py"
    handler.write_text(HANDLER)
    worker = subprocess.Popen(
        [sys.executable, "-m", "runplane", "worker", "run", "--endpoint", ep, "--url", rp.url,
         "--api-key", rp.key, "--", sys.executable, str(handler)],
        stdout=open(rp.tmp / "worker.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RUNPOD_LOG_LEVEL": "ERROR"},
    )
    try:
        times: list[float] = []
        async with aiohttp.ClientSession(headers=rp.headers) as s:
            url = f"{rp.url}/v2/{ep}/runsync"
            for i in range(n + 100):  # the first 100 warm up
                t0 = time.perf_counter()
                async with s.post(url, json={"input": {"i": i}}) as r:
                    body = await r.json()
                dt = time.perf_counter() - t0
                assert body["status"] == "COMPLETED" and body["output"] == i, body
                if i >= 100:
                    times.append(dt * 1000)
        return times
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


async def runplane_roundtrip_lean(rp: Runplane, n: int) -> list[float]:
    ep = rp.endpoint()
    wid, token = await _register_worker(rp, ep)
    take_url = f"{rp.url}/v2/{ep}/job-take/{wid}?gpu=&job_in_progress=0"
    done_tpl = f"{rp.url}/v2/{ep}/job-done/{wid}/{{}}?gpu=&isStream=false"
    wh = {"Authorization": token, "Content-Type": "application/json"}
    stop = asyncio.Event()

    async def worker(ws: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with ws.get(take_url, headers=wh) as r:
                if r.status != 200:
                    continue
                job = await r.json()
            async with ws.post(done_tpl.format(job["id"]), headers=wh,
                               data=b'{"output": %d}' % job["input"]["i"]) as r:
                await r.read()

    times: list[float] = []
    async with aiohttp.ClientSession() as ws, aiohttp.ClientSession(headers=rp.headers) as s:
        task = asyncio.create_task(worker(ws))
        url = f"{rp.url}/v2/{ep}/runsync"
        for i in range(n + 100):
            t0 = time.perf_counter()
            async with s.post(url, json={"input": {"i": i}}) as r:
                body = await r.json()
            dt = time.perf_counter() - t0
            assert body["status"] == "COMPLETED" and body["output"] == i, body
            if i >= 100:
                times.append(dt * 1000)
        stop.set()
        task.cancel()
    return times


async def _register_worker(rp: Runplane, ep: str) -> tuple[str, str]:
    """A manual worker (``POST /v2/{ep}/workers``): its id and credential."""
    async with aiohttp.ClientSession(headers=rp.headers) as s, \
            s.post(f"{rp.url}/v2/{ep}/workers", json={}) as r:
        reg = await r.json()
    return reg["id"], reg["token"]


async def _check_drained(rp: Runplane, ep: str, n: int) -> None:
    async with aiohttp.ClientSession(headers=rp.headers) as s, \
            s.get(f"{rp.url}/v2/{ep}/health") as r:
        health = await r.json()
    assert health["jobs"]["completed"] == n and health["jobs"]["inQueue"] == 0, health


async def _finish_all(job_ids: list[str], finish: Any, tasks: set[asyncio.Task]) -> None:
    """Post each job's result in the background; wait while more than 400 are pending (a
    worker's local queue)."""
    for job_id in job_ids:
        t = asyncio.create_task(finish(job_id))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    while len(tasks) > 400:
        await asyncio.sleep(0.001)


class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining): a load
    generator that costs the benchmark machine a fraction of aiohttp's CPU."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, port: int) -> _Http:
        _, proto = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        length = 0
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            length = int(head[i + 17:j if j >= 0 else None])
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        self.waiter.set_result((int(head[9:12]), body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _http_request(method: str, path: str, port: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in headers.items())]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def runplane_throughput(rp: Runplane, n: int) -> float:
    """The drain with the lean load generator (:class:`_Http`): the same requests as
    :func:`runplane_throughput_aiohttp`, 64 /run in flight, 2 job-take-batch (200) long-polls,
    up to 64 job-done in flight, each on its own keep-alive connection."""
    ep = rp.endpoint()
    wid, token = await _register_worker(rp, ep)
    port = rp.port
    take = _http_request("GET", f"/v2/{ep}/job-take-batch/{wid}?gpu=&batch_size=200&job_in_progress=0",
                         port, {"Authorization": token, "Content-Type": "application/json"})
    done_path = f"/v2/{ep}/job-done/{wid}/{{}}?gpu=&isStream=false"
    done_headers = {"Authorization": token, "Content-Type": "application/x-www-form-urlencoded"}
    run_headers = {"Authorization": f"Bearer {rp.key}", "Content-Type": "application/json"}
    completed = 0
    all_done = asyncio.Event()
    pool: asyncio.Queue[_Http] = asyncio.Queue()
    conns = [await _Http.open(port) for _ in range(64)]
    for c in conns:
        pool.put_nowait(c)

    async def finish(job_id: str) -> None:
        nonlocal completed
        c = await pool.get()
        status, _ = await c.request(
            _http_request("POST", done_path.format(job_id), port, done_headers, b'{"output": null}'))
        pool.put_nowait(c)
        assert status == 200, status
        completed += 1
        if completed == n:
            all_done.set()

    async def taker() -> None:
        c = await _Http.open(port)
        tasks: set[asyncio.Task] = set()
        try:
            while not all_done.is_set():
                status, body = await c.request(take)
                if status != 200:
                    continue
                await _finish_all([j["id"] for j in orjson.loads(body)], finish, tasks)
            await asyncio.gather(*tasks)
        finally:
            c.close()

    async def submitter(k: int) -> None:
        c = await _Http.open(port)
        try:
            for i in range(k, n, 64):
                body = b'{"input": {"i": %d}}' % i
                status, _ = await c.request(_http_request("POST", f"/v2/{ep}/run", port, run_headers, body))
                assert status == 200, status
        finally:
            c.close()

    cpu0 = _server_cpu_s(rp)
    t0 = time.perf_counter()
    takers = [asyncio.create_task(taker()) for _ in range(2)]
    await asyncio.gather(*(submitter(k) for k in range(64)))
    await all_done.wait()
    elapsed = time.perf_counter() - t0
    # The server's own CPU per job (/run + job-take + job-done): what a shared, loaded
    # machine changes least, unlike jobs per second.
    rp.cpu_per_job_us = (_server_cpu_s(rp) - cpu0) / n * 1e6
    for t in takers:
        t.cancel()
    for c in conns:
        c.close()
    await _check_drained(rp, ep, n)
    return n / elapsed


async def runplane_throughput_aiohttp(rp: Runplane, n: int) -> float:
    ep = rp.endpoint()
    wid, token = await _register_worker(rp, ep)
    take_url = f"{rp.url}/v2/{ep}/job-take-batch/{wid}?gpu=&batch_size=200&job_in_progress=0"
    done_tpl = f"{rp.url}/v2/{ep}/job-done/{wid}/{{}}?gpu=&isStream=false"
    wheaders = {"Authorization": token, "Content-Type": "application/json"}
    done_headers = {"Authorization": token, "Content-Type": "application/x-www-form-urlencoded"}
    completed = 0
    all_done = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as ws, aiohttp.ClientSession(headers=rp.headers) as cs:
        done_sem = asyncio.Semaphore(64)

        async def finish(job_id: str) -> None:
            nonlocal completed
            async with done_sem:
                async with ws.post(done_tpl.format(job_id), data=b'{"output": null}', headers=done_headers) as r:
                    assert r.status == 200
                    await r.read()
            completed += 1
            if completed == n:
                all_done.set()

        async def taker() -> None:
            tasks: set[asyncio.Task] = set()
            while not all_done.is_set():
                async with ws.get(take_url, headers=wheaders) as r:
                    if r.status != 200:
                        continue
                    jobs = await r.json()
                await _finish_all([j["id"] for j in jobs], finish, tasks)
            await asyncio.gather(*tasks)

        async def submitter() -> None:
            sem = asyncio.Semaphore(64)
            url = f"{rp.url}/v2/{ep}/run"

            async def one(i: int) -> None:
                async with sem:
                    async with cs.post(url, json={"input": {"i": i}}) as r:
                        assert r.status == 200
                        await r.read()

            await asyncio.gather(*(one(i) for i in range(n)))

        t0 = time.perf_counter()
        takers = [asyncio.create_task(taker()) for _ in range(2)]
        await submitter()
        await all_done.wait()
        elapsed = time.perf_counter() - t0
        for t in takers:
            t.cancel()
    await _check_drained(rp, ep, n)
    return n / elapsed


# -- Celery ----------------------------------------------------------------------------------

CELERY_TASKS = textwrap.dedent(
    """
    import os
    from celery import Celery

    url = os.environ["BENCH_REDIS_URL"]
    app = Celery("bench_tasks", broker=url, backend=url)
    app.conf.worker_prefetch_multiplier = 64
    app.conf.result_expires = 1800

    @app.task
    def noop(i):
        return i
    """
)


class CeleryRig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(tmp)],
            stdout=open(tmp / "redis.log", "wb"), stderr=subprocess.STDOUT,
        )
        url = f"redis://127.0.0.1:{self.port}/0"
        (tmp / "bench_tasks.py").write_text(CELERY_TASKS)
        os.environ["BENCH_REDIS_URL"] = url
        sys.path.insert(0, str(tmp))
        env = {**os.environ, "PYTHONPATH": str(tmp)}
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench_tasks", "worker", "--loglevel=WARNING",
             "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            stdout=open(tmp / "celery.log", "wb"), stderr=subprocess.STDOUT, env=env, cwd=tmp,
            start_new_session=True,
        )
        import bench_tasks  # type: ignore[import-not-found]

        self.tasks = bench_tasks
        self.tasks.noop.delay(0).get(timeout=60)  # wait for the worker

    def roundtrip(self, n: int) -> list[float]:
        times = []
        for i in range(n + 100):
            t0 = time.perf_counter()
            assert self.tasks.noop.delay(i).get(timeout=30) == i
            if i >= 100:
                times.append((time.perf_counter() - t0) * 1000)
        return times

    def throughput(self, n: int) -> float:
        t0 = time.perf_counter()
        results = [self.tasks.noop.delay(i) for i in range(n)]
        for i, r in enumerate(results):
            assert r.get(timeout=300) == i
        return n / (time.perf_counter() - t0)

    def stop(self) -> None:
        try:
            os.killpg(self.worker.pid, signal.SIGTERM)
            self.worker.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.redis.terminate()
        self.redis.wait()


# -- main --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--roundtrips", type=int, default=1_000)
    ap.add_argument("--no-celery", action="store_true")
    ap.add_argument("--no-power-loss", action="store_true",
                    help="skip the rows of durability = power_loss (an fsync per group commit)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="runplane-bench-"))
    rows: list[tuple[str, str, str, str]] = []
    rp = Runplane(tmp)
    try:
        rt_sdk = asyncio.run(runplane_roundtrip(rp, args.roundtrips))
        rt = asyncio.run(runplane_roundtrip_lean(rp, args.roundtrips))
        tput = asyncio.run(runplane_throughput(rp, args.jobs))
        tput_aiohttp = asyncio.run(runplane_throughput_aiohttp(rp, args.jobs))
    finally:
        rp.stop()
    # The same lean round trip and drain with durability = "power_loss" (synchronous=FULL:
    # the WAL fsynced at every group commit), against the default in the same run.
    rt_full: list[float] | None = None
    tput_full: float | None = None
    if not args.no_power_loss:
        rp_full = Runplane(tmp, "power_loss")
        try:
            rt_full = asyncio.run(runplane_roundtrip_lean(rp_full, args.roundtrips))
            tput_full = asyncio.run(runplane_throughput(rp_full, args.jobs))
        finally:
            rp_full.stop()
    c_rt: list[float] | None = None
    c_tput: float | None = None
    if not args.no_celery and shutil.which("redis-server"):
        rig = CeleryRig(tmp / "celery-rig" if (tmp / "celery-rig").mkdir() is None else tmp)
        try:
            c_rt = rig.roundtrip(args.roundtrips)
            c_tput = rig.throughput(args.jobs)
        finally:
            rig.stop()

    def ratio(a: float | None, b: float | None, inverse: bool = False) -> str:
        if a is None or b is None:
            return "-"
        return f"{(b / a if inverse else a / b):.1f}x"

    rows.append(("runsync round trip, SDK worker, p50 / p99 (ms)",
                 f"{pct(rt_sdk, 50):.1f} / {pct(rt_sdk, 99):.1f}", "-", "-"))
    p50, p99 = pct(rt, 50), pct(rt, 99)
    rows.append(("runsync round trip p50 (ms)", f"{p50:.2f}",
                 f"{pct(c_rt, 50):.2f}" if c_rt else "-", ratio(p50, pct(c_rt, 50) if c_rt else None, True)))
    rows.append(("runsync round trip p99 (ms)", f"{p99:.2f}",
                 f"{pct(c_rt, 99):.2f}" if c_rt else "-", ratio(p99, pct(c_rt, 99) if c_rt else None, True)))
    rows.append((f"throughput, {args.jobs:,} no-op jobs (jobs/s)", f"{tput:,.0f}",
                 f"{c_tput:,.0f}" if c_tput else "-", ratio(tput, c_tput)))
    rows.append(("server CPU per job in that drain (us: /run + job-take + job-done)",
                 f"{rp.cpu_per_job_us:,.0f}", "-", "-"))
    rows.append((f"throughput, {args.jobs:,} no-op jobs, aiohttp load generator (jobs/s)",
                 f"{tput_aiohttp:,.0f}", "-", "-"))
    if rt_full is not None and tput_full is not None:
        # The ratio column: the default (crash-safe) level against power-loss-safe.
        rows.append(("durability power_loss: runsync round trip p50 / p99 (ms)",
                     f"{pct(rt_full, 50):.2f} / {pct(rt_full, 99):.2f}", "-",
                     f"crash level {ratio(p50, pct(rt_full, 50), True)} faster (p50)"))
        rows.append((f"durability power_loss: throughput, {args.jobs:,} no-op jobs (jobs/s)",
                     f"{tput_full:,.0f}", "-", f"crash level {ratio(tput, tput_full)}"))
    print(f"# jobs benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"# round trips: {args.roundtrips:,} sequential (after 100 warm-up); lean-worker mean "
          f"{statistics.mean(rt):.2f} ms, SDK-worker mean {statistics.mean(rt_sdk):.1f} ms")
    print()
    print("| measure | runplane | Celery + Redis | runplane advantage |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
