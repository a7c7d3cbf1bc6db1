"""What a load-balancing worker's health check says (RunPod's rules). Pure.

``GET <HEALTH_CHECK_PATH>`` on ``PORT_HEALTH``: 200 healthy (routable), 204 initializing
(not yet), anything else unhealthy. No answer at all (connection refused, timeout) means
still starting until the worker has answered once, and a failure after that. One failure
takes a worker out of rotation; ``unhealthy_after`` failures in a row make it UNHEALTHY, and
the controller replaces it. Cold start is RunPod's: from the first 204 to the first 200.
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY = "healthy"
INITIALIZING = "initializing"
UNHEALTHY = "unhealthy"


def classify(status: int | None) -> str:
    """A health check's HTTP status (None: no answer) as HEALTHY, INITIALIZING or UNHEALTHY."""
    if status == 200:
        return HEALTHY
    if status == 204:
        return INITIALIZING
    return UNHEALTHY


@dataclass(slots=True)
class ProbeState:
    """What the checks of one worker have shown so far."""

    answered: bool = False  # it has answered a check at least once
    healthy: bool = False  # its last check said 200
    failures: int = 0  # failed checks in a row
    first_initializing_at: float | None = None
    ready_at: float | None = None  # its first 200


@dataclass(frozen=True, slots=True)
class Verdict:
    """What changed with one check: ``became_ready`` (its first 200; ``cold_start_s`` from
    its first 204, None without one), ``initializing`` (its first 204), ``unhealthy`` (the
    failure that reaches the limit; ``why`` says what it answered)."""

    became_ready: bool = False
    cold_start_s: float | None = None
    initializing: bool = False
    unhealthy: bool = False
    why: str = ""


QUIET = Verdict()


def judge(state: ProbeState, status: int | None, now: float, unhealthy_after: int,
          what: str = "") -> Verdict:
    """Fold one check's answer (``status``; None for none, ``what`` saying why) into
    ``state`` and say what changed."""
    kind = classify(status)
    if status is None and not state.answered:
        return QUIET  # still starting: the controller's startup timeout covers it
    state.answered = True
    if kind == HEALTHY:
        state.healthy, state.failures = True, 0
        if state.ready_at is None:
            state.ready_at = now
            first = state.first_initializing_at
            return Verdict(became_ready=True,
                           cold_start_s=None if first is None else max(0.0, now - first))
        return QUIET
    state.healthy = False
    if kind == INITIALIZING:
        state.failures = 0
        if state.first_initializing_at is None:
            state.first_initializing_at = now
            return Verdict(initializing=True)
        return QUIET
    state.failures += 1
    if state.failures == unhealthy_after:
        answer = f"answered {status}" if status is not None else (what or "did not answer")
        return Verdict(unhealthy=True, why=f"health check {answer} "
                                           f"{state.failures} time(s) in a row")
    return QUIET
