"""A Knative-KPA-like scaler: concurrency averaged over a stable and a panic window.

Knative's pod autoscaler (KPA) samples each revision's concurrency (requests in flight plus
queued) and wants ``ceil(average / target)`` pods over a 60 s stable window; when the 6 s
panic window's average reaches twice the current capacity it panics: it scales on the panic
window and never scales down until a stable window has passed without panic. Pods go as soon
as the average no longer needs them (no idle timeout of its own: the window is the delay), so
a revision scales to zero a stable window after its last request. ``scalerValue`` is the
target concurrency per worker (1 for RunPod-style workers that run one job at a time).
"""

from __future__ import annotations

import math
from collections import deque

from runplane.controller.autoscaler import Pool, QueueStats, ScalerSettings, Target


class KnativeKpa:
    """See the module docstring; Knative's defaults."""

    reads_queue_ages = False
    every_tick = True  # its windows average tick-by-tick samples

    def __init__(self, stable_s: float = 60.0, panic_s: float = 6.0,
                 panic_threshold: float = 2.0) -> None:
        self.stable_s = stable_s
        self.panic_s = panic_s
        self.panic_threshold = panic_threshold
        self._samples: deque[tuple[float, int]] = deque()  # (when, concurrency), oldest first
        self._panic_until: float | None = None
        self._panic_peak = 0

    def observe_ready(self, cold_start_s: float) -> None:
        """Knative does not look at cold starts."""

    def _average(self, since: float) -> float:
        values = [c for t, c in self._samples if t >= since]
        return sum(values) / len(values) if values else 0.0

    def target(self, s: ScalerSettings, q: QueueStats, pool: Pool, now: float) -> Target:
        """The stable (or, in panic, the panic) window's wish; see the module docstring."""
        self._samples.append((now, q.in_queue_normal + q.in_progress))
        while self._samples and self._samples[0][0] < now - self.stable_s:
            self._samples.popleft()
        per = max(s.scaler_value, 1.0)
        stable = self._average(now - self.stable_s)
        panic = self._average(now - self.panic_s)
        if pool.capacity and panic / per >= self.panic_threshold * pool.capacity:
            if self._panic_until is None:
                self._panic_peak = 0
            self._panic_until = now + self.stable_s
        if self._panic_until is not None and now >= self._panic_until:
            self._panic_until = None
        if self._panic_until is not None:
            wanted = max(math.ceil(panic / per), self._panic_peak, pool.capacity)
            self._panic_peak = wanted
            why = f"KNATIVE_KPA: panic, {panic:.2f} in flight over {self.panic_s:g}s / {per:g}"
        else:
            wanted = math.ceil(stable / per)
            why = f"KNATIVE_KPA: {stable:.2f} in flight over {self.stable_s:g}s / {per:g}"
        return Target(wanted, wanted, f"{why} = {wanted}", idle_timeout_s=0.0)
