"""Group commit: one thread runs the writes of concurrent requests in shared transactions.

A request hands its statements to :meth:`Writer.write` and awaits; the writer thread takes
everything queued at that moment, runs it in one transaction (consecutive operations on the
same statement become one ``executemany``), commits, and only then resolves each request's
future. So every request is acknowledged after its own data is durable, and under load a
single commit covers hundreds of requests. If a shared transaction fails, its requests are
retried one by one so that only the faulty one gets the error.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import Executable

log = logging.getLogger("runplane.broker.writer")

# One operation: a prebuilt statement and its parameters (None for a statement without any).
Op = tuple[Executable, dict[str, Any] | None]

_STOP = object()


class _Item:
    __slots__ = ("future", "loop", "ops")

    def __init__(self, ops: Sequence[Op], future: asyncio.Future | None, loop: Any) -> None:
        self.ops = ops
        self.future = future
        self.loop = loop


class Writer:
    """The single writer thread; see the module docstring."""

    def __init__(self, engine: Engine, max_batch: int = 4096) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="runplane-writer", daemon=True)
        self._closed = False
        self.commits = 0
        self._thread.start()

    async def write(self, *ops: Op) -> None:
        """Run ``ops`` in a (shared) transaction; return once it is committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Item(ops, future, loop))
        await future

    def write_nowait(self, *ops: Op) -> asyncio.Future | None:
        """Queue ``ops`` without waiting; returns a future when called from an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        future = loop.create_future() if loop is not None else None
        if self._closed:
            self._execute_now(ops)
            if future is not None:
                future.set_result(None)
            return future
        self._queue.put(_Item(ops, future, loop))
        return future

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed (for shutdown and tests)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[Any] = [first]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if isinstance(b, _Item)]
            if items:
                self._commit(items)
            for b in batch:
                if isinstance(b, threading.Event):
                    b.set()
            if any(b is _STOP for b in batch):
                return

    def _commit(self, items: list[_Item]) -> None:
        try:
            with self._engine.begin() as conn:
                _execute(conn, [op for item in items for op in item.ops])
            self.commits += 1
            _resolve(items, None)
        except Exception as exc:  # isolate the faulty request
            if len(items) == 1:
                log.exception("store write failed")
                _resolve(items, exc)
                return
            for item in items:
                try:
                    with self._engine.begin() as conn:
                        _execute(conn, item.ops)
                    _resolve([item], None)
                except Exception as one:
                    log.exception("store write failed")
                    _resolve([item], one)

    def _execute_now(self, ops: Sequence[Op]) -> None:
        with self._engine.begin() as conn:
            _execute(conn, ops)


def _execute(conn: Any, ops: Sequence[Op]) -> None:
    i = 0
    n = len(ops)
    while i < n:
        stmt, params = ops[i]
        if params is None:
            conn.execute(stmt)
            i += 1
            continue
        j = i + 1
        while j < n and ops[j][0] is stmt and ops[j][1] is not None:
            j += 1
        if j - i == 1:
            conn.execute(stmt, params)
        else:
            conn.execute(stmt, [p for _, p in ops[i:j]])  # type: ignore[misc]
        i = j


def _resolve(items: list[_Item], exc: BaseException | None) -> None:
    by_loop: dict[Any, list[asyncio.Future]] = {}
    for item in items:
        if item.future is not None:
            by_loop.setdefault(item.loop, []).append(item.future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, futures, exc)
        except RuntimeError:  # loop closed
            pass


def _settle(futures: list[asyncio.Future], exc: BaseException | None) -> None:
    for f in futures:
        if f.done():
            continue
        if exc is None:
            f.set_result(None)
        else:
            f.set_exception(exc)
