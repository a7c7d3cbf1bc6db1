"""Seeded synthetic traces, so docs and tests have reproducible cases. The same name, length
and seed give the same jobs on every machine (``random.Random`` is specified to)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from runplane.simulate.trace import Trace, TraceJob, make_trace


def _execution(rng: random.Random, mean_s: float) -> float:
    """Execution times: lognormal around ``mean_s`` (sigma 0.5), as inference jobs vary."""
    sigma = 0.5
    return rng.lognormvariate(math.log(mean_s) - sigma * sigma / 2, sigma)


def _poisson(rng: random.Random, rate: Callable[[float], float], peak: float,
             duration_s: float, mean_s: float) -> list[TraceJob]:
    """A Poisson process of time-varying ``rate`` (jobs/s, at most ``peak``), by thinning."""
    jobs: list[TraceJob] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            return jobs
        if rng.random() * peak <= rate(t):
            jobs.append(TraceJob(t, _execution(rng, mean_s)))


def steady(duration_s: float = 3600.0, seed: int = 1, rate: float = 0.2,
           mean_s: float = 3.0) -> Trace:
    """Poisson arrivals at a constant ``rate`` jobs/s."""
    rng = random.Random(f"steady-{seed}")
    return make_trace(f"steady(seed={seed})",
                      _poisson(rng, lambda t: rate, rate, duration_s, mean_s))


def diurnal(duration_s: float = 86400.0, seed: int = 1, peak: float = 0.5,
            trough: float = 0.02, mean_s: float = 3.0, period_s: float = 86400.0) -> Trace:
    """Poisson arrivals whose rate follows a day: ``trough`` at night, ``peak`` mid-day."""
    rng = random.Random(f"diurnal-{seed}")

    def rate(t: float) -> float:
        return trough + (peak - trough) * (1 - math.cos(2 * math.pi * t / period_s)) / 2

    return make_trace(f"diurnal(seed={seed})", _poisson(rng, rate, peak, duration_s, mean_s))


def bursty(duration_s: float = 3600.0, seed: int = 1, rate_on: float = 2.0,
           on_s: float = 60.0, off_s: float = 300.0, mean_s: float = 3.0) -> Trace:
    """On/off traffic: bursts of ``rate_on`` jobs/s lasting ~``on_s``, silent ~``off_s``
    between (both exponentially distributed)."""
    rng = random.Random(f"bursty-{seed}")
    jobs, t = [], 0.0
    while t < duration_s:
        t += rng.expovariate(1 / off_s)
        end = min(t + rng.expovariate(1 / on_s), duration_s)
        while True:
            t += rng.expovariate(rate_on)
            if t >= end:
                break
            jobs.append(TraceJob(t, _execution(rng, mean_s)))
        t = end
    return make_trace(f"bursty(seed={seed})", jobs)


def spike(duration_s: float = 3600.0, seed: int = 1, base: float = 0.05,
          spike_jobs: int = 60, spike_at_s: float | None = None, spike_s: float = 10.0,
          mean_s: float = 3.0) -> Trace:
    """Light Poisson traffic and one spike of ``spike_jobs`` jobs within ``spike_s``."""
    rng = random.Random(f"spike-{seed}")
    jobs = _poisson(rng, lambda t: base, base, duration_s, mean_s)
    at = duration_s / 2 if spike_at_s is None else spike_at_s
    jobs += [TraceJob(at + rng.uniform(0, spike_s), _execution(rng, mean_s))
             for _ in range(spike_jobs)]
    return make_trace(f"spike(seed={seed})", jobs)


GENERATORS: dict[str, Callable[..., Trace]] = {
    "steady": steady, "diurnal": diurnal, "bursty": bursty, "spike": spike,
}


def generate(name: str, duration_s: float | None = None, seed: int = 1) -> Trace:
    """The generator ``name``'s trace; its own default length unless ``duration_s``."""
    gen = GENERATORS.get(name)
    if gen is None:
        raise KeyError(name)
    return gen(seed=seed) if duration_s is None else gen(duration_s=duration_s, seed=seed)
