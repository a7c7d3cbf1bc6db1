"""The states a worker is in, as RunPod names them, plus runplane's PARKED and EXITED.

One vocabulary for the broker (what the job protocol sees), the controller (what the
autoscaler counts), the stats and the API. A ``StrEnum``: members are the strings stored in
``workers.status`` and sent on the wire, so they compare equal to those strings.
"""

from __future__ import annotations

from enum import StrEnum


class WorkerState(StrEnum):
    INITIALIZING = "INITIALIZING"  # registered, no job-take yet
    IDLE = "IDLE"  # taking jobs, holding none
    RUNNING = "RUNNING"  # holding at least one job
    THROTTLED = "THROTTLED"  # wanted, but its capacity is taken (counted, never a worker's own)
    UNHEALTHY = "UNHEALTHY"  # fitness check failed, or heartbeats stopped
    OUTDATED = "OUTDATED"  # runs an older version of its endpoint (rolling update)
    PARKED = "PARKED"  # frozen by FlashBoot, resumed by the next job
    EXITED = "EXITED"  # retired; its credential is revoked


# The members under module-level names, for the hot paths (the autoscaler, the verdicts, the
# worker registry): looking up an enum's attribute costs ~100 ns on Python 3.11, a global
# ~15 ns. The same objects, not a second definition.
INITIALIZING, IDLE, RUNNING, THROTTLED, UNHEALTHY, OUTDATED, PARKED, EXITED = WorkerState
