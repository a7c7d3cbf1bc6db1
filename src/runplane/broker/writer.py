"""Group commit: one thread runs the writes of concurrent requests in shared transactions.

A request hands its statements to :meth:`Writer.write` and awaits; the writer thread takes
everything queued at that moment, runs it in one transaction, commits, and only then resolves
each request's future. So every request is acknowledged after its own data is durable, and
under load a single commit covers hundreds of requests. If a shared transaction fails, its
requests are retried one by one so that only the faulty one gets the error.

Within a transaction the operations are regrouped so that each statement runs once, as one
``executemany``, however the requests interleave (:func:`plan`): operations on different
rows commute, and those on the same row keep their order. On SQLite the hot statements
(:class:`~runplane.broker.store.Hot`) go straight to the DB-API connection, and the writer
keeps one connection for its whole life.

When the store cannot write (SQLite's "database or disk is full", an I/O error: any
``OperationalError``), what happens depends on who waits. A request's own write
(:meth:`Writer.write`: a new job, a chunk) fails at once with
:class:`~runplane.errors.Unavailable` (the API's 503): nothing was acknowledged. A write that
records a state already changed in memory (:meth:`Writer.write_nowait`: a take, a final
state, a heartbeat) must land: it is kept, in order, and retried with a growing pause until
the store takes it, and only then is its future resolved; what waits on it (a final state
waits to be *settled*) keeps waiting.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import Executable

from runplane.broker.store import Hot
from runplane.errors import Unavailable

log = logging.getLogger("runplane.broker.writer")

# One operation: a prebuilt statement and its parameters (None for a statement without any).
Op = tuple[Executable | Hot, dict[str, Any] | None]

_STOP = object()
# The pause between attempts at writes the store refused grows to this (seconds).
_MAX_RETRY_PAUSE_S = 2.0


class _Item:
    __slots__ = ("future", "loop", "must_land", "ops")

    def __init__(self, ops: Sequence[Op], future: asyncio.Future | None, loop: Any,
                 must_land: bool = False) -> None:
        self.ops = ops
        self.future = future
        self.loop = loop
        self.must_land = must_land


def store_unavailable(exc: BaseException) -> bool:
    """The store, not the request, failed: full disk, I/O error, a lock, a lost connection."""
    return isinstance(exc, (sqlite3.OperationalError, OperationalError))


def unavailable_error(exc: BaseException) -> Unavailable:
    """The domain error a request whose write the store refused is answered with."""
    cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return Unavailable(f"the store cannot write ({cause}); nothing was stored: retry later")


class Writer:
    """The single writer thread; see the module docstring."""

    def __init__(self, engine: Engine, max_batch: int = 4096) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="runplane-writer", daemon=True)
        self._closed = False
        # SQLite through the stdlib driver: hot statements run on the DB-API connection.
        self._raw = engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite"
        self._conn: Connection | None = None
        # Must-land writes the store refused, retried in order (the writer thread's own).
        self.pending = 0
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
        self._queue.put(_Item(ops, future, loop, True))
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
        retry: list[_Item] = []  # must-land writes the store refused, oldest first
        flushes: list[threading.Event] = []
        pause = 0.0
        while True:
            batch: list[Any] = []
            if retry:
                try:
                    batch.append(self._queue.get(timeout=pause))
                except queue.Empty:
                    pass
            else:
                batch.append(self._queue.get())
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = retry + [b for b in batch if isinstance(b, _Item)]
            stop = any(b is _STOP for b in batch)
            if items:
                retry = self._commit(items)
                self.pending = len(retry)
                pause = min(max(pause * 2, 0.05), _MAX_RETRY_PAUSE_S) if retry else 0.0
            flushes += [b for b in batch if isinstance(b, threading.Event)]
            if not retry or stop:
                for event in flushes:
                    event.set()
                flushes = []
            if stop:
                if retry:
                    log.error("%d writes could not be stored before the writer stopped",
                              sum(len(i.ops) for i in retry))
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return

    def _commit(self, items: list[_Item]) -> list[_Item]:
        """Commit ``items`` (together, else one by one to isolate a faulty one); returns the
        must-land ones the store refused, to be retried."""
        try:
            self._transaction([op for item in items for op in item.ops])
            _resolve(items, None)
            return []
        except Exception as exc:
            if store_unavailable(exc):
                if not self.pending:
                    log.error("the store cannot write: %s", exc)
                refused = unavailable_error(exc)
                _resolve([i for i in items if not i.must_land], refused)
                return [i for i in items if i.must_land]
            if len(items) == 1:
                log.exception("store write failed")
                _resolve(items, exc)
                return []
        retry: list[_Item] = []
        for item in items:  # isolate the faulty request
            try:
                self._transaction(item.ops)
                _resolve([item], None)
            except Exception as one:
                if store_unavailable(one):
                    if item.must_land:
                        retry.append(item)
                    else:
                        _resolve([item], unavailable_error(one))
                    continue
                log.exception("store write failed")
                _resolve([item], one)
        return retry

    def _transaction(self, ops: Sequence[Op]) -> None:
        if not self._raw:
            with self._engine.begin() as conn:
                _execute(conn, ops, False)
            return
        if self._conn is None or self._conn.closed:
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            with conn.begin():
                _execute(conn, ops, True)
        except Exception:
            conn.close()  # a fresh connection for the next transaction
            self._conn = None
            raise

    def _execute_now(self, ops: Sequence[Op]) -> None:
        with self._engine.begin() as conn:
            _execute(conn, ops, self._raw)


def plan(ops: Sequence[Op]) -> list[tuple[Any, list[Any]]]:
    """``ops`` as ``(statement, [params...])`` runs, one per statement where possible.

    An operation's row is its parameters' key (``Hot.key``, else ``_id``). Each operation goes
    to the level after the last one that touched its row, so a row's operations keep their
    order; within a level the rows are distinct and the order of statements does not matter.
    An operation with no key (or no parameters) is a barrier: what came before runs first.
    """
    out: list[tuple[Any, list[Any]]] = []
    levels: list[dict[Any, list[Any]]] = []
    last: dict[Any, int] = {}
    for stmt, params in ops:
        key = None
        if params is not None:
            key = params.get(stmt.key) if isinstance(stmt, Hot) else params.get("_id")
        if key is None:
            for level in levels:
                out.extend(level.items())
            levels.clear()
            last.clear()
            out.append((stmt, [params]))
            continue
        n = last.get(key, -1) + 1
        last[key] = n
        if n == len(levels):
            levels.append({})
        group = levels[n].get(stmt)
        if group is None:
            levels[n][stmt] = [params]
        else:
            group.append(params)
    for level in levels:
        out.extend(level.items())
    return out


def _execute(conn: Any, ops: Sequence[Op], raw: bool) -> None:
    for stmt, batch in plan(ops):
        if isinstance(stmt, Hot):
            if raw:
                conn.connection.driver_connection.executemany(stmt.sql, stmt.rows(batch))
            else:
                conn.execute(stmt.core, batch)
        elif batch[0] is None:
            conn.execute(stmt)
        elif len(batch) == 1:
            conn.execute(stmt, batch[0])
        else:
            conn.execute(stmt, batch)


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
