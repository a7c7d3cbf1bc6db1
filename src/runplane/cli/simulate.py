"""``runplane simulate``: what-if autoscaling on a trace (docs/autoscaling.md)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runplane.cli.options import ConfigFile, DataDir
from runplane.config import load_settings
from runplane.errors import Invalid
from runplane.simulate import generators, history, report, sweep
from runplane.simulate.engine import Candidate, Setup
from runplane.simulate.timing import Duration, empirical, parse_duration
from runplane.simulate.trace import Trace, load_trace
from runplane.store.db import make_engine, upgrade

out = Console()
err = Console(stderr=True)

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    """``24h``, ``90m``, ``3600`` -> seconds."""
    m = _SINCE.match(text.strip())
    if not m:
        raise Invalid(f"--since {text!r}: use a number with s, m, h or d (24h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def simulate(
    trace_file: Annotated[Path | None, typer.Argument(
        help="A CSV or JSON trace (arrival_s, execution_s[, endpoint]); all its jobs are "
             "replayed as one endpoint's.")] = None,
    generate: Annotated[str | None, typer.Option(
        help="A generated trace instead: steady, diurnal, bursty or spike.")] = None,
    duration: Annotated[float | None, typer.Option(
        help="Generated trace length, seconds (default 3600; diurnal 86400).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator and of the timings.")] = 1,
    endpoint: Annotated[str | None, typer.Option(
        help="Replay this endpoint's own jobs from the store (with --since).")] = None,
    since: Annotated[str, typer.Option(help="How far back --endpoint reads: 24h, 90m.")] = "24h",
    policies: Annotated[str, typer.Option(
        help="Scalers to compare, comma-separated.")] = ",".join(sweep.SCALER_TYPES),
    scaler_value: Annotated[int, typer.Option(
        help="QUEUE_DELAY seconds / ADAPTIVE delay target (the other scalers run at 1 job "
             "per worker; --sweep tries several).")] = 4,
    idle_timeout: Annotated[int, typer.Option(help="idleTimeout, seconds.")] = 5,
    workers_min: Annotated[int, typer.Option(help="workersMin.")] = 0,
    workers_max: Annotated[int, typer.Option(help="workersMax.")] = 3,
    flashboot: Annotated[bool, typer.Option(help="FlashBoot on the endpoint.")] = True,
    cold_start: Annotated[str, typer.Option(
        help="Cold start seconds: 12, uniform:5,20, lognormal:12,0.3, normal:12,2, or "
             "'measured' (this installation's workers' start -> first job-take; the "
             "endpoint's with --endpoint, if any).")] = "measured",
    revival: Annotated[str, typer.Option(
        help="FlashBoot revival seconds (the same forms but 'measured').")] = "0.05",
    target: Annotated[float, typer.Option(help="Queue-wait target (p95), seconds.")] = 10.0,
    do_sweep: Annotated[bool, typer.Option("--sweep", help=(
        "Search idle timeout, scaler value and workersMin for the cheapest settings "
        "meeting --target; the table shows the 15 best."))] = False,
    usd_per_gpu_hr: Annotated[float | None, typer.Option(
        help="Price; default: the config's machine cost_per_gpu_hr, else $1.")] = None,
    gpus: Annotated[int | None, typer.Option(
        help="GPUs of the simulated machine (default: workersMax).")] = None,
    plots: Annotated[Path | None, typer.Option(help="Write PNG plots into this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Replay a job trace through runplane's autoscaler and compare scalers and settings."""
    try:
        settings = load_settings(data_dir=data_dir, config_file=config)
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        trace = _trace(trace_file, generate, duration, seed, endpoint, since, engine)
        cold = _timing(cold_start, engine, endpoint)
        base = Candidate("base", "QUEUE_DELAY", scaler_value, idle_timeout, workers_min,
                         workers_max, flashboot)
        wanted = [p.strip().upper() for p in policies.split(",") if p.strip()]
        unknown = [p for p in wanted if p not in sweep.SCALER_TYPES]
        if unknown:
            raise Invalid(f"unknown scaler {', '.join(unknown)} (use {', '.join(sweep.SCALER_TYPES)})")
        candidates = (sweep.sweep_candidates(base, wanted) if do_sweep
                      else sweep.policy_candidates(base, wanted))
        price = usd_per_gpu_hr if usd_per_gpu_hr is not None else (
            settings.machine.cost_per_gpu_hr or 1.0)
        setup = Setup(cold_start=cold, revival=parse_duration(revival),
                      gpus=gpus or max(workers_max, 1), usd_per_gpu_hr=price,
                      controller=settings.controller, seed=seed)
    except Invalid as exc:
        _fail(str(exc))
    if not trace.jobs:
        _fail(f"{trace.name}: no jobs to replay")
    t0 = time.perf_counter()
    with err.status(f"simulating {len(candidates)} candidate(s) on {len(trace.jobs)} jobs..."):
        runs = sweep.evaluate(trace, candidates, setup, target)
    elapsed = time.perf_counter() - t0
    outcomes = [o for o, _ in runs]
    best = sweep.cheapest(outcomes, target) if do_sweep else None
    if as_json:
        out.print_json(json.dumps({
            "trace": trace.name, "jobs": len(trace.jobs), "durationS": trace.duration_s,
            "coldStart": cold.describe(), "usdPerGpuHr": price, "targetS": target,
            "outcomes": [o.as_dict() for o in outcomes],
            "best": best.as_dict() if best else None}))
    else:
        hours = trace.duration_s / 3600 * len(candidates)
        title = (f"{trace.name}: {len(trace.jobs)} jobs over {trace.duration_s / 3600:.2f} h; "
                 f"cold start {cold.describe()}; ${price:g}/GPU-h")
        if do_sweep:
            outcomes = sorted(outcomes, key=lambda o: (not sweep.meets(o, target), o.usd))[:15]
        out.print(report.table(title, outcomes, target, best))
        out.print(f"[dim]{hours:.1f} simulated hours in {elapsed:.1f} s[/]")
        if do_sweep:
            out.print(f"cheapest meeting p95 <= {target:g}s: " + (best.label if best else
                      "none (raise workersMax or the target)"))
    if plots is not None:
        _plots(plots, trace, runs, outcomes, target)


def _trace(trace_file: Path | None, generate: str | None, duration: float | None, seed: int,
           endpoint: str | None, since: str, engine: object) -> Trace:
    given = [x for x in (trace_file, generate, endpoint) if x is not None]
    if len(given) != 1:
        raise Invalid("give one trace: a file, --generate NAME, or --endpoint ID")
    if trace_file is not None:
        return load_trace(trace_file)
    if generate is not None:
        try:
            return generators.generate(generate, duration, seed)
        except KeyError:
            raise Invalid(f"unknown generator {generate!r} "
                          f"(use {', '.join(generators.GENERATORS)})") from None
    return history.endpoint_trace(engine, str(endpoint), time.time() - parse_since(since))  # type: ignore[arg-type]


def _timing(spec: str, engine: object, endpoint: str | None) -> Duration:
    if spec.strip().lower() != "measured":
        return parse_duration(spec)
    measured = history.measured_cold_starts(engine, endpoint)  # type: ignore[arg-type]
    if not measured and endpoint is not None:
        measured = history.measured_cold_starts(engine)  # type: ignore[arg-type]
    if not measured:
        raise Invalid("no cold starts measured on this installation yet: give --cold-start "
                      "(for example lognormal:12,0.3)")
    return empirical(measured)


def _plots(folder: Path, trace: Trace, runs: list, outcomes: list, target: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", trace.name).strip("-")
        a = report.plot_timeline(folder / f"{stem}-timeline.png", trace.name, runs[:6])
        b = report.plot_cost_vs_delay(folder / f"{stem}-cost-vs-p95.png", trace.name,
                                      outcomes, target)
    except RuntimeError as exc:
        _fail(str(exc))
    err.print(f"plots: {a} {b}")
