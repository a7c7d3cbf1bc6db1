"""Idempotent submission: one job per user and ``Idempotency-Key`` (runplane's extension).

A client whose ``/run`` answer was lost (a crash, a timeout) sends the request again with
the same key and gets the first job back instead of a second run of the same input. The key
lives as long as its job's row (until its TTL or result retention ends; then it may be used
again). Keys being committed right now are held here, so that two concurrent requests with
one key also share one job; committed ones are found through the store's unique index
(``ix_jobs_user_idempotency``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.models import Job

Key = tuple[str, str]  # (user id, idempotency key)


class IdempotencyKeys:
    """See the module docstring. ``find(job_id)`` is the broker's (None once not retained)."""

    def __init__(self, engine: Engine, find: Callable[[str], Job | None]) -> None:
        self._engine = engine
        self._find = find
        self._committing: dict[Key, asyncio.Future[Job | None]] = {}

    async def first(self, key: Key) -> tuple[Job | None, str | None]:
        """The retained job submitted with ``key``, else None and the id of an expired row
        that still holds the key (to delete with the new job's insert)."""
        pending = self._committing.get(key)
        if pending is not None:
            job = await asyncio.shield(pending)
            if job is not None:
                return job, None
        job_id = sql.job_id_for_key(self._engine, *key)
        if job_id is None:
            return None, None
        job = self._find(job_id)
        return (job, None) if job is not None else (None, job_id)

    def claim(self, key: Key) -> None:
        """A job with ``key`` is being committed: concurrent requests wait for it."""
        self._committing[key] = asyncio.get_running_loop().create_future()

    def release(self, key: Key, job: Job | None) -> None:
        """Its commit ended: ``job`` (None when it failed: the next request makes its own)."""
        pending = self._committing.pop(key, None)
        if pending is not None and not pending.done():
            pending.set_result(job)
