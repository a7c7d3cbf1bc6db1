"""Autoscaler reaction time on real processes, phase by phase, beside the simulator's prediction.

A ``runplane serve`` process (the real server: SQLite store, broker, controller, local
provider; the runpod SDK accelerator on, as by default) with four CPU endpoints on one
unmodified runpod SDK handler, all REQUEST_COUNT 1, idleTimeout 1 s, FlashBoot off:

- process, from zero: a worker process (``local:`` image), workersMin 0, workersMax 1; each
  run starts with no worker and sends one job (``/runsync``);
- process, from one busy worker: workersMin 1, workersMax 2; each run starts with one ready
  worker, sends a job A that holds its worker (the handler waits for a file), and once A is
  taken sends job B, which needs a second worker; B is the job measured, then A is released;
- container, from zero / from one busy worker: the same on the test image of
  scripts/setup_podman.sh (``podman``; the handler in the endpoint's network volume), built
  with benchmarks/cold_start.py's helpers.

Before every run all four endpoints are back at rest (no worker, or one ready worker) and the
previous workers' processes and containers are gone. Runs alternate between the cases.

Where each instant comes from (all from the store, written by the server as it happened):

- job queued: ``jobs.created_at``, when the server accepted the job (before its durable
  write; the queue gets it after the write);
- scale decision: ``workers.created_at``. Nothing else records the decision's time: the
  controller logs a start only after the process started. The row is inserted by the worker
  registry's ``register``, which ``Controller._start_worker`` calls after
  ``autoscaler.decide`` in the same synchronous pass of the tick (no await between them:
  only the decision's stops and park/resume calls and the placement), so its
  ``created_at`` is the decision's time plus that computation;
- process started: ``workers.started_at``, just after ``Popen`` returned (for a container:
  the ``podman run`` launcher process; the container's own start is in the next phase);
- worker ready: ``workers.first_take_at``, when its first job-take request arrived;
- job taken: ``jobs.started_at``, when the job-take response carrying the job was written
  (what RunPod's delayTime measures: queued -> taken is the job's delayTime).

The simulator's prediction: the same case as a trace (from zero: the one job; busy: job A,
holding its worker until well after B is taken, then B after the same gap as here; B's
execution as measured) replayed by ``runplane.simulate``'s engine (the real Controller on a
virtual clock) with the same endpoint settings and the cold starts measured in this run
(what ``--cold-start measured`` reads: the endpoint's workers' ``started_at`` ->
``first_take_at`` in this store), ``--sim-draws`` times with one seed each, so that its
p50/p95 are those of the prediction rather than of a handful of draws. The simulator starts
a process at its decision and hands a queued job out the instant a worker asks, so those
phases are 0 there: real - sim is what it does not model (the "runplane's part" row).

Prints one table.

    .venv/bin/python benchmarks/reaction.py [--runs 5] [--no-containers] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import pwd
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from cold_start import (
    container_ready,
    free_port,
    make_container_endpoint,
    make_endpoint,
    start_runplane,
)
from rich.console import Console
from rich.table import Table

from runplane.config import ControllerSettings
from runplane.services.volumes import volume_dir
from runplane.simulate import history
from runplane.simulate.engine import Candidate, Run, Setup
from runplane.simulate.outcome import percentile
from runplane.simulate.timing import Duration, empirical, parse_duration
from runplane.simulate.trace import Trace, TraceJob
from runplane.store.db import make_engine

HANDLER = '''import os
import time


def handler(job):
    hold = job["input"].get("hold")
    if hold:  # keep this worker busy until the benchmark releases it
        deadline = time.time() + 120
        while not os.path.exists(hold) and time.time() < deadline:
            time.sleep(0.02)
    url = os.environ.get("RUNPOD_WEBHOOK_GET_JOB", "")
    state = url.split("runplane_accelerator=")[1].split("&")[0] if "runplane_accelerator=" in url else "not loaded"
    return {"pid": os.getpid(), "accelerator": state, "uid": os.getuid()}


import runpod  # noqa: E402

runpod.serverless.start({"handler": handler})
'''

PHASES = (
    ("queued -> decision", "queued", "decided"),
    ("decision -> process started", "decided", "started"),
    ("started -> ready (1st job-take)", "started", "ready"),
    ("ready -> job taken", "ready", "taken"),
)
OWN = ("runplane's part: all but started -> ready", "own", "own")
TOTAL = ("queued -> taken (delayTime)", "queued", "taken")
SETTLE_S = 60.0


@dataclass
class Case:
    """One endpoint and how a run on it goes."""

    kind: str  # process | container
    busy: bool  # from one busy worker (else from zero)
    endpoint_id: str
    hold_host: Path  # where the release files go on this host
    hold_worker: str  # the same folder as the worker sees it
    real: list[dict[str, float]] = field(default_factory=list)
    sim: list[dict[str, float]] = field(default_factory=list)
    # What the simulator's trace needs of each run: (A -> B gap s, B's execution s).
    shape: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.kind}, {'from 1 busy worker' if self.busy else 'from zero'}"


class Store:
    """Read-only reads of the server's SQLite store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()

    def job(self, job_id: str) -> sqlite3.Row | None:
        found = self.rows("SELECT * FROM jobs WHERE id = ?", job_id)
        return found[0] if found else None

    def live_workers(self, endpoint_id: str) -> list[sqlite3.Row]:
        return self.rows("SELECT id, first_take_at FROM workers WHERE endpoint_id = ? "
                         "AND stopped_at IS NULL", endpoint_id)


def until(what: str, check: Callable[[], Any], timeout_s: float = SETTLE_S,
          every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise RuntimeError(f"timed out waiting for {what}")


def at_rest(store: Store, cases: list[Case]) -> bool:
    """Every endpoint at rest, and no process or container of a stopped worker left."""
    gone = {r["id"] for r in store.rows("SELECT id FROM workers WHERE stopped_at IS NOT NULL")}
    for case in cases:
        live = store.live_workers(case.endpoint_id)
        if case.busy and not (len(live) == 1 and live[0]["first_take_at"] is not None):
            return False
        if not case.busy and live:
            return False
    if any(c.kind == "container" for c in cases):
        names = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"],
                               capture_output=True, text=True, check=False).stdout.split()
        if any(f"runplane-{w}".lower() in names for w in gone):
            return False
    return all(not os.path.exists(f"/proc/{pid}") for pid in _pids(store, gone))


def _pids(store: Store, ids: set[str]) -> list[int]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = store.rows(f"SELECT provider_data FROM workers WHERE id IN ({marks})", *ids)
    data = [json.loads(r[0]) if r[0] else {} for r in rows]
    return [d["pid"] for d in data if d.get("runtime") == "process" and d.get("pid")]


def instants(store: Store, job_id: str) -> dict[str, Any]:
    """The job's and its worker's instants (module docstring), once all are written."""
    def read() -> dict[str, Any] | None:
        rows = store.rows(
            "SELECT j.created_at AS queued, j.started_at AS taken, j.execution_ms, w.id AS worker,"
            " w.created_at AS decided, w.started_at AS started, w.first_take_at AS ready "
            "FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE j.id = ?", job_id)
        if rows and all(rows[0][k] is not None for k in rows[0].keys()):  # noqa: SIM118 - a Row iterates values
            return dict(rows[0])
        return None
    return until(f"the rows of job {job_id}", read, 10)


def measure(c: httpx.Client, store: Store, cases: list[Case], runs: int) -> None:
    """``runs`` runs of every case, alternating, each from rest."""
    try:
        for i in range(runs):
            for case in cases:
                until("every endpoint at rest", lambda: at_rest(store, cases), every_s=0.2)
                got = run_once(c, store, case, i)
                case.real.append(got)
                print(f"  run {i + 1}/{runs} {case.name}: "
                      f"{(got['taken'] - got['queued']) * 1000:.0f} ms", file=sys.stderr)
    except RuntimeError:
        for case in cases:  # what the endpoints say, to see why they did not settle
            print(case.name, c.get(f"/v1/endpoints/{case.endpoint_id}",
                                   params={"includeWorkers": "true"}).text, file=sys.stderr)
        raise


def busy_twin(c: httpx.Client, endpoint_id: str) -> str:
    """A second endpoint on the same template (and volume), workersMin 1, workersMax 2."""
    ep = c.get(f"/v1/endpoints/{endpoint_id}").json()
    keep = ("templateId", "computeType", "vcpuCount", "idleTimeout", "scalerType",
            "scalerValue", "flashboot", "networkVolumeId")
    twin = c.post("/v1/endpoints", json={k: ep[k] for k in keep if ep.get(k)} | {
        "name": f"{ep['name']}-busy", "workersMin": 1, "workersMax": 2, "flashboot": False})
    twin.raise_for_status()
    return twin.json()["id"]


def run_once(c: httpx.Client, store: Store, case: Case, i: int) -> dict[str, Any]:
    """One run of ``case``; the instants of its measured job."""
    hold_a = None
    if case.busy:
        warm = store.live_workers(case.endpoint_id)[0]["id"]
        name = f"release-{case.kind}-{i}"
        hold_a = case.hold_host / name
        a = c.post(f"/v2/{case.endpoint_id}/run", json={"input": {
            "hold": f"{case.hold_worker}/{name}"}})
        a.raise_for_status()
        a_id = a.json()["id"]
        until("job A taken", lambda: (store.job(a_id) or {"started_at": None})["started_at"])
    try:
        r = c.post(f"/v2/{case.endpoint_id}/runsync", params={"wait": 90000},
                   json={"input": {}}, timeout=120)
        r.raise_for_status()
        b = r.json()
        if b["status"] != "COMPLETED":
            raise RuntimeError(f"{case.name}: job ended {b}")
    finally:
        if hold_a is not None:
            hold_a.touch()
    out = instants(store, b["id"])
    out["accelerator"], out["uid"] = b["output"]["accelerator"], b["output"]["uid"]
    if case.busy:
        done = until("job A done", lambda: store.job(a_id)["status"] == "COMPLETED")
        a_row = store.job(a_id)
        if not done or out["worker"] == warm or a_row["worker_id"] != warm:
            raise RuntimeError(f"{case.name}: job B was not taken by a new worker")
        case.shape.append((out["queued"] - a_row["created_at"], out["execution_ms"] / 1000))
    else:
        case.shape.append((0.0, out["execution_ms"] / 1000))
    return out


# -- the simulator's prediction -----------------------------------------------------------------


def predict(case: Case, shape: tuple[float, float], cold: Duration,
            seed: int) -> dict[str, float]:
    """The measured job's instants in the simulator, on the same case (module docstring)."""
    gap, b_exec = shape
    candidate = Candidate("bench", "REQUEST_COUNT", 1, idle_timeout_s=1,
                          workers_min=1 if case.busy else 0, workers_max=2 if case.busy else 1,
                          flashboot=False)
    setup = Setup(cold_start=cold, revival=parse_duration("0.05"), gpus=2,
                  controller=ControllerSettings(stop_grace_s=0.5), seed=seed, drain_s=30)
    # Busy: the first worker is started by workersMin at 0 and ready long before A comes;
    # A holds it until long after B is taken (here it is held until B is done).
    a_at = 30.0 + max(cold.params) if case.busy else 0.0
    a_exec = gap + 2 * max(cold.params) + 10.0
    jobs = ([TraceJob(a_at, a_exec), TraceJob(a_at + gap, b_exec)] if case.busy
            else [TraceJob(0.0, b_exec)])
    run = Run(Trace(case.name, tuple(jobs)), candidate, setup)  # not shifted to A
    decided: dict[str, float] = {}
    started: dict[str, float] = {}
    workers: dict[str, Any] = {}
    register, on_started = run.registry.register, run.provider.on_started

    def registering(*args: Any, **kwargs: Any) -> tuple[str, str]:
        wid, token = register(*args, **kwargs)
        workers[wid] = run.registry.by_id[wid]
        decided[wid] = run.clock.now()
        return wid, token

    def starting(wid: str, ready_in: float) -> None:
        started[wid] = run.clock.now()
        on_started(wid, ready_in)

    run.registry.register = registering  # type: ignore[method-assign]
    run.provider.on_started = starting
    ledger = asyncio.run(run.run())
    job = ledger.jobs[-1]
    if job.taken_at is None or job.worker_id is None:
        raise RuntimeError(f"{case.name}: the simulator never served the job")
    w = workers[job.worker_id]
    if w.created_at < job.arrived_at:
        raise RuntimeError(f"{case.name}: in the simulator B was not taken by a new worker")
    return {"queued": job.arrived_at, "decided": decided[w.id], "started": started[w.id],
            "ready": w.first_take_at, "taken": job.taken_at}


# -- report ---------------------------------------------------------------------------------------


def ms(samples: list[dict[str, float]], start: str, end: str) -> list[float]:
    return [(s[end] - s[start]) * 1000 for s in samples]


COLUMNS = ("case", "phase", "p50 ms", "p95 ms", "share of wait", "sim p50 ms", "sim p95 ms",
           "real / sim p50")


def rows(case: Case) -> list[tuple[str, ...]]:
    """The table's rows for one case: each phase, runplane's own part, the whole wait."""
    total = sum(ms(case.real, TOTAL[1], TOTAL[2]))
    out = []
    for phase, a, b in (*PHASES, OWN, TOTAL):
        if a == "own":  # all but the worker's own start: what runplane adds to the wait
            real = [t - s for t, s in zip(ms(case.real, "queued", "taken"),
                                          ms(case.real, "started", "ready"), strict=True)]
            sim = [t - s for t, s in zip(ms(case.sim, "queued", "taken"),
                                         ms(case.sim, "started", "ready"), strict=True)]
        else:
            real, sim = ms(case.real, a, b), ms(case.sim, a, b)
        r50, s50 = percentile(real, 50), percentile(sim, 50)
        out.append((case.name if not out else "", phase, f"{r50:,.1f}",
                    f"{percentile(real, 95):,.1f}", f"{sum(real) / total:.1%}", f"{s50:,.1f}",
                    f"{percentile(sim, 95):,.1f}", f"{r50 / s50:.2f}x" if s50 >= 1 else "sim: 0"))
    return out


def table(cases: list[Case], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in COLUMNS:
        t.add_column(col, justify="left" if col in ("case", "phase") else "right",
                     no_wrap=col in ("case", "phase"))
    for n, case in enumerate(cases):
        body = rows(case)
        for k, row in enumerate(body):
            t.add_row(*row, end_section=k == len(body) - 1 and n < len(cases) - 1,
                      style="bold" if k == len(body) - 1 else None)
    return t


def markdown(cases: list[Case]) -> str:
    """The same table in Markdown (for docs/benchmarks.md)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for case in cases for row in rows(case)]
    return "\n".join(lines)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--no-containers", action="store_true", help="process workers only")
    parser.add_argument("--sim-draws", type=int, default=200,
                        help="simulated runs per case, one seed each (default 200)")
    parser.add_argument("--markdown", action="store_true", help="also print it as Markdown")
    args = parser.parse_args()
    skip = "--no-containers" if args.no_containers else container_ready()
    load0 = os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runplane-reaction-") as raw:
        tmp = Path(raw)
        data, app, holds = tmp / "rp", tmp / "app", tmp / "holds"
        for d in (data, app, holds):
            d.mkdir()
        (app / "handler.py").write_text(HANDLER)
        tmp.chmod(0o755)  # workers run as [security] worker_user: let it reach the handler
        # cold_start's user "bench" is no admin: let it run the handler's local: image.
        (data / "runplane.toml").write_text('[security]\nlocal_image_users = ["bench"]\n')
        port = free_port()
        server, key = start_runplane(data, port)
        store = Store(data / "runplane.db")
        cases: list[Case] = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                              headers={"Authorization": f"Bearer {key}"}) as c:
                zero = make_endpoint(c, app)
                cases += [Case("process", False, zero, holds, str(holds)),
                          Case("process", True, busy_twin(c, zero), holds, str(holds))]
                if skip is None:
                    zero = make_container_endpoint(c, data)
                    volume = c.get(f"/v1/endpoints/{zero}").json()["networkVolumeId"]
                    folder = volume_dir(data / "volumes", "LOCAL-1", volume)
                    (folder / "handler.py").write_text(HANDLER)  # over cold_start's
                    cases += [Case("container", False, zero, folder, "/runpod-volume"),
                              Case("container", True, busy_twin(c, zero), folder,
                                   "/runpod-volume")]
                measure(c, store, cases, args.runs)
        finally:
            server.terminate()
            server.wait(30)
        engine = make_engine(f"sqlite:///{data / 'runplane.db'}")
        colds = {case.endpoint_id: empirical(history.measured_cold_starts(engine, case.endpoint_id))
                 for case in cases}
        engine.dispose()
    for case in cases:
        cold = colds[case.endpoint_id]
        case.sim = [predict(case, case.shape[k % len(case.shape)], cold, seed=k)
                    for k in range(args.sim_draws)]
    accel = sorted({s["accelerator"] for case in cases for s in case.real})
    users = sorted({f"{case.kind}: {_user(s['uid'])}" if case.kind == "process"
                    else f"{case.kind}: uid {s['uid']} inside" for case in cases for s in case.real})
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    console = Console(width=140)
    console.print(table(cases, f"Autoscaler reaction: {args.runs} runs per case, {when}"))
    console.print(
        f"machine: {machine()}; load average {load0[0]:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end (others share it); {time.monotonic() - t0:.0f} s")
    console.print(f"runpod SDK workers ({', '.join(users)}), accelerator: {', '.join(accel)}; "
                  "REQUEST_COUNT 1, "
                  "idleTimeout 1 s, FlashBoot off; p50/p95 nearest-rank over the runs")
    console.print(f"sim: runplane.simulate, {args.sim_draws} draws per case on the same trace, "
                  "cold starts measured in this run: "
                  + "; ".join(f"{case.name} {colds[case.endpoint_id].describe()}"
                              for case in cases))
    console.print("share of wait: the phase's sum over the runs / queued->taken's sum")
    if skip is not None:
        console.print(f"(container workers skipped: {skip})")
    if args.markdown:
        print(markdown(cases))


if __name__ == "__main__":
    main()
