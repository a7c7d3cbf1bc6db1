"""Soak benchmark: mixed job load for a while, with a worker or the server killed at random.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--kill-every 120] [--rate 4]
        [--kills all|server] [--accelerator on|off]

A real ``runplane serve`` (SQLite, the controller on, workers outliving it) and its
autoscaled real runpod SDK workers (a generator handler that sleeps 0.05-1.5 s per job and
logs every execution beside the server) take a mix of /run (polled with /status), /runsync,
/stream and /run-then-/cancel from clients that resend a request whose answer was lost with
the same Idempotency-Key, as a careful client does. Every ``--kill-every`` seconds (with
jitter) one of: SIGKILL of a worker's handler process, SIGKILL of the server then a start,
SIGTERM of the server then a start (``--kills server``: only the server's). ``--accelerator
off`` runs the workers on the SDK's own loop and result post (what a restart costs without
the accelerator's resent results: docs/workers.md). At the end every acknowledged job is waited for, then
one table:

- acknowledged: jobs a client got an id for; completed, cancelled, failed (with reasons);
- lost: acknowledged jobs that ended nowhere (404, or not final by the end) - goal 0;
- run twice without a counted retry: handler executions > retries + 1 - goal 0;
- orphans: worker processes left whose worker the server no longer has - goal 0;
- the worst submit-to-final time of jobs submitted within 30 s before each kill.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import LiveServer, make_live_server, worker_processes_of

HANDLER = """
import asyncio, json, os, random, time
import runpod

LOG = os.path.join(os.environ["STATE_DIR"], "executions.jsonl")


async def handler(job):
    with open(LOG, "a") as f:
        f.write(json.dumps({"job": job["id"], "t": time.time()}) + "\\n")
    steps = int(job["input"].get("steps", 3))
    for i in range(steps):
        await asyncio.sleep(random.uniform(0.02, 0.5))
        yield {"step": i}


runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
"""
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
SETTINGS = {
    "RUNPLANE_CONTROLLER": json.dumps({"tick_s": 0.5, "stop_grace_s": 3,
                                       "startup_timeout_s": 90}),
    "RUNPLANE_WORKER_PING_INTERVAL_MS": "2000",
    "RUNPLANE_JOB_LOST_GRACE_S": "8",
    "RUNPLANE_JOB_TAKE_HOLD_S": "10",
    "RUNPLANE_LIMITS__ENABLED": "false",
}


class Soak:
    def __init__(self, srv: LiveServer, state: Path, endpoint: str,
                 kills: tuple[str, ...]) -> None:
        self.srv = srv
        self.kinds = kills
        self.state = state
        self.ep = endpoint
        self.headers = {"Authorization": f"Bearer {srv.admin_key}"}
        self.acked: dict[str, dict[str, Any]] = {}  # job id -> kind, submitted, final...
        self.kills: list[tuple[float, str]] = []
        self.stopping = False
        self.deadline = float("inf")  # set when the load stops: how long to wait for the rest
        self.n = 0

    async def call(self, session: aiohttp.ClientSession, method: str, path: str,
                   body: Any = None, key: str | None = None, tries: int = 120) -> Any:
        """One request, sent again (same key) while the server is away; None if it never
        answers 200 (a 404 is returned as ``{"status": "NOT_FOUND"}``)."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        for _ in range(tries):
            try:
                async with session.request(method, f"{self.srv.url}{path}", json=body,
                                           headers=headers) as r:
                    if r.status == 200:
                        return await r.json()
                    if r.status == 404:
                        return {"status": "NOT_FOUND"}
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.5)
        return None

    async def one(self, session: aiohttp.ClientSession) -> None:
        self.n += 1
        kind = random.choices(["run", "runsync", "stream", "cancel"], [5, 3, 1, 1])[0]
        key = f"soak-{self.n}"
        body = {"input": {"steps": random.randint(1, 4)}}
        t0 = time.time()
        path = f"/v2/{self.ep}/runsync?wait=60000" if kind == "runsync" else f"/v2/{self.ep}/run"
        answer = await self.call(session, "POST", path, body, key)
        if not answer or "id" not in answer:
            return
        job = answer["id"]
        rec = self.acked.setdefault(job, {"kind": kind, "submitted": t0})
        if kind == "cancel":
            await asyncio.sleep(random.uniform(0, 1.0))
            await self.call(session, "POST", f"/v2/{self.ep}/cancel/{job}")
        while not self.stopping or time.time() < self.deadline:
            op = "stream" if kind == "stream" else "status"
            s = await self.call(session, "GET", f"/v2/{self.ep}/{op}/{job}")
            if s is not None and s.get("status") in FINAL | {"NOT_FOUND"}:
                ended = time.time()
                if op == "stream" and s["status"] != "NOT_FOUND":  # /stream has no retries
                    s = await self.call(session, "GET", f"/v2/{self.ep}/status/{job}") or s
                rec.update(final=s["status"], ended=ended, retries=s.get("retries"),
                           error=s.get("error"))
                return
            await asyncio.sleep(0.5)

    async def load(self, until: float, rate: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=90)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.time() < until:
                t = asyncio.create_task(self.one(session))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                await asyncio.sleep(random.expovariate(rate))
            self.stopping = True
            self.deadline = time.time() + 300
            await asyncio.gather(*tasks, return_exceptions=True)

    async def chaos(self, until: float, every: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(random.uniform(0.5, 1.5) * every)
            if time.time() > until - 10:
                return
            what = random.choice(self.kinds)
            if what == "worker SIGKILL":
                handlers = [p for p in worker_processes_of(self.srv.port) if _is_handler(p)]
                if not handlers:
                    continue
                os.kill(random.choice(handlers), signal.SIGKILL)
            else:
                sig = signal.SIGKILL if what.endswith("SIGKILL") else signal.SIGTERM
                await loop.run_in_executor(None, _restart, self.srv, sig)
            self.kills.append((time.time(), what))
            print(f"  {datetime.now(UTC):%H:%M:%S} {what}", file=sys.stderr, flush=True)


def _is_handler(pid: int) -> bool:
    import psutil

    try:
        return any(part.endswith("handler.py") for part in psutil.Process(pid).cmdline()) \
            and psutil.Process(pid).parent().name() == "sh"
    except psutil.Error:
        return False


def _restart(srv: LiveServer, sig: int) -> None:
    assert srv.proc is not None
    srv.proc.send_signal(sig)
    srv.proc.wait(timeout=60)
    srv.start(timeout=60)


def _executions(state: Path) -> collections.Counter[str]:
    path = state / "executions.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return collections.Counter(json.loads(line)["job"] for line in lines if line.strip())


def _orphans(srv: LiveServer) -> int:
    """Worker processes whose worker the store has as exited (or does not know)."""
    import psutil

    with sqlite3.connect(f"file:{srv.data_dir / 'runplane.db'}?mode=ro", uri=True) as db:
        live = {r[0] for r in db.execute("SELECT id FROM workers WHERE stopped_at IS NULL")}
    n = 0
    for pid in worker_processes_of(srv.port):
        try:
            if psutil.Process(pid).environ().get("RUNPOD_POD_ID") not in live:
                n += 1
        except psutil.Error:
            continue
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kill-every", type=float, default=120.0, help="seconds between kills")
    ap.add_argument("--rate", type=float, default=4.0, help="jobs submitted per second")
    ap.add_argument("--workers-max", type=int, default=3)
    ap.add_argument("--details", type=Path, help="write every job's record here (JSON)")
    ap.add_argument("--kills", choices=["all", "server"], default="all")
    ap.add_argument("--accelerator", choices=["on", "off"], default="on")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runplane-soak-"))
    srv = make_live_server(tmp, **SETTINGS)
    srv.start(timeout=60)
    try:
        app, state = tmp / "worker", tmp / "state"
        app.mkdir()
        state.mkdir()
        (app / "handler.py").write_text(HANDLER)
        # Workers run as the unprivileged worker user when the server is root (docs/security.md).
        tmp.chmod(0o755)
        state.chmod(0o777)
        with srv.client(srv.admin_key) as c:  # local: images are the admins' (docs/security.md)
            t = c.post("/v1/templates", json={
                "name": "soak", "imageName": f"local:{app}", "isServerless": True,
                "dockerStartCmd": [sys.executable, "-u", "handler.py"],
                "env": {"STATE_DIR": str(state), "RUNPOD_LOG_LEVEL": "WARN",
                        "RUNPLANE_ACCELERATOR": "1" if args.accelerator == "on" else "0"}})
            assert t.status_code == 200, t.text
            t = t.json()
            ep = c.post("/v1/endpoints", json={
                "name": "soak", "templateId": t["id"], "computeType": "CPU", "vcpuCount": 1,
                "workersMin": 1, "workersMax": args.workers_max, "idleTimeout": 30,
                "scalerType": "QUEUE_DELAY", "scalerValue": 2, "flashboot": False}).json()["id"]
        kinds = ("server SIGKILL", "server SIGTERM") if args.kills == "server" \
            else ("worker SIGKILL", "server SIGKILL", "server SIGTERM")
        soak = Soak(srv, state, ep, kinds)
        started = time.time()
        until = started + args.minutes * 60

        async def both() -> None:
            await asyncio.gather(soak.load(until, args.rate), soak.chaos(until, args.kill_every))

        asyncio.run(both())
        orphans = _orphans(srv)
    finally:
        srv.stop()
    runs = _executions(state)
    acked = soak.acked
    if args.details:
        args.details.write_text(json.dumps({"kills": soak.kills, "runs": runs, "jobs": acked,
                                            "started": started, "data": str(tmp)}))
    finals = collections.Counter(r.get("final", "never final") for r in acked.values())
    reasons = collections.Counter((r.get("error") or "")[:80] for r in acked.values()
                                  if r.get("final") in ("FAILED", "TIMED_OUT"))
    lost = sum(1 for r in acked.values() if r.get("final") in (None, "NOT_FOUND"))
    twice = sum(1 for job, r in acked.items()
                if runs.get(job, 0) > int(r.get("retries") or 0) + 1)
    retried = sum(int(r.get("retries") or 0) for r in acked.values())
    print(f"# soak — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"{args.minutes:g} min, ~{args.rate:g} jobs/s submitted, a kill every "
          f"~{args.kill_every:g} s ({len(soak.kills)} kills: {args.kills}), workersMax "
          f"{args.workers_max}, accelerator {args.accelerator}")
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| jobs acknowledged | {len(acked):,} |")
    for kind, n in collections.Counter(r["kind"] for r in acked.values()).most_common():
        print(f"| of which {kind} | {n:,} |")
    for status in ("COMPLETED", "CANCELLED", "FAILED", "TIMED_OUT"):
        print(f"| {status.lower()} | {finals.get(status, 0):,} |")
    for reason, n in reasons.most_common(5):
        print(f"| failed: {reason or '(no error)'} | {n:,} |")
    print(f"| retries counted | {retried:,} |")
    restarts = sum(1 for _, what in soak.kills if what.startswith("server"))
    if restarts:
        print(f"| retries counted per server restart | {retried / restarts:.1f} |")
    print(f"| lost (goal 0) | {lost:,} |")
    print(f"| run twice without a counted retry (goal 0) | {twice:,} |")
    print(f"| orphan processes left (goal 0) | {orphans:,} |")
    for at, what in soak.kills:
        near = [r["ended"] - r["submitted"] for r in acked.values()
                if "ended" in r and at - 30 <= r["submitted"] <= at]
        worst = f"{max(near):.1f} s" if near else "-"
        print(f"| worst submit-to-final, jobs sent 30 s before the {what} at "
              f"+{at - started:.0f} s | {worst} |")
    typical = sorted(r["ended"] - r["submitted"] for r in acked.values() if "ended" in r)
    if typical:
        print(f"| median submit-to-final, all jobs | {typical[len(typical) // 2]:.2f} s |")


if __name__ == "__main__":
    main()
