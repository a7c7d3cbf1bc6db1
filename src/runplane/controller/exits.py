"""Workers that exited: what the controller records once a worker's process is gone.

``reap`` finds the exited processes of the workers this controller started and words the
exit (asked to stop, killed while parked, or a crash: counted against the endpoint's breaker,
quoting the worker's last error line); ``finish`` records it everywhere once: the worker
registry (its jobs re-queued, its credential revoked), the ``workers`` row, the controller's
records (no longer tracked, its placement's allocation released), FlashBoot, and the bill for
its last running interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from runplane.controller import verdicts
from runplane.controller.breaker import Breaker
from runplane.controller.flashboot import FlashBoot
from runplane.controller.ports import WorkerRegistryPort
from runplane.controller.state import Tracked
from runplane.controller.worker_rows import WorkerTable
from runplane.providers.base import EXITED, ProcessInfo, Provider

log = logging.getLogger("runplane.controller")


class Exits:
    """See the module docstring. ``tracked``: the controller's live workers by id, read only
    here; ``forget(worker_id)``: the controller drops a finished one from its records;
    ``breaker(endpoint_id)``: that endpoint's crash-loop breaker."""

    def __init__(self, *, provider: Provider, registry: WorkerRegistryPort, rows: WorkerTable,
                 flashboot: FlashBoot, tracked: Mapping[str, Tracked],
                 forget: Callable[[str], None], breaker: Callable[[str], Breaker]) -> None:
        self._provider = provider
        self._registry = registry
        self._rows = rows
        self._flashboot = flashboot
        self._tracked = tracked
        self._forget = forget
        self._breaker = breaker

    def reap(self, now: float, infos: list[ProcessInfo] | None = None) -> None:
        """Record every worker process that has exited: breaker, registry, billing."""
        for info in self._provider.list() if infos is None else infos:
            w = self._tracked.get(info.id)
            if w is None or info.state != EXITED:
                continue
            if w.stop_reason is None and w.parked_at is not None:
                # Killed from outside while frozen (OOM killer, a person): not the handler's
                # crash, so not the breaker's business; a new worker starts when needed.
                w.stop_reason = f"its process exited while parked (exit code {info.exit_code})"
            elif w.stop_reason is None:
                # Nobody asked it to stop: a crash (or a failed start). A first job taken since
                # the last tick: the template works (the breaker closes), the handler crashed.
                breaker = self._breaker(w.endpoint_id)
                if not w.took and (r := self._registry.get(w.id)) and r.first_take_at:
                    w.took = True
                    breaker.record_success()
                w.failure = info.reason or verdicts.crash_reason(
                    info.exit_code, w.took, self._provider.logs(w.id, 16_384))
                breaker.record_failure(now, w.failure)
            self.finish(w, info.stopped_at or now, info.exit_code,
                        w.stop_reason or w.failure or "")
            self._provider.forget(info.id)

    def finish(self, w: Tracked, end: float, exit_code: int | None, reason: str) -> None:
        """``w`` is gone (exited at ``end``, or never started): record it everywhere."""
        self._forget(w.id)
        self._flashboot.forget(w)
        try:
            self._registry.retire(w.id, reason)
        except Exception:  # the endpoint may be gone with its workers
            log.debug("retire %s failed", w.id, exc_info=True)
        self._rows.mark_exited(w.id, end, exit_code, reason)
        if w.started_at and w.parked_at is None:  # a parked worker's interval is closed
            self._flashboot.bill(w, end)
        log.info("worker %s of %s exited (%s): %s", w.id, w.endpoint_id, exit_code, reason,
                 extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})
