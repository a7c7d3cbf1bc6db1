"""What one simulated run measured, as the figures a person compares candidates by."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.simulate.world import Ledger


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats
    return ordered[min(len(ordered), int(rank)) - 1]


@dataclass(frozen=True)
class Outcome:
    """One candidate on one trace. Delays are queue waits (arrival to job-take), seconds."""

    label: str
    jobs: int
    gpu_s: float
    usd: float
    cold_starts: int
    revivals: int
    p50_s: float
    p95_s: float
    p99_s: float
    worst_s: float
    over_target: int  # jobs that waited longer than the delay target
    peak_workers: int
    unserved: int  # jobs never taken (workersMax 0, or a run cut short)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the API and ``--json``."""
        return {
            "label": self.label, "jobs": self.jobs, "gpuSeconds": round(self.gpu_s, 1),
            "costUsd": round(self.usd, 4), "coldStarts": self.cold_starts,
            "revivals": self.revivals, "delayP50S": round(self.p50_s, 3),
            "delayP95S": round(self.p95_s, 3), "delayP99S": round(self.p99_s, 3),
            "delayWorstS": round(self.worst_s, 3), "overTarget": self.over_target,
            "peakWorkers": self.peak_workers, "unserved": self.unserved,
        }


def outcome_of(label: str, ledger: Ledger, target_s: float) -> Outcome:
    """The figures of a run's ledger; ``target_s`` is the delay target counted against."""
    delays = [j.taken_at - j.arrived_at for j in ledger.jobs if j.taken_at is not None]
    return Outcome(
        label=label, jobs=len(ledger.jobs), gpu_s=ledger.gpu_s, usd=ledger.usd,
        cold_starts=ledger.cold_starts, revivals=ledger.revivals,
        p50_s=percentile(delays, 50), p95_s=percentile(delays, 95),
        p99_s=percentile(delays, 99), worst_s=max(delays, default=0.0),
        over_target=sum(1 for d in delays if d > target_s), peak_workers=ledger.peak_live,
        unserved=len(ledger.jobs) - len(delays))


def delays_over_time(ledger: Ledger) -> tuple[list[float], list[float]]:
    """(arrival times, queue waits) of the jobs that were taken, for plots."""
    taken = [j for j in ledger.jobs if j.taken_at is not None]
    start = min((j.arrived_at for j in ledger.jobs), default=0.0)
    return ([j.arrived_at - start for j in taken],
            [j.taken_at - j.arrived_at for j in taken])  # type: ignore[operator]
