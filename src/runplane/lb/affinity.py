"""RunPod's worker affinity: the ``X-Runpod-Worker-Id`` request header.

``<id>`` prefers that worker (any other serves when it cannot), ``strict <id>`` only that
worker (the request waits for it within the usual limit), ``strict-resume <id>`` only that
worker, woken first when it is parked (FlashBoot).
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER = "x-runpod-worker-id"
PREFER = "prefer"
STRICT = "strict"
STRICT_RESUME = "strict-resume"
# Worker ids are runplane's (letters and digits); anything longer is not one.
_MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Affinity:
    """A request's wish for one worker: ``mode`` is PREFER, STRICT or STRICT_RESUME."""

    worker_id: str
    mode: str = PREFER

    @property
    def strict(self) -> bool:
        """Only that worker may serve the request."""
        return self.mode != PREFER


class BadAffinity(ValueError):
    """The header names no worker in a form RunPod's load balancer accepts."""


def parse(value: str | None) -> Affinity | None:
    """The header's affinity; None when absent or blank; ``BadAffinity`` when malformed."""
    if value is None:
        return None
    parts = value.split()
    if not parts:
        return None
    if len(parts) == 1 and parts[0].lower() not in (STRICT, STRICT_RESUME):
        mode, worker_id = PREFER, parts[0]
    elif len(parts) == 2 and parts[0].lower() in (STRICT, STRICT_RESUME):
        mode, worker_id = parts[0].lower(), parts[1]
    else:
        raise BadAffinity(f"{HEADER}: expected '<worker id>', 'strict <worker id>' or "
                          f"'strict-resume <worker id>', got {value[:100]!r}")
    if len(worker_id) > _MAX_ID or not worker_id.isalnum():
        raise BadAffinity(f"{HEADER}: {worker_id[:100]!r} is not a worker id")
    return Affinity(worker_id, mode)
