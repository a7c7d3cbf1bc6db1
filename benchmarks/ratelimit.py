"""Rate limiter benchmark: what limiting costs one /run, one table.

    .venv/bin/python benchmarks/ratelimit.py [--runs 5000] [--rounds 2]

1. In process: the calls the /v2 client routes make per request for their limit
   (``RateLimits.job_route`` + ``RateLimiter.hit`` + the in-flight slot taken and given
   back), 1,000,000 times over 10,000 keys, against an empty loop; and a refused hit, and the
   failed-authentication check a bad key costs. Then the whole per-request check of /run
   (``api.v2.client._endpoint``: key, endpoint owner, limit) on one real server's parts, with
   its job API limits in place and taken out, alternating: the difference is what limiting
   adds to one /run.
2. A real ``runplane serve`` (controller off) taking ``--runs`` /run from the lean keep-alive
   client of benchmarks/jobs.py (64 in flight), with the limiter on (quotas no run reaches)
   and off (``[limits] enabled = false``), alternating ``--rounds`` times: the server's CPU
   per /run and /run per second, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from jobs import UNREACHED_LIMITS, Runplane, _Http, _http_request, _server_cpu_s

from runplane.security_settings import LimitSettings, RouteLimit
from runplane.services.ratelimit import RateLimiter, RateLimits, RateRule

N = 1_000_000


def per_call_ns(fn, n: int = N) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def endpoint_check(n: int = 100_000, rounds: int = 3) -> tuple[float, float]:
    """ns per ``_endpoint`` call of /run on one real server's parts, with its job API limits
    and with them taken out (the same objects otherwise), alternating: (on, off) medians."""
    import json

    from runplane.api.v2.client import _endpoint
    from runplane.api.v2.http import Req
    from runplane.config import load_settings
    from runplane.schemas.endpoints import EndpointCreate
    from runplane.schemas.templates import TemplateCreate
    from runplane.server import build_services
    from runplane.services.users import Principal

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(load_settings(
            data_dir=Path(tmp), limits=json.loads(UNREACHED_LIMITS), controller={"enabled": False}))
        try:
            uid = services.users.create_user("bench")
            key = services.users.create_key(uid).secret
            me = Principal(uid)
            t = services.templates.create(me, TemplateCreate(name="t", imageName="ubuntu:22.04",
                                                             isServerless=True))
            ep = services.endpoints.create(me, EndpointCreate(templateId=t.id)).id
            scope = {"type": "http", "method": "POST", "path": f"/v2/{ep}/run",
                     "headers": [(b"authorization", f"Bearer {key}".encode())],
                     "client": ("127.0.0.1", 5000)}

            def run() -> float:
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    req = Req(scope, None, None, services, [ep, "run"])  # type: ignore[arg-type]
                    _endpoint(req)
                    if req.release is not None:  # what V2App does once the handler returns
                        req.release[0].release(req.release[1])
                return (time.perf_counter_ns() - t0) / n

            routes = services.limits._routes
            on, off = [], []
            for _ in range(rounds):
                services.limits._routes = routes
                on.append(run())
                services.limits._routes = {}
                off.append(run())
            return statistics.median(on), statistics.median(off)
        finally:
            services.engine.dispose()


def in_process() -> list[tuple[str, float]]:
    limits = RateLimits(LimitSettings(job_api={"run": RouteLimit(requests=10**9,
                                                                 concurrent=10**6)}))
    keys = [(f"key{i % 100}", f"ep{i}") for i in range(10_000)]

    def empty(n: int) -> None:
        for i in range(n):
            keys[i % 10_000]

    def limited(n: int) -> None:  # what api/v2/client._endpoint does for /run
        for i in range(n):
            key = keys[i % 10_000]
            route = limits.job_route("run")
            if route is not None:
                if route.rate.hit(key):
                    raise AssertionError
                inflight = route.inflight
                if inflight is not None and inflight.acquire(key):
                    inflight.release(key)

    full = RateLimiter(RateRule(1, 3600.0))
    full.hit("k")

    def refused(n: int) -> None:
        for _ in range(n):
            full.hit("k")

    def failed_auth_check(n: int) -> None:
        for i in range(n):
            full.wait(keys[i % 10_000])

    base = per_call_ns(empty)
    return [("limit check per /run (route, hit, in-flight slot)", per_call_ns(limited) - base),
            ("a refused hit (over the limit)", per_call_ns(refused)),
            ("failed-authentication check per unknown key", per_call_ns(failed_auth_check) - base)]


async def drive(rp: Runplane, n: int) -> tuple[float, float]:
    """``n`` /run from 64 keep-alive connections: (server CPU us per /run, /run per s)."""
    ep = rp.endpoint()
    headers = {"Authorization": f"Bearer {rp.key}", "Content-Type": "application/json"}

    async def submitter(k: int) -> None:
        c = await _Http.open(rp.port)
        try:
            for i in range(k, n, 64):
                body = b'{"input": {"i": %d}}' % i
                status, _ = await c.request(_http_request("POST", f"/v2/{ep}/run", rp.port,
                                                          headers, body))
                assert status == 200, status
        finally:
            c.close()

    await asyncio.gather(*(submitter(k) for k in range(64)))  # warm-up
    cpu0, t0 = _server_cpu_s(rp), time.perf_counter()
    await asyncio.gather(*(submitter(k) for k in range(64)))
    elapsed = time.perf_counter() - t0
    return (_server_cpu_s(rp) - cpu0) / n * 1e6, n / elapsed


def served(runs: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for _ in range(rounds):
        for mode, limits in (("on", UNREACHED_LIMITS), ("off", '{"enabled": false}')):
            os.environ["RUNPLANE_LIMITS"] = limits
            with tempfile.TemporaryDirectory() as tmp:
                rp = Runplane(Path(tmp))
                try:
                    out[mode].append(asyncio.run(drive(rp, runs)))
                finally:
                    rp.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    micro = in_process()
    on, off = endpoint_check()
    e2e = served(args.runs, args.rounds)
    cpu = {m: statistics.median(c for c, _ in v) for m, v in e2e.items()}
    rate = {m: statistics.median(r for _, r in v) for m, v in e2e.items()}
    print(f"# rate limiter benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"# in process: {N:,} calls over 10,000 keys; served: {args.runs:,} /run x "
          f"{args.rounds} rounds each way (median), 64 in flight")
    print()
    print("| measure | limiter on | limiter off | on / off |")
    print("|---|---:|---:|---:|")
    for name, ns in micro:
        print(f"| {name} | {ns / 1000:.2f} us | — | — |")
    print(f"| /run's per-request check (key, owner, limit) | {on / 1000:.2f} us | "
          f"{off / 1000:.2f} us | {on / off:.3f} (+{(on - off) / 1000:.2f} us) |")
    print(f"| server CPU per /run | {cpu['on']:.0f} us | {cpu['off']:.0f} us | "
          f"{cpu['on'] / cpu['off']:.3f} |")
    print(f"| /run per second | {rate['on']:,.0f} | {rate['off']:,.0f} | "
          f"{rate['on'] / rate['off']:.3f} |")


if __name__ == "__main__":
    main()
