"""Control-plane read benchmark: GET /v1/endpoints/{id}?includeTemplate=true&includeWorkers=true
with 10, 1,000 and 10,000 endpoints in the store, against a bare Starlette route.

One uvicorn server process per store (started here on a free loopback port over a temporary
data dir); load from ``wrk`` in its own process, rotating over every endpoint id with a Lua
script, percentiles from ``wrk --latency``. Prints one table.

    .venv/bin/python benchmarks/control_plane.py [--duration 10] [--connections 16]

``--v1-v2`` prints the REST v1 / REST v2 table instead: in one server per store size (the
10 hottest endpoints with 10 registered workers each), ``GET /v1/endpoints/{id}`` beside
``GET /v2/serverless/{id}`` (ids rotating over the whole store) and ``GET
/v1/endpoints/{id}?includeWorkers=true`` beside ``GET /v2/serverless/{id}/workers`` (over the
10 endpoints with workers), each pair measured in alternating rounds against the same process
(the best round of each side).

Needs ``wrk`` (Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SIZES = (10, 1_000, 10_000)
QUERY = "?includeTemplate=true&includeWorkers=true"
HOT_ENDPOINTS = 10
WORKERS_PER_ENDPOINT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_store(data_dir: Path, count: int) -> tuple[str, list[str]]:
    """A store with one user, one template and ``count`` endpoints; returns (key, ids).

    The first endpoint goes through EndpointService (validation, defaults); the rest are
    copies of its row with new ids, inserted in one statement so 10,000 take a second.
    """
    from sqlalchemy import insert, select

    from runplane.config import load_settings
    from runplane.ids import new_id
    from runplane.schemas.endpoints import EndpointCreate
    from runplane.schemas.templates import TemplateCreate
    from runplane.server import build_services
    from runplane.services.users import Principal
    from runplane.store.tables import endpoints

    services = build_services(load_settings(data_dir=data_dir))
    user_id = services.users.create_user("bench")
    key = services.users.create_key(user_id).secret
    me = Principal(user_id)
    template = services.templates.create(me, TemplateCreate.model_validate(
        {"name": "bench", "imageName": "runplane/local:.", "isServerless": True,
         "env": {"MODEL": "tiny", "LOG_LEVEL": "info"}}))
    first = services.endpoints.create(me, EndpointCreate.model_validate(
        {"templateId": template.id, "name": "bench-0", "gpuTypeIds": ["NVIDIA A40", "NVIDIA L4"]}))
    with services.engine.begin() as conn:
        row = dict(conn.execute(select(endpoints).where(endpoints.c.id == first.id)).one()._mapping)
        clones = [row | {"id": new_id(), "name": f"bench-{i}"} for i in range(1, count)]
        if clones:
            conn.execute(insert(endpoints), clones)
        ids = list(conn.execute(select(endpoints.c.id)).scalars())
    services.engine.dispose()
    return key, ids


def start_server(args: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, lua: Path | None, key: str | None, duration: int, connections: int) -> dict:
    """One wrk run; returns requests/s and p50/p99 in ms; fails on any non-2xx answer."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    if lua:
        cmd += ["-s", str(lua)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)}
    return {"rps": rps, "p50": pct["50"], "p99": pct["99"]}


def lua_rotating(path: Path, ids: list[str]) -> Path:
    body = ",".join(f'"{i}"' for i in ids)
    path.write_text(
        f"local ids = {{{body}}}\nlocal n = #ids\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        f'  return wrk.format("GET", "/v1/endpoints/" .. ids[(i % n) + 1] .. "{QUERY}")\nend\n'
    )
    return path


def lua_paths(path: Path, ids: list[str], prefix: str, suffix: str) -> Path:
    """A wrk script requesting ``prefix + id + suffix``, rotating over ``ids``."""
    body = ",".join(f'"{i}"' for i in ids)
    path.write_text(
        f"local ids = {{{body}}}\nlocal n = #ids\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        f'  return wrk.format("GET", "{prefix}" .. ids[(i % n) + 1] .. "{suffix}")\nend\n'
    )
    return path


ROUNDS = 3
V1_V2_PAIRS = (
    ("GET one endpoint", "all", ("/v1/endpoints/", ""), ("/v2/serverless/", "")),
    ("its workers (10 each)", "hot", ("/v1/endpoints/", "?includeWorkers=true"),
     ("/v2/serverless/", "/workers")),
)


def bench_v1_v2(duration: int, connections: int) -> list[tuple[int, str, dict, dict]]:
    """(store size, what, v1 figures, v2 figures) per size and pair (see the docstring)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="runplane-bench-") as tmp:
        for count in SIZES:
            data_dir = Path(tmp) / f"store-{count}"
            key, ids = prepare_store(data_dir, count)
            picks = {"all": ids, "hot": sorted(ids)[:HOT_ENDPOINTS]}
            port = free_port()
            proc = start_server(["--serve-runplane", str(data_dir), "workers"], port)
            try:
                url = f"http://127.0.0.1:{port}"
                for what, which, v1, v2 in V1_V2_PAIRS:
                    scripts = [lua_paths(Path(tmp) / f"{count}-{which}-{n}.lua", picks[which], *ps)
                               for n, ps in enumerate((v1, v2))]
                    for lua in scripts:
                        run_wrk(url, lua, key, 2, connections)  # warm-up
                    # Alternating rounds, the best of each side: on a shared machine a burst
                    # of someone else's load then hits both sides alike.
                    runs: list[list[dict]] = [[], []]
                    for _ in range(ROUNDS):
                        for side, lua in enumerate(scripts):
                            runs[side].append(run_wrk(url, lua, key, duration, connections))
                    rows.append((count, what, *(max(r, key=lambda x: x["rps"]) for r in runs)))
            finally:
                stop(proc)
    return rows


def print_v1_v2(rows: list[tuple[int, str, dict, dict]], duration: int, connections: int) -> None:
    print("\nREST v1 beside REST v2 over the same endpoints, same server process per size")
    print(f"wrk -t1 -c{connections} -d{duration}s, best of {ROUNDS} alternating rounds; one uvicorn "
          f"process; {os.cpu_count()} cores")
    print("v1: GET /v1/endpoints/{id} | ?includeWorkers=true; "
          "v2: GET /v2/serverless/{id} | /workers\n")
    head = ("endpoints", "what", "v1 req/s", "v2 req/s", "v2/v1", "v1 p50", "v2 p50", "v2 p99")
    print("| {:>9} | {:<21} | {:>8} | {:>8} | {:>5} | {:>6} | {:>6} | {:>6} |".format(*head))
    print("|{}:|:{}|{}:|{}:|{}:|{}:|{}:|{}:|".format(
        "-" * 10, "-" * 22, "-" * 9, "-" * 9, "-" * 6, "-" * 7, "-" * 7, "-" * 7))
    for count, what, v1, v2 in rows:
        print(f"| {count:>9,} | {what:<21} | {v1['rps']:>8,.0f} | {v2['rps']:>8,.0f} "
              f"| {v2['rps'] / v1['rps']:>5.2f} | {v1['p50']:>6.2f} | {v2['p50']:>6.2f} "
              f"| {v2['p99']:>6.2f} |")


def bench(duration: int, connections: int) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="runplane-bench-") as tmp:
        port = free_port()
        proc = start_server(["--serve-bare"], port)
        try:
            url = f"http://127.0.0.1:{port}/ping"
            run_wrk(url, None, None, 2, connections)  # warm-up
            rows.append(("bare Starlette route", run_wrk(url, None, None, duration, connections)))
        finally:
            stop(proc)
        stores = {}
        for count in SIZES:
            data_dir = Path(tmp) / f"store-{count}"
            key, ids = prepare_store(data_dir, count)
            stores[count] = (data_dir, key, lua_rotating(Path(tmp) / f"ids-{count}.lua", ids))
            hot = sorted(ids)[:HOT_ENDPOINTS]
            stores[count] += (lua_rotating(Path(tmp) / f"hot-{count}.lua", hot),)
        cases = [(f"{count:,} endpoints", count, "full") for count in SIZES]
        cases += [(f"{count:,} endpoints, 10 workers each", count, "workers") for count in SIZES]
        cases += [(f"{count:,} endpoints, alone", count, "alone") for count in (SIZES[0], SIZES[-1])]
        for name, count, mode in cases:
            data_dir, key, all_ids, hot_ids = stores[count]
            lua = hot_ids if mode == "workers" else all_ids
            port = free_port()
            proc = start_server(["--serve-runplane", str(data_dir), mode], port)
            try:
                url = f"http://127.0.0.1:{port}"
                run_wrk(url, lua, key, 2, connections)  # warm-up
                rows.append((name, run_wrk(url, lua, key, duration, connections)))
            finally:
                stop(proc)
    return rows


def print_table(rows: list[tuple[str, dict]], duration: int, connections: int) -> None:
    """One markdown table; ratios against the bare route (req/s) and the 10-endpoint p50 of
    the same group."""
    bare = rows[0][1]["rps"]

    def group(name: str) -> str:
        return name.split(", ", 1)[1] if ", " in name else ""

    # p50 flatness is read within a group of rows (plain / with workers / alone).
    base: dict[str, float] = {}
    for name, r in rows[1:]:
        base.setdefault(group(name), r["p50"])
    print(f"\nGET /v1/endpoints/{{id}}{QUERY}, ids rotating over the whole store")
    print(f"wrk -t1 -c{connections} -d{duration}s; one uvicorn process; {os.cpu_count()} cores")
    print("'10 workers each': ids rotating over 10 endpoints that have 10 registered workers each")
    print("'alone': controller off, no workers (the control plane only)\n")
    head = ("case", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "p50 vs 10")
    print("| {:<28} | {:>8} | {:>7} | {:>7} | {:>13} | {:>9} |".format(*head))
    print("|:{}|{}:|{}:|{}:|{}:|{}:|".format("-" * 29, "-" * 9, "-" * 8, "-" * 8, "-" * 14, "-" * 10))
    for i, (name, r) in enumerate(rows):
        flat = "" if i == 0 else f"{r['p50'] / base[group(name)]:.2f}"
        print(f"| {name:<28} | {r['rps']:>8,.0f} | {r['p50']:>7.2f} | {r['p99']:>7.2f} "
              f"| {r['rps'] / bare:>13.2f} | {flat:>9} |")


def serve_runplane(data_dir: str, port: int, mode: str) -> None:
    """The server as ``runplane serve`` builds it. ``alone`` turns the controller off (no
    worker is registered, so includeWorkers finds none), to show the control plane's own
    cost; ``workers`` gives the first endpoints ten registered workers each."""
    import uvicorn

    from runplane.cli.serve import run_serving
    from runplane.config import load_settings
    from runplane.server import build_services, create_app

    overrides: dict = {"controller": {"enabled": False}} if mode == "alone" else {}
    # REST v2's per-user quotas (RunPod's 60 a minute) would refuse the load after a second;
    # raised, their headers are still computed on every answer.
    overrides["limits"] = {"rest_v2_per_minute": 10**9, "rest_v2_per_hour": 10**9,
                           "rest_v2_per_day": 10**9}
    settings = load_settings(data_dir=Path(data_dir), port=port, **overrides)
    services = build_services(settings)
    app = create_app(services)
    if mode == "alone":
        # The store is shared with the "10 workers each" case, whose manual workers are still
        # registered (a restart keeps them): the control plane alone has none.
        for w in services.workers.all():
            services.workers.retire(w.id, "benchmark: the control plane alone has no workers")
        services.broker.writer.flush()
    if mode == "workers":
        # Real worker registrations (rows and registry entries, as `runplane worker run`
        # makes them) on the endpoints the load rotates over; no processes are needed to list them.
        for ep in sorted(services.endpoints.list_all(), key=lambda e: e.id)[:HOT_ENDPOINTS]:
            for _ in range(WORKERS_PER_ENDPOINT):
                services.workers.register(ep.id, manual=True)
    run_serving(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                               access_log=False), services)


def serve_bare(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ping(_request):  # type: ignore[no-untyped-def]
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/ping", ping), Route("/healthz", ping)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-runplane":
        serve_runplane(sys.argv[2], int(sys.argv[4]), sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--v1-v2", action="store_true", help="the REST v1 / v2 table")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    if args.v1_v2:
        print_v1_v2(bench_v1_v2(args.duration, args.connections), args.duration,
                    args.connections)
        return
    rows = bench(args.duration, args.connections)
    print_table(rows, args.duration, args.connections)


if __name__ == "__main__":
    main()
