"""Workers as the job protocol sees them: credentials, heartbeats, state, the stop channel.

A worker is one process running an endpoint's handler with the ``runpod`` SDK. It gets its
own credential (``rpw_`` + 160 random bits, stored as a SHA-256 hash in ``workers.token_hash``)
sent raw in ``Authorization`` on the worker routes of its endpoint only; a user key cannot
take jobs and a worker credential cannot call ``/v1`` or the client routes.

States (``workers.status``): INITIALIZING from registration until the first job-take, IDLE
while it holds no job, RUNNING while it holds at least one, UNHEALTHY after a fitness-failure
report or when its heartbeats stopped (it becomes IDLE/RUNNING again if it speaks again),
PARKED while frozen by the controller, EXITED once retired.

A worker's holds (``Worker.jobs``) are the job book's (:mod:`.book`); everything else about
it is this registry's. The registry never sees the broker: what it does to jobs (a retired
or silent worker's jobs are lost) goes through the ``lose_jobs`` callback it is given, and
its open job-take long-polls are answered through ``release_waiters``.

Interface for the controller, all synchronous and to be called from the server's event loop
thread:

- ``register(endpoint_id, *, manual, worker_id=None, **placement) -> (worker_id, token)``
- ``worker_env(endpoint_id, worker_id, token, gpu="") -> dict[str, str]``
- ``snapshot(endpoint_id) -> list[WorkerView]``
- ``retire(worker_id, reason)``
- ``set_parked(worker_id, parked) -> bool`` (FlashBoot; refused while a job is on its way)
- ``stop_job(worker_id, job_id)``
- ``add_listener(callback(worker_id, endpoint_id, event, reason))`` with events
  ``"stop_requested"`` (the handler returned ``refresh_worker``/``stopPod``: desired_status is
  now EXITED, replace the worker), ``"unhealthy"`` (fitness failure reported) and
  ``"heartbeat_lost"`` (no ping for ``worker_heartbeat_timeout_s``; its jobs were re-queued)
  and ``"unparked"`` (thawed: a load-balancing worker is routable again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, insert

from runplane.broker import credentials
from runplane.broker import store as sql
from runplane.broker.credentials import TOKEN_PREFIX, hash_token
from runplane.broker.models import Job, Worker, WorkerView
from runplane.broker.writer import Writer
from runplane.clock import Clock
from runplane.config import BrokerSettings
from runplane.ids import new_id
from runplane.store.tables import workers as workers_table
from runplane.worker_state import (
    EXITED,
    IDLE,
    INITIALIZING,
    PARKED,
    RUNNING,
    UNHEALTHY,
    WorkerState,
)

__all__ = ["TOKEN_PREFIX", "Worker", "WorkerRegistry", "hash_token"]

log = logging.getLogger("runplane.broker.workers")

WorkerListener = Callable[[str, str, str, str], None]


class WorkerRegistry:
    """See the module docstring.

    ``owner_of(endpoint_id)`` is the endpoint's owner (None: no such endpoint);
    ``public_url`` the server's base URL as workers reach it; ``release_waiters(worker)``
    answers the worker's open job-take long-polls with no job; ``lose_jobs(jobs, reason)``
    re-queues (or fails) jobs their worker lost.
    """

    def __init__(self, engine: Engine, clock: Clock, writer: Writer, settings: BrokerSettings,
                 public_url: str, owner_of: Callable[[str], str | None],
                 release_waiters: Callable[[Worker], None],
                 lose_jobs: Callable[[Iterable[Job], str], None]) -> None:
        self._engine = engine
        self._clock = clock
        self._writer = writer
        self._settings = settings
        self._public_url = public_url
        self._owner_of = owner_of
        self._release_waiters = release_waiters
        self._lose_jobs = lose_jobs
        self._by_id: dict[str, Worker] = {}
        self._by_token: dict[str, Worker] = {}
        self._listeners: list[WorkerListener] = []
        self._closed = False

    # -- controller interface ------------------------------------------------------------

    def register(
        self, endpoint_id: str, *, manual: bool, worker_id: str | None = None, **placement: Any
    ) -> tuple[str, str]:
        """Create the worker row (status INITIALIZING) and return ``(worker_id, token)``.

        ``placement`` may set any of the ``workers`` columns the controller owns:
        machine_id, gpu_type_id, gpu_count, vcpu_count, memory_in_gb, cost_per_hr,
        provider_data, endpoint_version, started_at, log_path. The token is shown only here.
        Raises ``ValueError`` for an unknown endpoint or a taken worker id.
        """
        owner = self._owner_of(endpoint_id)
        if owner is None:
            raise ValueError(f"endpoint {endpoint_id} not found")
        worker_id = worker_id or new_id(14)
        if worker_id in self._by_id:
            raise ValueError(f"worker {worker_id} already exists")
        token = credentials.new_token()
        now = self._clock.now()
        allowed = {
            "machine_id", "gpu_type_id", "gpu_count", "vcpu_count", "memory_in_gb",
            "cost_per_hr", "provider_data", "endpoint_version", "started_at", "log_path",
        }
        unknown = set(placement) - allowed
        if unknown:
            raise ValueError(f"unknown worker fields: {sorted(unknown)}")
        row = {
            "id": worker_id,
            "endpoint_id": endpoint_id,
            "user_id": owner,
            "token_hash": hash_token(token),
            "status": INITIALIZING,
            "desired_status": RUNNING,
            "manual": manual,
            "created_at": now,
            "last_status_change_at": now,
            "provider_data": {},
            **placement,
        }
        with self._engine.begin() as conn:
            conn.execute(insert(workers_table).values(**row))
        w = Worker(
            id=worker_id, endpoint_id=endpoint_id, user_id=owner, token_hash=row["token_hash"],
            status=INITIALIZING, desired_status=RUNNING, manual=manual, created_at=now,
            status_changed_at=now,
        )
        self._by_id[worker_id] = w
        self._by_token[w.token_hash] = w
        return worker_id, token

    def worker_env(self, endpoint_id: str, worker_id: str, token: str, gpu: str = "") -> dict[str, str]:
        """Every RUNPOD_* variable an unmodified SDK worker needs (PROTOCOL.md section 5)."""
        return credentials.worker_env(self._public_url, self._settings.worker_ping_interval_ms,
                                      endpoint_id, worker_id, token, gpu,
                                      self._settings.accelerator)

    def snapshot(self, endpoint_id: str) -> list[WorkerView]:
        """The endpoint's workers that are not EXITED, as the protocol sees them now."""
        return [self.view(w) for w in self._by_id.values() if w.endpoint_id == endpoint_id]

    def view(self, w: Worker) -> WorkerView:
        return WorkerView(
            id=w.id, endpoint_id=w.endpoint_id, status=w.status, desired_status=w.desired_status,
            manual=w.manual, parked=w.parked, jobs=tuple(w.jobs), created_at=w.created_at,
            first_take_at=w.first_take_at, last_seen_at=w.last_seen_at, idle_since=w.idle_since,
            reason=w.reason, polling=w.polling > 0,
            overdue=tuple((j, last - ended) for j, (ended, last) in w.overdue.items()),
            status_changed_at=w.status_changed_at, accelerator=w.accelerator,
            requests=w.requests, initializing_at=w.initializing_at,
        )

    def retire(self, worker_id: str, reason: str) -> None:
        """The worker is gone: mark it EXITED, revoke its credential, re-queue its jobs now
        (each counts a retry; a job out of retries is FAILED with ``reason``)."""
        w = self._by_id.pop(worker_id, None)
        if w is None:
            return
        self._by_token.pop(w.token_hash, None)
        w.status = w.desired_status = EXITED
        w.reason = reason
        if w.jobs:
            self._lose_jobs(list(w.jobs.values()), f"worker {worker_id} exited: {reason}")
        self._release_waiters(w)
        self._release_stop_waiter(w)
        self._release_unpark_waiter(w)
        self._writer.write_nowait(
            (sql.WORKER_EXITED, {"_id": w.id, "at": self._clock.now(), "reason": reason})
        )

    def set_parked(self, worker_id: str, parked: bool) -> bool:
        """A parked (frozen) worker is not a crash: its heartbeat timeout is skipped and it is
        never handed jobs. Unparking gives it a fresh heartbeat grace period and hands a job
        to its held job-take at once.

        Parking is refused (False) while the worker holds a job or a job-take response is on
        its way to it: frozen, it would hold that job without running it. The controller marks
        a worker parked *before* freezing it, and thaws it *before* unparking it, so no job is
        ever written to a frozen worker. Returns True when the worker is (now) as asked."""
        w = self._by_id.get(worker_id)
        if w is None:
            return False
        if w.parked == parked:
            return True
        now = self._clock.now()
        if parked:
            if not w.may_park():
                return False
            w.parked = True
            self._set_status(w, PARKED, None)
            self._release_waiters(w)
        else:
            w.parked = False
            w.last_seen_at = now
            w.lost = False
            self._set_status(w, RUNNING if w.jobs else IDLE, None)
            if not w.jobs:
                w.idle_since = now
            self._release_unpark_waiter(w)
            self._emit(w, "unparked", "")
        return True

    async def wait_unparked(self, w: Worker, hold_s: float,
                            disconnect: asyncio.Future | None) -> None:
        """Hold a parked worker's job-take until it is unparked (or ``hold_s``, or the
        client went away)."""
        fut = w.unpark_waiter
        if fut is None or fut.done():
            fut = w.unpark_waiter = asyncio.get_running_loop().create_future()
        waits: set[asyncio.Future] = {fut}
        if disconnect is not None:
            waits.add(disconnect)
        await asyncio.wait(waits, timeout=hold_s, return_when=asyncio.FIRST_COMPLETED)

    def stop_job(self, worker_id: str, job_id: str) -> None:
        """Tell the worker, through its job-stop long-poll, to stop ``job_id``."""
        w = self._by_id.get(worker_id)
        if w is None:
            return
        if job_id not in w.stop_pending:
            w.stop_pending.append(job_id)
        if w.stop_waiter is not None and not w.stop_waiter.done():
            w.stop_waiter.set_result(None)

    def add_listener(self, callback: WorkerListener) -> None:
        """``callback(worker_id, endpoint_id, event, reason)``, called synchronously."""
        self._listeners.append(callback)

    def get(self, worker_id: str) -> Worker | None:
        return self._by_id.get(worker_id)

    def all(self) -> list[Worker]:
        return list(self._by_id.values())

    # -- the protocol --------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Worker | None:
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        return self._by_token.get(hash_token(token))

    def seen(self, w: Worker, now: float | None = None) -> None:
        w.last_seen_at = self._clock.now() if now is None else now
        if w.lost:
            w.lost = False
            self._set_status(w, RUNNING if w.jobs else IDLE, None)

    def note_accelerator(self, w: Worker, state: str | None, sdk: str | None) -> None:
        """What the worker's job-take says of runplane's SDK accelerator (its URL's
        ``runplane_accelerator`` and ``runplane_sdk``; absent when it was not loaded)."""
        w.accelerator = (state or "", sdk or "")

    def first_take(self, w: Worker) -> None:
        if w.first_take_at is None:
            now = self._clock.now()
            w.first_take_at = now
            w.idle_since = now
            self._writer.write_nowait((sql.WORKER_FIRST_TAKE, {"_id": w.id, "first_take_at": now}))
        if w.status == INITIALIZING:
            self._set_status(w, IDLE, None)

    def holds_changed(self, w: Worker) -> None:
        """The book changed ``w``'s holds (or the load balancer its requests): RUNNING while
        it holds a job or serves a request, else IDLE."""
        if w.jobs or w.requests:
            if w.status in (IDLE, INITIALIZING):
                self._set_status(w, RUNNING, None)
        elif w.status == RUNNING:
            self._set_status(w, IDLE, None)

    def heartbeat(self, w: Worker, overdue: dict[str, tuple[float, float]], now: float) -> None:
        """A ping: ``overdue`` are the jobs it listed that already ended on the server, as
        job id -> (when it ended, now) (the book's ``reconcile_ping`` finds them)."""
        self.seen(w, now)
        w.overdue = overdue
        self._writer.write_nowait((sql.WORKER_SEEN, {"_id": w.id, "last_seen_at": now}))

    def report_unhealthy(self, w: Worker, check: str, reason: str) -> None:
        self.seen(w)
        text = f"fitness check {check or '?'} failed: {reason}"[:512]
        self._set_status(w, UNHEALTHY, text)
        self._emit(w, "unhealthy", text)

    def request_stop(self, w: Worker, reason: str) -> None:
        """The handler asked for a fresh worker (``stopPod``). A managed worker gets
        desired_status EXITED and no more jobs; the controller replaces it. A manual worker
        (``runplane worker run``) has nobody to replace it, so it keeps taking jobs."""
        if w.manual:
            w.reason = reason
            return
        if w.desired_status == EXITED:
            return
        w.desired_status = EXITED
        w.reason = reason
        self._writer.write_nowait(
            (sql.WORKER_DESIRED, {"_id": w.id, "desired_status": EXITED, "reason": reason})
        )
        self._release_waiters(w)
        self._emit(w, "stop_requested", reason)

    async def wait_stop(self, w: Worker, hold_s: float, disconnect: asyncio.Future | None) -> list[str]:
        """The job-stop long-poll: ids to stop, or [] after ``hold_s``."""
        if not w.stop_pending and not self._closed:
            loop = asyncio.get_running_loop()
            self._release_stop_waiter(w)
            fut = w.stop_waiter = loop.create_future()
            waits: set[asyncio.Future] = {fut}
            if disconnect is not None:
                waits.add(disconnect)
            try:
                await asyncio.wait(waits, timeout=hold_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if w.stop_waiter is fut:
                    w.stop_waiter = None
            if disconnect is not None and disconnect.done():
                return []
        ids, w.stop_pending = w.stop_pending, []
        return ids

    def sweep(self, now: float) -> None:
        """Heartbeat timeouts and jobs the worker's pings stopped listing."""
        timeout = self._settings.worker_heartbeat_timeout_s
        grace = self._settings.job_lost_grace_s
        for w in list(self._by_id.values()):
            if w.parked or w.status == EXITED:
                continue
            if w.last_seen_at is not None and not w.lost and now - w.last_seen_at > timeout:
                w.lost = True
                reason = f"no heartbeat from worker {w.id} for {now - w.last_seen_at:.0f} s"
                self._set_status(w, UNHEALTHY, reason)
                if w.jobs:
                    self._lose_jobs(list(w.jobs.values()), reason)
                self._emit(w, "heartbeat_lost", reason)
                continue
            missing = [job for job in w.jobs.values()
                       if job.missing_since is not None and now - job.missing_since > grace]
            if missing:
                self._lose_jobs(missing, f"worker {w.id} stopped reporting the job in its "
                                         "heartbeat")

    def close(self) -> None:
        """The server is stopping: answer every stop and unpark long-poll, hold no new one."""
        self._closed = True
        for w in self._by_id.values():
            self._release_stop_waiter(w)
            self._release_unpark_waiter(w)

    def load(self) -> None:
        """Rebuild from the store at start-up: every worker not EXITED, fresh grace period."""
        for w in sql.load_workers(self._engine, self._clock.now()):
            self._by_id[w.id] = w
            self._by_token[w.token_hash] = w

    # -- helpers ---------------------------------------------------------------------------

    def _set_status(self, w: Worker, status: WorkerState, reason: str | None) -> None:
        if w.status == status and w.reason == reason:
            return
        now = self._clock.now()
        w.status = status
        w.reason = reason
        w.status_changed_at = now
        self._writer.write_nowait(
            (sql.WORKER_STATUS, {"_id": w.id, "status": status, "at": now, "reason": reason})
        )

    def _release_unpark_waiter(self, w: Worker) -> None:
        if w.unpark_waiter is not None and not w.unpark_waiter.done():
            w.unpark_waiter.set_result(None)
        w.unpark_waiter = None

    def _release_stop_waiter(self, w: Worker) -> None:
        if w.stop_waiter is not None and not w.stop_waiter.done():
            w.stop_waiter.set_result(None)
        w.stop_waiter = None

    def _emit(self, w: Worker, event: str, reason: str) -> None:
        for cb in list(self._listeners):
            try:
                cb(w.id, w.endpoint_id, event, reason)
            except Exception:
                log.exception("worker listener failed")
