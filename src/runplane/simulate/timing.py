"""How long a worker takes to start (process start to first job-take) and to revive (a parked
worker's thaw): a distribution given by the user, or measured on this installation.

Spec strings: ``12`` or ``fixed:12`` (always 12 s), ``uniform:5,20``, ``lognormal:MEDIAN,SIGMA``,
``normal:MEAN,SD`` (cut at 0), or a list of measurements (``empirical``, sampled uniformly).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from runplane.errors import Invalid


@dataclass(frozen=True)
class Duration:
    """A distribution of seconds; ``kind`` one of fixed, uniform, lognormal, normal, empirical."""

    kind: str
    params: tuple[float, ...]

    def sample(self, rng: random.Random) -> float:
        """One draw, in seconds (never negative)."""
        p = self.params
        if self.kind == "fixed":
            return p[0]
        if self.kind == "uniform":
            return rng.uniform(p[0], p[1])
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(p[0]), p[1])
        if self.kind == "normal":
            return max(0.0, rng.gauss(p[0], p[1]))
        return rng.choice(p)

    @property
    def typical_s(self) -> float:
        """The median, roughly: what a table says this distribution is."""
        p = self.params
        if self.kind == "uniform":
            return (p[0] + p[1]) / 2
        if self.kind == "empirical":
            return sorted(p)[len(p) // 2]
        return p[0]

    def describe(self) -> str:
        """The spec string that gives this distribution back."""
        if self.kind == "empirical":
            return f"measured ({len(self.params)} starts, median {self.typical_s:.2f}s)"
        return f"{self.kind}:{','.join(f'{v:g}' for v in self.params)}"


def empirical(values: Sequence[float]) -> Duration:
    """Sample from measurements."""
    if not values:
        raise Invalid("no measurements to sample from")
    return Duration("empirical", tuple(float(v) for v in values))


_ARITY = {"fixed": 1, "uniform": 2, "lognormal": 2, "normal": 2}


def parse_duration(spec: str) -> Duration:
    """A ``Duration`` from a spec string (the module docstring); ``Invalid`` if malformed."""
    kind, _, rest = spec.strip().partition(":")
    if not rest:
        kind, rest = "fixed", kind
    kind = kind.lower()
    if kind not in _ARITY:
        raise Invalid(f"unknown distribution {kind!r} (use {', '.join(_ARITY)})")
    try:
        params = tuple(float(v) for v in rest.split(","))
    except ValueError:
        raise Invalid(f"{spec!r}: the parameters must be numbers") from None
    if len(params) != _ARITY[kind] or any(v < 0 or v != v for v in params):
        raise Invalid(f"{spec!r}: {kind} takes {_ARITY[kind]} number(s) >= 0")
    if kind == "uniform" and params[0] > params[1]:
        raise Invalid(f"{spec!r}: uniform:LOW,HIGH with LOW <= HIGH")
    if kind == "lognormal" and params[0] <= 0:
        raise Invalid(f"{spec!r}: the median must be > 0")
    return Duration(kind, params)
