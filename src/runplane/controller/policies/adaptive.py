"""runplane's ADAPTIVE scaler: start a worker only where it would start a queued job sooner.

RunPod's rules look at one number each (the oldest job's wait, or the job count). ADAPTIVE
also uses what runplane measures and the others ignore:

- the endpoint's measured cold start (start to first job-take, a moving average of its own
  workers; ``observe_ready``) and the mean execution time (busy worker-seconds per finished
  job, learnt from the queue's counters tick by tick);
- the queue's age distribution (``QueueStats.queued_at``): every queued job's wait so far;
- FlashBoot's cheap revival: a parked worker takes a job in milliseconds, a new one after a
  cold start.

Scale-up: jobs not covered by idle or starting workers are laid, oldest first, on the
workers that will free up (busy ones after half an execution, starting ones after half a cold
start, revived ones after ``revival_s``, new ones after a cold start), which predicts each
one's wait. Workers are added, parked ones first, while each addition shortens the queue's
predicted waiting beyond ``scalerValue`` seconds (the delay target; job-seconds) by more than
it spends not serving: its cold start (or revival) and the idle time before it goes. So a
new worker that would only become ready after a busy one has freed up is not started (it
would shorten no wait), and a long queue behind slow workers gets several at once. With
FlashBoot, when jobs would still wait beyond the target and no parked worker is left, the
pool grows by one anyway: a worker's cold start is paid once, and parked afterwards it costs
nothing and is revived in milliseconds for the next job that would wait.

Scale-down: as QUEUE_DELAY, workers with (or about to get) work stay; with FlashBoot an idle
worker is parked after ``park_after_s`` (at most the endpoint's idleTimeout), since bringing
it back costs milliseconds and no billing runs while it is parked; without FlashBoot the
endpoint's idleTimeout applies.
"""

from __future__ import annotations

import heapq

from runplane.controller.autoscaler import Pool, QueueStats, ScalerSettings, Target

# Jobs of the queue the prediction looks at (the oldest); beyond them it adds nothing.
PLAN_HORIZON = 256


class Adaptive:
    """See the module docstring. The priors stand until the endpoint's own measurements
    replace them (the first cold start, the first finished jobs)."""

    reads_queue_ages = True
    every_tick = True  # it learns execution times from tick-by-tick samples

    def __init__(self, cold_start_prior_s: float = 10.0, revival_s: float = 0.05,
                 park_after_s: float = 1.0, smoothing: float = 0.3) -> None:
        self.cold_start_s = cold_start_prior_s
        self.revival_s = revival_s
        self.park_after_s = park_after_s
        self.smoothing = smoothing
        self.execution_s: float | None = None
        self._measured_cold = False
        self._last_at: float | None = None
        self._last_finished: int | None = None
        self._busy_s = 0.0  # busy worker-seconds since the last finished job
        self._last_busy = 0

    def observe_ready(self, cold_start_s: float) -> None:
        """One more measured cold start (a moving average; the first replaces the prior)."""
        if not self._measured_cold:
            self.cold_start_s, self._measured_cold = cold_start_s, True
        else:
            self.cold_start_s += self.smoothing * (cold_start_s - self.cold_start_s)

    def _learn(self, q: QueueStats, pool: Pool, now: float) -> None:
        """Busy worker-seconds per finished job, from the counters between two ticks (the
        jobs in progress at a tick are taken to have run until the next)."""
        if self._last_at is not None and self._last_finished is not None:
            self._busy_s += max(0.0, now - self._last_at) * self._last_busy
            done = q.finished - self._last_finished
            if done > 0:
                sample = self._busy_s / done
                self.execution_s = sample if self.execution_s is None else (
                    self.execution_s + self.smoothing * (sample - self.execution_s))
                self._busy_s = 0.0
        self._last_at, self._last_finished = now, q.finished
        self._last_busy = q.in_progress

    @staticmethod
    def excess_wait(ages: list[float], free_in: list[float], execution_s: float,
                    target_s: float, horizon_s: float) -> float:
        """The job-seconds beyond ``target_s`` the jobs (waited ``ages`` so far, oldest
        first) would wait if served in order by workers free in ``free_in`` seconds; a job no
        worker would serve counts ``horizon_s`` more."""
        heap = list(free_in)
        heapq.heapify(heap)
        excess = 0.0
        for age in ages:
            if not heap:
                excess += max(0.0, age + horizon_s - target_s)
                continue
            t = heapq.heappop(heap)
            excess += max(0.0, age + t - target_s)
            heapq.heappush(heap, t + execution_s)
        return excess

    def target(self, s: ScalerSettings, q: QueueStats, pool: Pool, now: float) -> Target:
        """See the module docstring."""
        self._learn(q, pool, now)
        cold = self.cold_start_s
        execution = self.execution_s if self.execution_s is not None else cold
        idle_timeout = min(s.idle_timeout_s, self.park_after_s) if s.flashboot else None
        floor_down = pool.busy + pool.starting + min(q.in_queue_normal, pool.idle)
        uncovered = max(0, q.in_queue_normal - pool.idle - pool.starting)
        if not uncovered:
            return Target(pool.capacity, floor_down, "ADAPTIVE: queue covered", idle_timeout)
        if pool.capacity == 0 and not pool.parked:
            return Target(1, floor_down, "ADAPTIVE: job queued and no worker: scale from zero",
                          idle_timeout)
        # The uncovered jobs are the newest ones: the covered ones are taken first.
        ages = [now - t for t in q.queued_at[pool.idle + pool.starting:]][:PLAN_HORIZON]
        if not ages:  # no ages given: as old as the oldest, the cautious reading
            waited = now - q.oldest_normal_at if q.oldest_normal_at is not None else 0.0
            ages = [waited] * min(uncovered, PLAN_HORIZON)
        free_in = [execution / 2] * pool.busy + [cold / 2] * pool.starting
        tail = s.idle_timeout_s if idle_timeout is None else idle_timeout
        horizon = cold + execution * len(ages)
        excess = self.excess_wait(ages, free_in, execution, s.scaler_value, horizon)
        added = 0
        while excess > 0 and added < len(ages):
            ready_in = self.revival_s if added < pool.parked else cold
            after = self.excess_wait(ages, [*free_in, ready_in], execution, s.scaler_value,
                                     horizon)
            if excess - after <= ready_in + tail:
                break
            free_in.append(ready_in)
            excess, added = after, added + 1
        if s.flashboot and excess > 0 and not added and not pool.parked:
            # No parked worker is left to revive: grow the pool by one. Its cold start is
            # paid once; parked afterwards it costs nothing and comes back in milliseconds
            # for the next job that would wait (for up to max_parked_s).
            added = 1
        why = (f"ADAPTIVE: {uncovered} job(s) uncovered, cold start {cold:.1f}s, execution "
               f"{execution:.1f}s: {added} more worker(s), {excess:.0f} job-s predicted "
               f"over {s.scaler_value:g}s")
        return Target(pool.capacity + added, floor_down, why, idle_timeout)
