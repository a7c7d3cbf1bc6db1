"""What an unmodified runpod SDK worker gets from runplane's accelerator (issue 12).

One ``runplane serve``; every case runs twice, alternately, through the same server: with the
accelerator (the default) and with the SDK's own job loop (the template's env
``RUNPLANE_ACCELERATOR=0``). The workers are real SDK 1.12 workers started by the controller
(process runtime, and podman with the test image when it is there); the client is a lean
keep-alive ``http.client`` connection, timing from the request written to the answer read.

- sequential ``/runsync`` of a no-op sync handler, default concurrency: p50, p99, and the
  server's own share of each (its process's CPU time per job) in the same run;
- the same with an async handler and ``concurrency_modifier`` 4: p50;
- a queue of no-op jobs drained by one default worker: jobs/s, from the first job's start to
  the last one's end as the store records them (the SDK's own loop gets fewer jobs: ~1 s each);
- ``executionTime`` of the no-op handler as the server reports it: p50;
- FlashBoot revival (the worker frozen after idleTimeout 1 s): ``/runsync`` sent -> result, p95;
- the sequential ``/runsync`` and the revival for a container worker.

Prints one table.

    .venv/bin/python benchmarks/sdk_loop.py [--runs 200] [--drain 1000] [--revivals 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_start import IMAGE, container_ready, free_port, start_runplane

HANDLERS = '''import asyncio, os, sys
import runpod


def sync_handler(job):
    return {"pid": os.getpid()}


async def async_handler(job):
    return {"pid": os.getpid()}


kind = sys.argv[1] if len(sys.argv) > 1 else "sync"
sys.argv = sys.argv[:1]
if kind == "async4":
    runpod.serverless.start({"handler": async_handler, "concurrency_modifier": lambda c: 4})
else:
    runpod.serverless.start({"handler": sync_handler})
'''
MODES = {"accelerated": "1", "sdk-loop": "0"}


def pct(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Bench:
    def __init__(self, port: int, key: str, data_dir: Path, app: Path, server_pid: int) -> None:
        self.port, self.key, self.data_dir, self.app = port, key, data_dir, app
        self.server = psutil.Process(server_pid)  # its CPU time: the server's share of a job
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=self.headers,
                              timeout=120)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.volume: str | None = None

    def endpoint(self, mode: str, kind: str, *, workers_min: int = 1, flashboot: bool = False,
                 container: bool = False) -> str:
        env = {"RUNPOD_LOG_LEVEL": "WARN", "RUNPLANE_ACCELERATOR": MODES[mode]}
        if container:
            template = {"imageName": IMAGE,
                        "dockerStartCmd": ["python", "-u", "/runpod-volume/handlers.py", kind]}
        else:
            template = {"imageName": f"local:{self.app}",
                        "dockerStartCmd": [sys.executable, "-u", "handlers.py", kind]}
        t = self.c.post("/v1/templates", json={"name": f"{mode}-{kind}-{time.monotonic_ns()}",
                                               "isServerless": True, "env": env, **template})
        t.raise_for_status()
        body = {"name": f"{mode}-{kind}", "templateId": t.json()["id"], "computeType": "CPU",
                "vcpuCount": 1, "workersMin": workers_min, "workersMax": 1,
                "idleTimeout": 1 if flashboot else 60, "scalerType": "REQUEST_COUNT",
                "scalerValue": 1000, "flashboot": flashboot}
        if container:
            body["networkVolumeId"] = self.container_volume()
        e = self.c.post("/v1/endpoints", json=body)
        e.raise_for_status()
        return e.json()["id"]

    def container_volume(self) -> str:
        if self.volume is None:
            v = self.c.post("/v1/networkvolumes",
                            json={"name": "bench", "size": 1, "dataCenterId": "LOCAL-1"})
            v.raise_for_status()
            self.volume = v.json()["id"]
            folder = self.data_dir / "volumes" / "LOCAL-1" / self.volume  # <dc>/<id>
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "handlers.py").write_text(HANDLERS)
        return self.volume

    def runsync(self, endpoint_id: str) -> tuple[float, dict]:
        """One /runsync on the keep-alive connection: (ms, answer)."""
        t0 = time.perf_counter()
        self.conn.request("POST", f"/v2/{endpoint_id}/runsync?wait=90000", b'{"input":{}}',
                          self.headers)
        answer = json.loads(self.conn.getresponse().read())
        ms = (time.perf_counter() - t0) * 1000
        if answer.get("status") != "COMPLETED":
            raise RuntimeError(f"job did not complete: {answer}")
        return ms, answer

    def retire(self, endpoint_id: str) -> None:
        self.c.delete(f"/v1/endpoints/{endpoint_id}")

    def sequential(self, mode: str, kind: str, runs: int, container: bool = False
                   ) -> tuple[list[float], list[float], float]:
        """Round trips (ms), executionTime (ms), and the server's CPU ms per job."""
        ep = self.endpoint(mode, kind, container=container)
        for _ in range(3):  # the cold start and a warm-up
            self.runsync(ep)
        lat, execs = [], []
        cpu0 = sum(self.server.cpu_times()[:2])
        for _ in range(runs):
            ms, answer = self.runsync(ep)
            lat.append(ms)
            execs.append(float(answer.get("executionTime", 0)))
        server_ms = (sum(self.server.cpu_times()[:2]) - cpu0) * 1000 / runs
        self.retire(ep)
        return lat, execs, server_ms

    def drain(self, mode: str, jobs: int) -> float:
        """Jobs/s of one default worker through a queue of ``jobs`` no-op jobs."""
        ep = self.endpoint(mode, "sync", workers_min=0)
        ids = []
        while len(ids) < jobs:
            self.conn.request("POST", f"/v2/{ep}/run", b'{"input":{}}', self.headers)
            r = self.conn.getresponse()
            body = r.read()
            if r.status == 429:  # the per-key /run rate limit (docs/security.md)
                time.sleep(float(r.getheader("Retry-After") or 1))
                continue
            ids.append(json.loads(body)["id"])
        self.c.patch(f"/v1/endpoints/{ep}", json={"workersMin": 1}).raise_for_status()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = self.c.get(f"/v2/{ep}/health").json()["jobs"]["completed"]
            if done >= jobs:
                break
            time.sleep(0.5)
        with sqlite3.connect(f"file:{self.data_dir / 'runplane.db'}?mode=ro", uri=True) as db:
            first, last = db.execute(
                "SELECT MIN(started_at), MAX(finished_at) FROM jobs WHERE endpoint_id = ?",
                (ep,)).fetchone()
        self.retire(ep)
        return (jobs - 1) / (last - first)

    def revivals(self, mode: str, n: int, container: bool = False) -> list[float]:
        # workersMin 0: an idle worker beyond the minimum is parked after idleTimeout.
        ep = self.endpoint(mode, "sync", workers_min=0, flashboot=True, container=container)
        _, first = self.runsync(ep)
        worker = first["workerId"]
        out = []
        for _ in range(n):
            self.wait_parked(ep)
            ms, answer = self.runsync(ep)
            if answer["workerId"] != worker:  # replaced, not revived: say so, do not count it
                print(f"  {mode}: job ran on {answer['workerId']}, not the parked {worker}",
                      file=sys.stderr)
                worker = answer["workerId"]
                continue
            out.append(ms)
        self.retire(ep)
        return out

    def wait_parked(self, endpoint_id: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = self.c.get(f"/v1/endpoints/{endpoint_id}",
                              params={"includeWorkers": "true"}).json()
            if [w["workerStatus"] for w in body["workers"]] == ["PARKED"]:
                return
            time.sleep(0.1)
        raise RuntimeError("the worker was not parked")


def both(run: Callable[[str], object]) -> dict[str, object]:
    return {mode: run(mode) for mode in MODES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200,
                    help="sequential /runsync per accelerated case (the SDK's loop: --slow-runs)")
    ap.add_argument("--slow-runs", type=int, default=15,
                    help="sequential /runsync with the SDK's own loop (~1 s each)")
    ap.add_argument("--drain", type=int, default=1000, help="queued jobs, accelerated")
    ap.add_argument("--slow-drain", type=int, default=20, help="queued jobs, SDK's own loop")
    ap.add_argument("--revivals", type=int, default=30)
    ap.add_argument("--no-container", action="store_true")
    args = ap.parse_args()
    runs = {"accelerated": args.runs, "sdk-loop": args.slow_runs}
    drains = {"accelerated": args.drain, "sdk-loop": args.slow_drain}

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        tmp.chmod(0o755)  # workers run as [security] worker_user: let it reach the handlers
        app = tmp / "app"
        app.mkdir()
        (app / "handlers.py").write_text(HANDLERS)
        data = tmp / "data"
        data.mkdir()
        port = free_port()
        server, key = start_runplane(data, port)
        rows: list[tuple[str, str, str, str, str]] = []
        try:
            b = Bench(port, key, data, app, server.pid)
            seq = both(lambda m: b.sequential(m, "sync", runs[m]))
            conc = both(lambda m: b.sequential(m, "async4", runs[m]))
            rate = both(lambda m: b.drain(m, drains[m]))
            rev = both(lambda m: b.revivals(m, args.revivals))
            why_not = "--no-container" if args.no_container else container_ready()
            cseq = crev = None
            if why_not is None:
                cseq = both(lambda m: b.sequential(m, "sync", runs[m] // 4 or 1, container=True))
                crev = both(lambda m: b.revivals(m, max(5, args.revivals // 3), container=True))
        finally:
            server.terminate()
            server.wait(30)

    def row(what: str, values: dict, f: Callable[[object], float], goal: str, unit: str = "ms",
            higher: bool = False) -> None:
        a, s = f(values["accelerated"]), f(values["sdk-loop"])
        num, den = (a, s) if higher else (s, a)
        gain = f"{num / den:,.0f}x" if den > 0 else "-"  # a 0 ms figure has no ratio
        rows.append((what, f"{a:,.1f} {unit}", f"{s:,.1f} {unit}", gain, goal))

    row("sequential /runsync, sync handler: p50", seq, lambda v: statistics.median(v[0]), "<= 3 ms")
    row("sequential /runsync, sync handler: p99", seq, lambda v: pct(v[0], 0.99), "<= 15 ms")
    row("sequential /runsync, async, concurrency 4: p50", conc,
        lambda v: statistics.median(v[0]), "<= 3 ms")
    row("queue drained by one default worker", rate, lambda v: v, ">= 300 jobs/s", "jobs/s",
        higher=True)
    row("executionTime of a no-op handler: p50", seq, lambda v: statistics.median(v[1]), "<= 2 ms")
    # The server's own share of each of those round trips (its process's CPU time per job,
    # controller ticks and heartbeats included): what is not the SDK, the client or the wait.
    row("server CPU per sequential /runsync job", seq, lambda v: v[2], "-")
    row("FlashBoot revival, /runsync -> result: p95", rev, lambda v: pct(v, 0.95), "<= 20 ms")
    if cseq is not None and crev is not None:
        row("container: sequential /runsync: p50", cseq, lambda v: statistics.median(v[0]),
            "<= 3 ms")
        row("container: FlashBoot revival: p95", crev, lambda v: pct(v, 0.95), "<= 20 ms")
    else:
        rows.append(("container rows", "skipped", str(why_not), "", ""))

    from rich.console import Console
    from rich.table import Table

    load = os.getloadavg()
    table = Table(title=f"Unmodified runpod SDK worker: accelerator vs the SDK's own loop "
                        f"({runs['accelerated']}/{runs['sdk-loop']} runsyncs, "
                        f"{drains['accelerated']}/{drains['sdk-loop']} queued, "
                        f"{args.revivals} revivals; load average {load0[0]:.1f} -> "
                        f"{load[0]:.1f} on {os.cpu_count()} CPUs)")
    for col in ("what", "accelerated", "SDK's own loop", "gain", "goal"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)


if __name__ == "__main__":
    main()
