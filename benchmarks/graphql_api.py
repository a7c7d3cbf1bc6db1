"""GraphQL beside REST v1: the runpod SDK's ``get_endpoints()`` document (its own text,
``runpod.api.queries.endpoints.QUERY_ENDPOINT``) against ``GET /v1/endpoints``, over stores of
10 and 1,000 endpoints, and the smallest authenticated request of each (``{ myself { id } }``
against ``GET /v1/containerregistryauth``, an empty list), in the same server process.

Servers and stores as benchmarks/control_plane.py builds them (the controller off); load from
``wrk`` with a Lua script for the POSTs. Besides wrk's figures, the server's own CPU time per
request (user + system of its process over the run, divided by the requests wrk counted),
which a busy machine disturbs far less than throughput. Prints one table.

    .venv/bin/python benchmarks/graphql_api.py [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from control_plane import free_port, prepare_store, run_wrk, start_server, stop
from runpod.api.queries.endpoints import QUERY_ENDPOINT

SIZES = (10, 1_000)
MINIMAL = "{ myself { id } }"


def lua_post(path: Path, document: str, key: str) -> Path:
    """A wrk script POSTing ``document`` to /graphql as the SDK does."""
    body = json.dumps(json.dumps({"query": document}))  # a Lua string literal
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {body}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    return path


def with_cpu(server: psutil.Process, duration: int, load: Callable[..., dict],
             *args: Any) -> dict:
    """``load(*args)``'s wrk figures plus ``cpu``: the server's CPU ms per request."""
    before = server.cpu_times()
    figures = load(*args)
    after = server.cpu_times()
    spent = (after.user - before.user) + (after.system - before.system)
    return figures | {"cpu": spent * 1000 / max(1.0, figures["rps"] * duration)}


def bench(duration: int, connections: int) -> list[tuple[int, str, dict, dict]]:
    """(store size, what, REST v1 figures, GraphQL figures)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="runplane-bench-") as tmp:
        for count in SIZES:
            data_dir = Path(tmp) / f"store-{count}"
            key, _ids = prepare_store(data_dir, count)
            port = free_port()
            proc = start_server(["--serve-runplane", str(data_dir), "alone"], port)
            try:
                url = f"http://127.0.0.1:{port}"
                pairs = [("list endpoints", "/v1/endpoints", QUERY_ENDPOINT)]
                if count == SIZES[0]:
                    pairs.append(("smallest request", "/v1/containerregistryauth", MINIMAL))
                for what, rest_path, document in pairs:
                    lua = lua_post(Path(tmp) / f"{count}-{len(rows)}.lua", document, key)
                    run_wrk(url + rest_path, None, key, 2, connections)  # warm-up
                    run_wrk(url + "/graphql", lua, None, 2, connections)
                    server = psutil.Process(proc.pid)
                    rest = with_cpu(server, duration, run_wrk, url + rest_path, None, key,
                                    duration, connections)
                    gql = with_cpu(server, duration, run_wrk, url + "/graphql", lua, None,
                                   duration, connections)
                    rows.append((count, what, rest, gql))
            finally:
                stop(proc)
    return rows


def print_table(rows: list[tuple[int, str, dict, dict]], duration: int, connections: int) -> None:
    print("\nGraphQL (the runpod SDK's documents) beside REST v1, same server process per size")
    print(f"wrk -t1 -c{connections} -d{duration}s; one uvicorn process; {os.cpu_count()} cores\n")
    head = ("endpoints", "what", "v1 CPU ms", "gql CPU ms", "gql/v1 CPU", "v1 req/s",
            "gql req/s", "v1 p50", "gql p50")
    print("| {:>9} | {:<16} | {:>9} | {:>10} | {:>10} | {:>8} | {:>9} | {:>6} | {:>7} |"
          .format(*head))
    print("|" + "|".join(["-" * 10 + ":", ":" + "-" * 17, *("-" * (len(h) + 1) + ":"
                                                           for h in head[2:])]) + "|")
    for count, what, rest, gql in rows:
        print(f"| {count:>9,} | {what:<16} | {rest['cpu']:>9.2f} | {gql['cpu']:>10.2f} "
              f"| {gql['cpu'] / rest['cpu']:>10.2f} | {rest['rps']:>8,.0f} | {gql['rps']:>9,.0f} "
              f"| {rest['p50']:>6.2f} | {gql['p50']:>7.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    print_table(bench(args.duration, args.connections), args.duration, args.connections)


if __name__ == "__main__":
    main()
