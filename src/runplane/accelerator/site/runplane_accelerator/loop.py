"""The SDK's job loop with events in place of its waits.

The runpod SDK's ``JobScaler`` runs two loops: ``get_jobs`` asks the server for work while
the worker has room, and ``run_jobs`` starts a task for each job in its local queue. Both
poll: ``get_jobs`` sleeps 1 s whenever the worker is full (so a default, concurrency-1
worker waits up to a second after every job before it asks for the next), ``run_jobs``
looks at the queue every 0.1 s (so every job waits up to 100 ms before its handler starts),
and ``set_scale`` waits for a concurrency change in 1 s steps.

These replacements do what the SDK's own methods do, in the same order, with the same
logging, error handling and hooks (``jobs_fetcher``, ``jobs_handler``, ``concurrency_modifier``,
``jobs_tasks`` for the stop channel), except that they wait on two events instead:
``room`` (a job finished, or the worker is shutting down) and ``work`` (a job was queued, a
job finished, or the worker is shutting down). The HTTP calls, the handler runner, results,
streaming, progress, heartbeats and the stop channel stay the SDK's own code.

``install(module)`` patches ``module.JobScaler`` (the module is the SDK's ``rp_scale``, just
executed); ``known.py`` decides beforehand whether this code is right for that SDK.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

# A full worker still re-asks its concurrency_modifier this often (the SDK asks every 1 s
# while full; a modifier that raises the concurrency of a full worker takes effect within
# this). A finished job wakes the loop at once regardless.
RESCALE_CHECK_S = 1.0


class _Signals:
    """The events of one JobScaler, created inside its event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.room = asyncio.Event()
        self.work = asyncio.Event()

    def wake(self) -> None:
        self.room.set()
        self.work.set()


def _signals(scaler: Any) -> _Signals:
    sig = scaler.__dict__.get("_runplane_signals")
    if sig is None:
        sig = _Signals()
        scaler._runplane_signals = sig
    return sig


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:  # noqa: UP041 - not TimeoutError before Python 3.11
        pass


def install(module: ModuleType) -> None:
    """Replace the waits of ``module.JobScaler`` (the SDK's ``rp_scale``) with events."""
    scaler_cls = module.JobScaler
    log = module.log
    too_many = module.TooManyRequests
    module_progress = getattr(module, "job_progress", None)  # before 1.7.12: module-level

    def progress_of(self: Any) -> Any:
        own = self.__dict__.get("job_progress")  # a set: empty is falsy, so test for None
        return own if own is not None else module_progress

    async def set_scale(self: Any) -> None:
        self.current_concurrency = self.concurrency_modifier(self.current_concurrency)
        if self.jobs_queue and (self.current_concurrency == self.jobs_queue.maxsize):
            return
        sig = _signals(self)
        # As the SDK: a new queue only once no job is queued or running.
        while self.current_occupancy() > 0:
            sig.room.clear()
            if self.current_occupancy() == 0:
                break
            await sig.room.wait()
        self.jobs_queue = asyncio.Queue(maxsize=self.current_concurrency)
        log.debug(f"JobScaler.set_scale | New concurrency set to: {self.current_concurrency}")

    async def get_jobs(self: Any, session: Any) -> None:
        sig = _signals(self)
        while self.is_alive():
            sig.room.clear()  # before looking, so a job finishing after the look wakes us
            await self.set_scale()
            jobs_needed = self.current_concurrency - self.current_occupancy()
            if jobs_needed <= 0:
                log.debug("JobScaler.get_jobs | Queue is full. Waiting for room.")
                await _wait(sig.room, RESCALE_CHECK_S)
                continue
            try:
                log.debug("JobScaler.get_jobs | Starting job acquisition.")
                acquired_jobs = await asyncio.wait_for(
                    self.jobs_fetcher(session, jobs_needed), timeout=self.jobs_fetcher_timeout)
                if not acquired_jobs:
                    log.debug("JobScaler.get_jobs | No jobs acquired.")
                    continue
                progress = progress_of(self)
                for job in acquired_jobs:
                    await self.jobs_queue.put(job)
                    progress.add(job)
                    log.debug("Job Queued", job["id"])  # noqa: PLE1205 - the SDK's logger
                sig.work.set()
                log.info(f"Jobs in queue: {self.jobs_queue.qsize()}")
            except too_many:
                log.debug("JobScaler.get_jobs | Too many requests. Debounce for 5 seconds.")
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log.debug("JobScaler.get_jobs | Request was cancelled.")
                raise
            except asyncio.TimeoutError:  # noqa: UP041 - not TimeoutError before Python 3.11
                log.debug("JobScaler.get_jobs | Job acquisition timed out. Retrying.")
            except TypeError as error:
                log.debug(f"JobScaler.get_jobs | Unexpected error: {error}.")
            except Exception as error:  # noqa: BLE001 - as the SDK: log and go on
                log.error(f"Failed to get job. | Error Type: {type(error).__name__} | "
                          f"Error Message: {error!s}")
                # The SDK retries at once; against a server that is down that spins a core.
                await _wait(sig.room, RESCALE_CHECK_S)
            finally:
                await asyncio.sleep(0)

    async def run_jobs(self: Any, session: Any) -> None:
        sig = _signals(self)
        tasks: set[asyncio.Task] = set()
        last_task_count = 0
        while self.is_alive() or not self.jobs_queue.empty():
            sig.work.clear()
            while len(tasks) < self.current_concurrency and not self.jobs_queue.empty():
                job = self.jobs_queue.get_nowait()
                task = asyncio.create_task(self.handle_job(session, job))
                tasks.add(task)
                jobs_tasks = self.__dict__.get("jobs_tasks")
                if jobs_tasks is not None:  # 1.10+: the stop channel cancels by job id
                    jobs_tasks[job["id"]] = task
            if tasks:
                if len(tasks) != last_task_count:
                    log.info(f"Jobs in progress: {len(tasks)}")
                    last_task_count = len(tasks)
                waker = asyncio.ensure_future(sig.work.wait())
                done, _ = await asyncio.wait({*tasks, waker},
                                             return_when=asyncio.FIRST_COMPLETED)
                if waker not in done:
                    waker.cancel()
                tasks.difference_update(done)
            else:
                await sig.work.wait()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                log.error(f"JobScaler.run_jobs | Task failed during shutdown drain: {result}")

    sdk_handle_job = scaler_cls.handle_job

    async def handle_job(self: Any, session: Any, job: dict) -> None:
        try:
            await sdk_handle_job(self, session, job)
        finally:
            # The SDK's own finally has taken the job off its books: there is room now.
            _signals(self).wake()

    sdk_kill_worker = scaler_cls.kill_worker

    def kill_worker(self: Any) -> None:
        sdk_kill_worker(self)
        sig = self.__dict__.get("_runplane_signals")
        if sig is not None:
            # Called from a signal handler too: wake the loop through its self-pipe.
            try:
                sig.loop.call_soon_threadsafe(sig.wake)
            except RuntimeError:  # the loop is closed
                pass

    scaler_cls.set_scale = set_scale
    scaler_cls.get_jobs = get_jobs
    scaler_cls.run_jobs = run_jobs
    scaler_cls.handle_job = handle_job
    scaler_cls.kill_worker = kill_worker
    scaler_cls.runplane_accelerated = True
