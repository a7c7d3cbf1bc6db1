"""What the controller keeps in memory about workers and endpoints, and who it tells."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runplane.controller.scheduler import Placement

log = logging.getLogger("runplane.controller")


@dataclass
class Tracked:
    """A worker this controller started (in memory; the store has the durable part)."""

    id: str
    endpoint_id: str
    user_id: str
    version: int
    started_at: float
    placement: Placement
    took: bool = False
    stop_reason: str | None = None  # set once we asked it to stop
    failure: str | None = None  # counted against the breaker (once)
    # FlashBoot (controller/flashboot.py): when it was parked (None while live), whether a
    # resume is under way, and the start of its open billed interval (None while parked).
    parked_at: float | None = None
    resuming: bool = False
    billed_from: float | None = None

    def __post_init__(self) -> None:
        if self.billed_from is None:
            self.billed_from = self.started_at


@dataclass(frozen=True)
class Blocked:
    """Why a worker could not be started; ``transient`` when it will start once capacity
    frees up (as opposed to a template or placement a person has to fix)."""

    reason: str
    transient: bool = False


@dataclass
class EndpointState:
    """What the controller says about an endpoint: ``reason`` and ``throttled`` are shown in
    the endpoint and /health (``Controller.endpoint_status``), ``desired`` in the metrics."""

    reason: str | None = None  # why jobs wait (no fit, crash loop, bad image); None when fine
    # Workers wanted but not running because their capacity is taken or the breaker is
    # backing off: RunPod's THROTTLED state (they start by themselves once that clears).
    throttled: int = 0
    decision: str = ""
    desired: int = 0


class ControllerObserver(Protocol):
    """Told what the controller does (runplane.observability). Called synchronously from the
    tick: every method must be O(1) and do no I/O; exceptions are logged, not raised."""

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        """``action`` "up" (``workers`` started) or "down" (one stopped); the decision's reason."""

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        """A worker this controller started took its first job: start to first job-take."""

    def ticked(self, now: float) -> None:
        """A reconcile tick ended (a clock to sample gauges on)."""


class Observers:
    """The controller's observers: each event reaches every one; one that fails is logged
    and the others are still told. Falsy while there are none."""

    def __init__(self) -> None:
        self._all: list[ControllerObserver] = []

    def add(self, observer: ControllerObserver) -> None:
        """Tell ``observer`` every event from now on."""
        self._all.append(observer)

    def __bool__(self) -> bool:
        return bool(self._all)

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        """See ``ControllerObserver.scaled``."""
        self._each(lambda o: o.scaled(endpoint_id, action, workers, reason))

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        """See ``ControllerObserver.worker_ready``."""
        self._each(lambda o: o.worker_ready(endpoint_id, worker_id, cold_start_s))

    def ticked(self, now: float) -> None:
        """See ``ControllerObserver.ticked``."""
        self._each(lambda o: o.ticked(now))

    def _each(self, call: Callable[[ControllerObserver], None]) -> None:
        for o in self._all:
            try:
                call(o)
            except Exception:  # noqa: BLE001 - observing must never break reconciling
                log.exception("controller observer failed")
