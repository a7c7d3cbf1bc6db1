"""The simulator's reaction to a job (the prediction benchmarks/reaction.py puts beside the
real one): when it decides to start a worker and how long the job waits, from zero workers
and from one busy worker, under RunPod's two rules."""

from __future__ import annotations

import pytest

from runplane.simulate.engine import START, Candidate, Setup, simulate
from runplane.simulate.timing import parse_duration
from runplane.simulate.trace import Trace, TraceJob

COLD_S = 2.5


def _setup() -> Setup:
    return Setup(cold_start=parse_duration(f"{COLD_S}"), revival=parse_duration("0.05"), gpus=2,
                 drain_s=30)


def _taken_s(trace: Trace, candidate: Candidate) -> tuple[list[float], list[float]]:
    """(when each scale-up was decided, each job's queue wait), seconds into the trace."""
    ledger = simulate(trace, candidate, _setup())
    ups = [t for t, action, _n, _why in ledger.scaled if action == "up"]
    return ups, [j.taken_at - j.arrived_at for j in ledger.jobs]  # type: ignore[operator]


@pytest.mark.parametrize(("scaler", "value"), [("REQUEST_COUNT", 1), ("QUEUE_DELAY", 4)])
def test_from_zero_a_worker_is_decided_at_once_and_the_job_waits_its_cold_start(
        scaler: str, value: int) -> None:
    at = 10.3  # both rules start a worker at once for a job with no worker at all
    candidate = Candidate("c", scaler, value, idle_timeout_s=1, workers_max=1, flashboot=False)
    ups, waits = _taken_s(Trace("one", (TraceJob(at, 0.01),)), candidate)
    assert ups == [pytest.approx(at)]
    assert waits == [pytest.approx(COLD_S)]


def _busy(scaler: str, value: int) -> tuple[float, list[float], list[float]]:
    b_at = 20.4  # A at 20.0 holds the workersMin worker (ready long before) for 60 s
    candidate = Candidate("c", scaler, value, idle_timeout_s=1, workers_min=1,
                          workers_max=2, flashboot=False)
    ups, waits = _taken_s(Trace("busy", (TraceJob(20.0, 60.0), TraceJob(b_at, 0.01))),
                          candidate)
    return b_at, ups, waits


def test_from_one_busy_worker_request_count_starts_a_second_when_the_job_comes() -> None:
    b_at, ups, waits = _busy("REQUEST_COUNT", 1)
    assert ups == [pytest.approx(0.0), pytest.approx(b_at)]  # workersMin's, then B's
    assert waits == [pytest.approx(0.0), pytest.approx(COLD_S)]


def test_from_one_busy_worker_queue_delay_waits_out_its_delay_on_the_ticks() -> None:
    b_at, ups, waits = _busy("QUEUE_DELAY", 2)
    assert len(ups) == 2 and ups[0] == pytest.approx(0.0)
    # The first 1 s tick after B waited more than 2 s.
    assert 2.0 < ups[1] - b_at <= 3.0 + 1e-6
    assert waits[1] == pytest.approx(ups[1] - b_at + COLD_S)


def test_the_virtual_clock_starts_at_the_trace_origin() -> None:
    # The benchmark places jobs at absolute trace times (a Trace as given, not shifted).
    candidate = Candidate("c", "REQUEST_COUNT", 1, idle_timeout_s=1, workers_max=1,
                          flashboot=False)
    ledger = simulate(Trace("late", (TraceJob(5.0, 0.01),)), candidate, _setup())
    assert ledger.jobs[0].arrived_at == pytest.approx(START + 5.0)
