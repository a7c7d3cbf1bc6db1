"""Load-balancing proxy: what going through runplane costs a request, against the bare worker.

The example FastAPI worker (``examples/lb_worker``) runs twice in the same run: once by hand
on a free port (the bare worker), once as the one worker of a LOAD_BALANCER endpoint of a
real ``runplane serve`` (workersMin 1, so no cold start is measured). Alternately, ``--rounds``
times each:

1. added latency: ``wrk -t1 -c1 --latency`` on ``GET /hello`` (one request at a time),
   bare vs ``/lb/{id}/hello`` with the key; added = p50 through runplane - p50 bare;
2. throughput: ``wrk -t2 -c32`` on the same routes; requests/s through one server / bare;
   and the CPU each process spends per request in those runs (from /proc: the runplane
   server per proxied request, the worker per request; the load generator from its
   rusage), which bound the ratio two ways: with a core per process (the slowest process's
   CPU per request), and with all of them on the same saturated cores (the sum of their CPU
   per request), which is what a 2-core machine busy with other work comes to;
3. a streamed response's time to first byte: ``GET /stream`` (an SSE stream whose first event
   is written at once), a raw-socket client timing from the request to the first event's bytes,
   ``--ttfb`` requests each way.

The load comes from wrk (Debian's ``apt-get install wrk``) when it is installed, else from a
lean built-in generator (``pyload``: raw keep-alive sockets on asyncio, one process per wrk
thread), which costs more CPU than wrk on a small machine: compare ratios only within one run,
and the table says which generator made them. Prints one table (medians over the rounds) with
the load average before and after.

To compare two versions of the server in the same conditions, run it once per source tree
(``PYTHONPATH=/tmp/old/src``, e.g. ``git archive <commit> src | tar -x -C /tmp/old``: the
server subprocess inherits it), alternately.

    .venv/bin/python benchmarks/lb_proxy.py [--rounds 3] [--seconds 5] [--ttfb 50] [--pyload]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import free_port, make_live_server

WORKER_DIR = ROOT / "examples" / "lb_worker"
USE_WRK = True  # (main: False with --pyload or without wrk)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def load(url: str, key: str | None, threads: int, connections: int, seconds: int) -> dict:
    """``GET url`` on ``connections`` keep-alive connections for ``seconds``: requests/s and
    the latency percentiles (ms), from wrk, else from ``pyload``."""
    if USE_WRK:
        return wrk(url, key, threads, connections, seconds)
    outs = [Path(tempfile.mkstemp(prefix="lb-pyload-", suffix=".json")[1])
            for _ in range(min(threads, connections))]
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--pyload-worker", json.dumps(
            [url, key, connections // threads + (i < connections % threads), seconds,
             str(out)])]) for i, out in enumerate(outs)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"the load generator failed on {url}")
    results = [json.loads(out.read_text()) for out in outs]
    for out in outs:
        out.unlink()
    if any(r["failed"] for r in results):
        raise RuntimeError(f"{sum(r['failed'] for r in results)} failed responses on {url}")
    lat = sorted(x for r in results for x in r["latencies"])
    return {"rps": sum(r["count"] for r in results) / seconds,
            **{p: lat[min(len(lat) - 1, len(lat) * p // 100)] for p in (50, 75, 90, 99)}}


def pyload_worker(url: str, key: str | None, connections: int, seconds: float,
                  out_path: str) -> None:
    """One generator process: its count, failures and latencies (ms) as JSON in
    ``out_path`` (a file, not stdout: the event loop may leave stdout non-blocking)."""
    import asyncio
    from urllib.parse import urlsplit

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    parts = urlsplit(url)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    request = (f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
               f"Host: {parts.netloc}\r\n{auth}\r\n").encode()
    out = {"count": 0, "failed": 0, "latencies": []}

    async def one(end: float) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        clock = time.perf_counter
        while clock() < end:
            t0 = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            out["latencies"].append((clock() - t0) * 1000)
            out["count"] += 1
            if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.1 3")):
                out["failed"] += 1
        writer.close()

    async def run() -> None:
        end = time.perf_counter() + seconds
        await asyncio.gather(*(one(end) for _ in range(connections)))

    asyncio.run(run())
    Path(out_path).write_text(json.dumps(out))


def wrk(url: str, key: str | None, threads: int, connections: int, seconds: int) -> dict:
    """``wrk`` on ``url``: requests/s and the latency percentiles (ms) it reports."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {}
    for p, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE):
        pct[int(p)] = float(value) * _UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed responses on {url}:\n{out}")
    return {"rps": rps, **pct}


def ttfb(host: str, port: int, path: str, key: str | None, n: int) -> list[float]:
    """Milliseconds from sending ``GET path`` to the first bytes of its first SSE event."""
    out = []
    for _ in range(n):
        with socket.create_connection((host, port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            auth = f"Authorization: Bearer {key}\r\n" if key else ""
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode()
            t0 = time.perf_counter()
            s.sendall(request)
            seen = b""
            while b"data:" not in seen:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"stream ended early: {seen[:300]!r}")
                seen += chunk
            out.append((time.perf_counter() - t0) * 1000)
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished children (the load generator)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker_pid(server_pid: int) -> int:
    """The endpoint's worker process (the example app) under the server."""
    import psutil

    for p in psutil.Process(server_pid).children(recursive=True):
        if p.name() != "sh" and "app.py" in p.cmdline():  # not its supervisor
            return p.pid
    raise RuntimeError("no worker process found")


def bare_worker(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORT": str(port), "LOAD_SECONDS": "0", "HOST": "127.0.0.1",
           "RUNPOD_POD_ID": "bare"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=WORKER_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the bare worker did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--ttfb", type=int, default=50)
    parser.add_argument("--pyload", action="store_true",
                        help="the built-in load generator even where wrk is installed")
    parser.add_argument("--pyload-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pyload_worker:
        pyload_worker(*json.loads(args.pyload_worker))
        return
    global USE_WRK
    USE_WRK = not args.pyload and shutil.which("wrk") is not None
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="runplane-lb-bench-"))
    limits = {"job_api": {"lb": {"requests": 10_000_000, "window_s": 10, "concurrent": 0}},
              "rest_v2_per_minute": 100_000}
    srv = make_live_server(tmp, RUNPLANE_LIMITS=json.dumps(limits),
                           RUNPLANE_SECURITY=json.dumps({"local_image_users": ["*"],
                                                         "worker_user": ""}),
                           RUNPLANE_LOG_LEVEL="warning")
    srv.start()
    port = free_port()
    bare = bare_worker(port)
    try:
        c = srv.client()
        r = c.post("/v2/serverless", json={
            "name": "bench", "type": "LOAD_BALANCER", "image": f"local:{WORKER_DIR}",
            "args": f"{sys.executable} app.py", "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
            "env": {"LOAD_SECONDS": "0", "HOST": "127.0.0.1"},
            "workers": {"min": 1, "max": 1}, "scaling": {"type": "REQUEST_COUNT",
                                                       "requestCount": 1000}})
        r.raise_for_status()
        ep = r.json()["id"]
        deadline = time.monotonic() + 60
        while c.get(f"/lb/{ep}/hello", timeout=90).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the endpoint's worker did not start")
        bare_url = f"http://127.0.0.1:{port}"
        lb_url = f"{srv.url}/lb/{ep}"
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in (
            "p50", "p99", "rps", "cpu_worker", "cpu_server", "cpu_load", "ttfb")}
        wpid = worker_pid(srv.proc.pid)
        for _ in range(args.rounds):
            b1 = load(f"{bare_url}/hello", None, 1, 1, args.seconds)
            l1 = load(f"{lb_url}/hello", srv.user_key, 1, 1, args.seconds)
            rows["p50"].append((b1[50], l1[50]))
            rows["p99"].append((b1[99], l1[99]))
            b0, g0 = cpu_s(bare.pid), children_cpu_s()
            bn = load(f"{bare_url}/hello", None, 2, 32, args.seconds)
            nb = bn["rps"] * args.seconds
            bare_cpu = (cpu_s(bare.pid) - b0) / nb * 1e6
            bare_gen = (children_cpu_s() - g0) / nb * 1e6
            s0, w0, g0 = cpu_s(srv.proc.pid), cpu_s(wpid), children_cpu_s()
            ln = load(f"{lb_url}/hello", srv.user_key, 2, 32, args.seconds)
            n = ln["rps"] * args.seconds
            rows["rps"].append((bn["rps"], ln["rps"]))
            rows["cpu_worker"].append((bare_cpu, (cpu_s(wpid) - w0) / n * 1e6))
            rows["cpu_server"].append((0.0, (cpu_s(srv.proc.pid) - s0) / n * 1e6))
            rows["cpu_load"].append((bare_gen, (children_cpu_s() - g0) / n * 1e6))
            tb = ttfb("127.0.0.1", port, "/stream?n=2&delay=0.05", None, args.ttfb)
            tl = ttfb("127.0.0.1", srv.port, f"/lb/{ep}/stream?n=2&delay=0.05", srv.user_key,
                      args.ttfb)
            rows["ttfb"].append((statistics.median(tb), statistics.median(tl)))
        med = {k: (statistics.median(b for b, _ in v), statistics.median(x for _, x in v))
               for k, v in rows.items()}
        cpu = os.cpu_count()
        gen = "wrk" if USE_WRK else "pyload"
        after = os.getloadavg()
        print(f"\nLoad-balancing proxy vs the bare worker ({args.rounds} rounds of "
              f"{args.seconds} s, {cpu} CPUs shared by {gen}, runplane and the workers; "
              f"load average {load_before[0]:.1f} before, {after[0]:.1f} after; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
        print("| measure | bare worker | through runplane | added / ratio | goal |")
        print("|---|---:|---:|---:|---|")
        p50b, p50l = med["p50"]
        print(f"| latency p50, one request at a time (ms) | {p50b:.2f} | {p50l:.2f} | "
              f"+{p50l - p50b:.2f} ms | added <= 1 ms |")
        p99b, p99l = med["p99"]
        print(f"| latency p99, one request at a time (ms) | {p99b:.2f} | {p99l:.2f} | "
              f"+{p99l - p99b:.2f} ms | |")
        rb, rl = med["rps"]
        print(f"| requests/s, 32 connections | {rb:,.0f} | {rl:,.0f} | {rl / rb:.2f} | "
              f">= 0.50 |")
        cwb, cwl = med["cpu_worker"]
        _, cs = med["cpu_server"]
        print(f"| CPU per request, the worker (µs) | {cwb:.0f} | {cwl:.0f} | | |")
        print(f"| CPU per request, the runplane server (µs) | | {cs:.0f} | | |")
        gb, gl = med["cpu_load"]
        print(f"| CPU per request, the load generator ({gen}, µs) | {gb:.0f} | {gl:.0f} | | |")
        print(f"| requests/s with a core per process (1 / CPU per request) | {1e6 / cwb:,.0f} | "
              f"{1e6 / max(cs, cwl):,.0f} | {cwb / max(cs, cwl):.2f} | >= 0.50 |")
        # All of them on the same saturated cores: requests/s is then the CPU there is over
        # the CPU a request takes in all the processes it crosses.
        print(f"| requests/s per core shared by all (1 / the sum of CPU per request) | "
              f"{1e6 / (cwb + gb):,.0f} | {1e6 / (cs + cwl + gl):,.0f} | "
              f"{(cwb + gb) / (cs + cwl + gl):.2f} | >= 0.50 |")
        tb, tl = med["ttfb"]
        print(f"| streamed response, time to first event (ms, median of {args.ttfb}) | "
              f"{tb:.2f} | {tl:.2f} | +{tl - tb:.2f} ms | |")
        print("\nper round (bare / through runplane): " + "; ".join(
            f"{k} " + ", ".join(f"{b:.2f}/{x:.2f}" for b, x in v) for k, v in rows.items()))
    finally:
        bare.terminate()
        bare.wait(10)
        srv.stop()


if __name__ == "__main__":
    main()
