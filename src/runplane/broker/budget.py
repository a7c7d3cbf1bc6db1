"""The bytes the broker holds in memory for users' jobs, and the budgets that bound them.

What a user can make the server hold counts against two budgets at once, their endpoint's
and their own (``[broker] max_held_bytes_per_endpoint`` / ``_per_user``, 0: none): the
inputs of their queued and running jobs (``Job.size``), the stream chunks and progress
outputs of running jobs kept in memory. A job's count is ``Job.held``; it is released when
the job ends or is deleted. A webhook's body counts while its deliveries are under way.

Past a budget only what would add to it *on request* is refused: a new submission (429, or
413 when it alone is over the budget: it could never be admitted) and a progress update
(429). What a worker reports for a job already acknowledged is never refused: a stream chunk
over the budget is stored and not kept in memory (``Job.chunks_in_store``: readers go to the
store), and a final result leaves the budget at once; it is kept in memory only in the
server-wide cache of just-finished jobs (``JobBook.keep``, ``[broker] result_cache_bytes``),
which the store backs: an evicted job is read back from it.
"""

from __future__ import annotations

from collections import deque

from runplane.broker.models import Job
from runplane.errors import RateLimited, TooLarge

# How long a client refused for a full budget is told to wait (jobs must end first).
RETRY_AFTER_S = 5.0


class HeldBytes:
    """Per endpoint and per user: the bytes held now; see the module docstring."""

    __slots__ = ("endpoints", "per_endpoint", "per_user", "users")

    def __init__(self, per_endpoint: int = 0, per_user: int = 0) -> None:
        self.per_endpoint = per_endpoint
        self.per_user = per_user
        self.endpoints: dict[str, int] = {}
        self.users: dict[str, int] = {}

    def check(self, endpoint_id: str, user_id: str, size: int, what: str = "this request") -> None:
        """Refuse ``size`` more bytes unless both budgets have room: ``TooLarge`` (413) when
        ``size`` alone is over one, else ``RateLimited`` (429) while it does not fit."""
        for limit, whose in ((self.per_endpoint, "the endpoint's"), (self.per_user, "your")):
            if limit and size > limit:
                raise TooLarge(f"{what} holds {size:,} bytes, over {whose} budget of {limit:,} "
                               "bytes of jobs held in memory: it can never be admitted; send "
                               "less (split it)")
        if not self.fits(endpoint_id, user_id, size):
            raise RateLimited(RETRY_AFTER_S, "the jobs held for this endpoint or user are at "
                                             "their byte budget (inputs waiting or running, "
                                             "streamed outputs); send it again once some ended")

    def fits(self, endpoint_id: str, user_id: str, size: int) -> bool:
        """Whether ``size`` more bytes fit in both budgets."""
        return ((not self.per_endpoint
                 or self.endpoints.get(endpoint_id, 0) + size <= self.per_endpoint)
                and (not self.per_user or self.users.get(user_id, 0) + size <= self.per_user))

    def add(self, job: Job, n: int) -> None:
        """Count ``n`` more bytes held for ``job``."""
        if n:
            job.held += n
            self.hold(job.endpoint_id, job.user_id, n)

    def release(self, job: Job, n: int | None = None) -> None:
        """No longer count ``n`` of ``job``'s bytes (all of them by default)."""
        n = job.held if n is None else min(n, job.held)
        if n:
            job.held -= n
            self.unhold(job.endpoint_id, job.user_id, n)

    def hold(self, endpoint_id: str, user_id: str, n: int) -> None:
        """Count ``n`` bytes held for the endpoint and user, of no job (a webhook's body)."""
        self.endpoints[endpoint_id] = self.endpoints.get(endpoint_id, 0) + n
        self.users[user_id] = self.users.get(user_id, 0) + n

    def unhold(self, endpoint_id: str, user_id: str, n: int) -> None:
        _sub(self.endpoints, endpoint_id, n)
        _sub(self.users, user_id, n)


class JustFinished:
    """The cache of just-finished jobs: settled final jobs stay in the book's memory, at
    most ``count`` of them and ``max_bytes`` of their inputs, chunks and outputs; the oldest
    leave first (and are read from the store from then on; whoever holds one still has it).
    ``jobs`` is the book's."""

    __slots__ = ("bytes", "count", "max_bytes", "order")

    def __init__(self, count: int, max_bytes: int) -> None:
        self.count = count
        self.max_bytes = max_bytes
        # Oldest first; entries of jobs no longer cached (gone, retried) are skipped.
        self.order: deque[Job] = deque()
        self.bytes = 0

    def keep(self, job: Job, jobs: dict[str, Job]) -> None:
        if job.cached or not job.final:
            return
        job.cached = max(1, job.size + job.chunk_bytes + job.output_bytes)
        self.bytes += job.cached
        order = self.order
        order.append(job)
        while len(order) > self.count or self.bytes > self.max_bytes:
            old = order.popleft()
            if old.cached:
                self.drop(old)
                if jobs.get(old.id) is old and old.final:
                    del jobs[old.id]

    def drop(self, job: Job) -> None:
        """``job`` is no longer counted in the cache (deleted, retried, evicted)."""
        if job.cached:
            self.bytes -= job.cached
            job.cached = 0


def _sub(counts: dict[str, int], key: str, n: int) -> None:
    left = counts.get(key, 0) - n
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # (no entry left behind per endpoint or user that ever ran)
