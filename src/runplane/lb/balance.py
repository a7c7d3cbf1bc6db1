"""Which worker takes a request: the least requests in flight, honouring affinity. Pure.

A worker is READY (healthy, routable), STARTING (not healthy yet, or being resumed), PARKED
(frozen by FlashBoot) or OUT (unhealthy, leaving). Without affinity, or with a soft one that
cannot be met, the READY worker with the fewest requests in flight takes it (ties broken by
``turn``, which the caller advances per request, so equal workers take turns). A strict
affinity takes only its worker: WAIT while that worker is not READY (RESUME first when it is
parked and the mode is strict-resume), GONE when the endpoint has no such worker (with
``restart`` set for strict-resume: the controller may start a scaled-down worker again under
that id, ``controller/revive.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runplane.lb.affinity import STRICT_RESUME, Affinity

READY = "ready"
STARTING = "starting"
PARKED = "parked"
OUT = "out"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One worker of the endpoint as the balancer sees it."""

    id: str
    state: str
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class Choice:
    """``worker_id`` takes it; else ``wait`` (for a worker to become ready: after resuming
    ``resume`` when set), or ``gone`` (the strictly named worker does not exist; unless the
    worker ``restart`` can be started again)."""

    worker_id: str | None = None
    wait: bool = False
    resume: str | None = None
    gone: bool = False
    restart: str | None = None


WAIT = Choice(wait=True)
GONE = Choice(gone=True)


def choose(workers: Sequence[Candidate], affinity: Affinity | None, turn: int = 0) -> Choice:
    """The worker for one request (see the module docstring)."""
    if affinity is not None:
        named = next((w for w in workers if w.id == affinity.worker_id), None)
        if named is not None and named.state == READY:
            return Choice(named.id)
        if affinity.strict:
            if named is None or named.state == OUT:
                return (Choice(gone=True, restart=affinity.worker_id)
                        if affinity.mode == STRICT_RESUME else GONE)
            if named.state == PARKED and affinity.mode == STRICT_RESUME:
                return Choice(wait=True, resume=named.id)
            return WAIT
    best: Candidate | None = None
    ties = 0
    for w in workers:
        if w.state != READY:
            continue
        if best is None or w.in_flight < best.in_flight:
            best, ties = w, 1
        elif w.in_flight == best.in_flight:
            ties += 1
    if best is None:
        return WAIT
    if ties > 1:  # equal load: take turns rather than always the first
        k = turn % ties
        for w in workers:
            if w.state == READY and w.in_flight == best.in_flight:
                if k == 0:
                    return Choice(w.id)
                k -= 1
    return Choice(best.id)
