"""The controller's two shared records, with one owner: the workers it tracks (``Tracked``, by
id) and what it says about each endpoint (``EndpointState``, by id).

``Records`` is held by the ``Controller`` alone, privately, and written only through its
methods: ``track`` a worker it started or adopted (``controller.restart``) and ``forget`` it
once its exit is recorded (``controller.exits``), both with the worker's placement in
``Allocations``; ``state_of`` and ``keep_states`` for the tick's word on each endpoint. The
controller's parts (FlashBoot, Exits, Revivals) read the workers through ``tracked``, a
live read-only mapping (no copy: they read it every tick), and update the fields of the
workers they act on. Readers outside the controller (observability, the machines report, the
simulator, the API) get ``Readings``: answers and snapshots, never a record. ``/metrics`` and
the tick are frequent, so each reading is O(1) or one pass, and copies nothing it need not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from runplane.controller.allocations import Allocations
from runplane.controller.state import EndpointState, Tracked


@dataclass(frozen=True)
class WorkerHold:
    """What a tracked worker holds on its machine, as a snapshot (the machines report)."""

    id: str
    endpoint_id: str
    machine_id: str
    gpu_indices: tuple[int, ...]
    parked: bool


class Readings(Protocol):
    """What the controller's records answer to readers outside it (``Controller.readings``)."""

    def endpoint_reason(self, endpoint_id: str) -> str | None:
        """Why the endpoint's jobs wait, or None (the endpoint, /health, queued jobs)."""

    def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """``reason`` and ``throttled`` (RunPod's THROTTLED workers) when set (/health)."""

    def desired_workers(self, endpoint_id: str) -> int:
        """Workers the autoscaler wants for the endpoint now (0 before its first pass)."""

    def throttled_workers(self) -> Iterator[tuple[str, int]]:
        """(endpoint id, THROTTLED workers) for each endpoint that has some."""

    def worker_holds(self) -> list[WorkerHold]:
        """What each tracked worker holds where."""

    def parked_since(self, worker_id: str) -> float | None:
        """When a tracked worker was parked; None while live or when not tracked."""


class Records:
    """See the module docstring; implements ``Readings``."""

    def __init__(self, allocations: Allocations) -> None:
        self._allocations = allocations
        self._tracked: dict[str, Tracked] = {}
        self.tracked: Mapping[str, Tracked] = MappingProxyType(self._tracked)
        self._states: dict[str, EndpointState] = {}

    # -- writes (the controller's only) ---------------------------------------------------

    def track(self, w: Tracked) -> None:
        """``w`` is the controller's from now on, holding its placement until ``forget``."""
        self._tracked[w.id] = w
        self._allocations.hold_worker(w.id, w.placement)

    def forget(self, worker_id: str) -> None:
        """The worker is gone: no longer tracked, its placement free."""
        self._tracked.pop(worker_id, None)
        self._allocations.release_worker(worker_id)

    def state_of(self, endpoint_id: str) -> EndpointState:
        """The endpoint's state, for the tick to write (created on its first pass)."""
        state = self._states.get(endpoint_id)
        if state is None:
            state = self._states[endpoint_id] = EndpointState()
        return state

    def keep_states(self, endpoint_ids: Collection[str]) -> None:
        """Drop the states of endpoints not in ``endpoint_ids`` (deleted)."""
        for gone in [ep for ep in self._states if ep not in endpoint_ids]:
            del self._states[gone]

    # -- readings -------------------------------------------------------------------------

    def endpoint_reason(self, endpoint_id: str) -> str | None:
        """See ``Readings``."""
        state = self._states.get(endpoint_id)
        return state.reason if state else None

    def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """See ``Readings``."""
        state = self._states.get(endpoint_id)
        out: dict[str, Any] = {}
        if state is not None and state.reason:
            out["reason"] = state.reason
        if state is not None and state.throttled:
            out["throttled"] = state.throttled
        return out

    def desired_workers(self, endpoint_id: str) -> int:
        """See ``Readings``."""
        state = self._states.get(endpoint_id)
        return state.desired if state is not None else 0

    def throttled_workers(self) -> Iterator[tuple[str, int]]:
        """See ``Readings``: a generator over the states, no copy."""
        return ((ep, st.throttled) for ep, st in self._states.items() if st.throttled)

    def worker_holds(self) -> list[WorkerHold]:
        """See ``Readings``: snapshots, one pass over the tracked workers."""
        return [WorkerHold(w.id, w.endpoint_id, w.placement.machine_id,
                           w.placement.gpu_indices, w.parked_at is not None)
                for w in self._tracked.values()]

    def parked_since(self, worker_id: str) -> float | None:
        """See ``Readings``."""
        w = self._tracked.get(worker_id)
        return w.parked_at if w is not None else None
