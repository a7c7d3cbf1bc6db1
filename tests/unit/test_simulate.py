"""``runplane simulate``'s parts: seeded generators, trace files, timing specs, a run's
figures, the sweep's pick, the plots, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runplane.cli import app
from runplane.errors import Invalid
from runplane.simulate import generators, report, sweep
from runplane.simulate.engine import Candidate, Setup, simulate
from runplane.simulate.outcome import outcome_of, percentile
from runplane.simulate.timing import parse_duration
from runplane.simulate.trace import TraceJob, load_trace, make_trace, write_trace


@pytest.mark.parametrize("name", sorted(generators.GENERATORS))
def test_each_generator_is_deterministic_for_a_seed(name: str) -> None:
    a = generators.generate(name, 3600, seed=7)
    b = generators.generate(name, 3600, seed=7)
    c = generators.generate(name, 3600, seed=8)
    assert a.jobs == b.jobs and len(a.jobs) > 10
    assert a.jobs != c.jobs
    assert all(0 <= j.at <= 3600 and j.execution_s > 0 for j in a.jobs)
    assert [j.at for j in a.jobs] == sorted(j.at for j in a.jobs)


def test_generators_have_their_shape() -> None:
    spike = generators.spike(3600, seed=1, base=0.01, spike_jobs=50, spike_at_s=1000)
    ats = [j.at for j in spike.jobs]
    assert max(sum(1 for x in ats if a <= x <= a + 10) for a in ats) >= 50
    day = generators.diurnal(86400, seed=1)
    night = sum(1 for j in day.jobs if j.at < 3 * 3600)
    noon = sum(1 for j in day.jobs if 10.5 * 3600 <= j.at < 13.5 * 3600)
    assert noon > 5 * night


def test_trace_files_round_trip_and_bad_ones_are_refused(tmp_path: Path) -> None:
    trace = make_trace("t", [TraceJob(5.0, 1.5, "ep"), TraceJob(2.0, 0.5, "ep")])
    assert [j.at for j in trace.jobs] == [0.0, 3.0]  # sorted, starting at 0
    write_trace(trace, tmp_path / "t.csv")
    assert load_trace(tmp_path / "t.csv").jobs == trace.jobs
    (tmp_path / "t.json").write_text(json.dumps({"jobs": [{"at": 1, "duration_s": 2}]}))
    assert load_trace(tmp_path / "t.json").jobs == (TraceJob(0.0, 2.0),)
    for body, error in [("arrival_s,execution_s\n1,x\n", "not a number"),
                        ("arrival_s\n1\n", "needs one of execution_s"),
                        ("[]", "no jobs"), ('[{"arrival_s": -1, "execution_s": 1}]', ">= 0")]:
        (tmp_path / "bad.csv").write_text(body)
        with pytest.raises(Invalid, match=error):
            load_trace(tmp_path / "bad.csv")


@pytest.mark.parametrize("spec, kind", [("12", "fixed"), ("uniform:5,20", "uniform"),
                                         ("lognormal:12,0.3", "lognormal"),
                                         ("normal:3,1", "normal")])
def test_timing_specs(spec: str, kind: str) -> None:
    assert parse_duration(spec).kind == kind


@pytest.mark.parametrize("spec", ["", "gamma:1,2", "uniform:5", "uniform:9,1", "fixed:-1",
                                  "lognormal:0,1"])
def test_bad_timing_specs(spec: str) -> None:
    with pytest.raises(Invalid):
        parse_duration(spec)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 95) == 0.0
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([3.0], 50) == 3.0


SETUP = Setup(cold_start=parse_duration("10"), revival=parse_duration("0.05"), gpus=4,
              usd_per_gpu_hr=3.6, drain_s=60)


def test_one_job_from_zero_waits_one_cold_start_and_is_billed_until_parked() -> None:
    trace = make_trace("one", [TraceJob(0.0, 5.0)])
    o = outcome_of("x", simulate(trace, Candidate("x", idle_timeout_s=5), SETUP), 10)
    assert (o.jobs, o.cold_starts, o.peak_workers, o.unserved) == (1, 1, 1, 0)
    assert o.worst_s == pytest.approx(10.0)  # the cold start
    # Billed from start: 10 s starting, 5 s running, idle until the tick after 5 s idle.
    assert 20.0 <= o.gpu_s <= 21.0 and o.usd == pytest.approx(o.gpu_s / 1000)


def test_a_parked_worker_is_revived_for_the_next_job() -> None:
    trace = make_trace("two", [TraceJob(0.0, 1.0), TraceJob(100.0, 1.0)])
    ledger = simulate(trace, Candidate("x", idle_timeout_s=5, flashboot=True), SETUP)
    o = outcome_of("x", ledger, 10)
    assert (o.cold_starts, o.revivals) == (1, 1)
    assert sorted(j.taken_at - j.arrived_at for j in ledger.jobs)[0] == pytest.approx(0.05)
    assert [a for _, a, _, _ in ledger.scaled] == ["up", "park", "resume", "park"]


def test_the_sweep_picks_the_cheapest_candidate_meeting_the_target() -> None:
    trace = generators.steady(1800, seed=2, rate=0.1)
    base = Candidate("base", workers_max=4)
    grid = sweep.sweep_candidates(base, ["QUEUE_DELAY"], idle_timeouts=(1, 60), workers_min=(0,))
    runs = sweep.evaluate(trace, grid, SETUP, target_s=15)
    outcomes = [o for o, _ in runs]
    best = sweep.cheapest(outcomes, 15)
    assert best is not None and best.usd == min(o.usd for o in outcomes if sweep.meets(o, 15))
    assert "idle 1s" in best.label  # FlashBoot makes a short idle timeout cheap
    assert sweep.cheapest(outcomes, -1) is None


def test_plots_are_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    trace = generators.spike(600, seed=1, spike_at_s=300)
    runs = sweep.evaluate(trace, sweep.policy_candidates(Candidate("b", workers_max=4)),
                          SETUP, 10)
    a = report.plot_timeline(tmp_path / "a.png", "t", runs)
    b = report.plot_cost_vs_delay(tmp_path / "b.png", "t", [o for o, _ in runs], 10)
    for path in (a, b):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_prints_json_for_a_generated_trace(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, [
        "simulate", "--generate", "spike", "--duration", "600", "--cold-start", "8",
        "--policies", "QUEUE_DELAY,ADAPTIVE", "--json", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert [o["label"] for o in body["outcomes"]] == ["QUEUE_DELAY 4s", "ADAPTIVE 4s target"]
    assert body["coldStart"] == "fixed:8"


@pytest.mark.parametrize("args, error", [
    (["--generate", "nope"], "unknown generator"),
    ([], "give one trace"),
    (["--generate", "spike", "--cold-start", "8", "--policies", "FOO"], "unknown scaler FOO"),
    (["--generate", "spike"], "no cold starts measured"),
])
def test_the_command_says_what_is_wrong(tmp_path: Path, args: list[str], error: str) -> None:
    r = CliRunner().invoke(app, ["simulate", *args, "--data-dir", str(tmp_path)])
    assert r.exit_code == 1 and error in r.output, r.output
