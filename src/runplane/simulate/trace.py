"""A job trace: when each job arrived, how long it ran, and for which endpoint.

Files are CSV with a header (``arrival_s``, ``execution_s``, optional ``endpoint``; ``at``
and ``duration_s`` are accepted too) or JSON (a list of objects with the same keys, or
``{"jobs": [...]}``). Arrival times are seconds from any origin; the trace starts at its
first job.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runplane.errors import Invalid

_ARRIVAL = ("arrival_s", "at", "arrival")
_EXECUTION = ("execution_s", "duration_s", "execution")


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job: arrived ``at`` seconds into the trace, ran ``execution_s`` seconds."""

    at: float
    execution_s: float
    endpoint: str = ""


@dataclass(frozen=True)
class Trace:
    """Jobs sorted by arrival, the first at 0; ``name`` says where they came from."""

    name: str
    jobs: tuple[TraceJob, ...]

    @property
    def duration_s(self) -> float:
        """From the first arrival to the last."""
        return self.jobs[-1].at if self.jobs else 0.0

    def endpoints(self) -> list[str]:
        """The endpoints named in the trace, in order of first appearance."""
        return list(dict.fromkeys(j.endpoint for j in self.jobs))

    def of(self, endpoint: str) -> Trace:
        """Only ``endpoint``'s jobs."""
        return make_trace(f"{self.name}:{endpoint}", [j for j in self.jobs
                                                      if j.endpoint == endpoint])


def make_trace(name: str, jobs: Iterable[TraceJob]) -> Trace:
    """A trace of ``jobs`` in arrival order, shifted to start at 0."""
    ordered = sorted(jobs, key=lambda j: j.at)
    origin = ordered[0].at if ordered else 0.0
    return Trace(name, tuple(TraceJob(j.at - origin, j.execution_s, j.endpoint)
                             for j in ordered))


def _number(row: Mapping[str, Any], keys: tuple[str, ...], where: str) -> float:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            try:
                value = float(row[key])
            except (TypeError, ValueError):
                raise Invalid(f"{where}: {key} is not a number: {row[key]!r}") from None
            if value < 0 or value != value:
                raise Invalid(f"{where}: {key} must be a number >= 0, not {row[key]!r}")
            return value
    raise Invalid(f"{where}: needs one of {', '.join(keys)}")


def _job(row: Mapping[str, Any], where: str) -> TraceJob:
    if not isinstance(row, Mapping):
        raise Invalid(f"{where}: a job is an object with arrival_s and execution_s")
    return TraceJob(_number(row, _ARRIVAL, where), _number(row, _EXECUTION, where),
                    str(row.get("endpoint") or ""))


def load_trace(path: Path) -> Trace:
    """Read a CSV or JSON trace file (see the module docstring)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise Invalid(f"cannot read trace {path}: {err.strerror or err}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise Invalid(f"{path}: not JSON: {err}") from None
        rows = data.get("jobs") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise Invalid(f"{path}: expected a list of jobs or {{\"jobs\": [...]}}")
        jobs = [_job(r, f"{path} job {i + 1}") for i, r in enumerate(rows)]
    else:
        reader = csv.DictReader(text.splitlines())
        jobs = [_job(r, f"{path} line {i + 2}") for i, r in enumerate(reader)]
    if not jobs:
        raise Invalid(f"{path}: the trace has no jobs")
    return make_trace(path.stem, jobs)


def write_trace(trace: Trace, path: Path) -> None:
    """Write ``trace`` as CSV (the format ``load_trace`` reads)."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["arrival_s", "execution_s", "endpoint"])
        for j in trace.jobs:
            out.writerow([f"{j.at:.3f}", f"{j.execution_s:.3f}", j.endpoint])
