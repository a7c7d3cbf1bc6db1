"""Deadlines for many long, coarse time limits (the proxy's 5.5-minute processing limit) at
the cost of a dict entry per request instead of a timer.

``asyncio.timeout`` arms a loop timer per request and cancels it at the end: 3-5 µs of a
proxied request's ~70 µs of server CPU, for a limit almost no request reaches. Here a request
is written down with its deadline, and one sweep per ``tick_s`` (running only while requests
are watched) cancels the tasks past theirs; :meth:`Deadlines.watch` turns that cancellation
into ``TimeoutError`` as ``asyncio.timeout`` does. A limit fires up to ``tick_s`` late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Deadlines:
    """The tasks running under a time limit, and the sweep that ends those past it."""

    def __init__(self, tick_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    async def watch(self, awaitable: Awaitable[T], limit_s: float) -> T:
        """``await awaitable`` in the current task; ``TimeoutError`` once ``limit_s`` has
        passed (give or take ``tick_s``)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self._due[task] = loop.time() + limit_s
        if self._sweep is None:
            self._sweep = loop.call_later(self.tick_s, self._expire, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else
            if task.uncancel() > 0:
                raise  # ... as well: theirs goes on
            raise TimeoutError() from None
        finally:
            del self._due[task]
            self._expired.discard(task)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, due in self._due.items():
            if due <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweep = loop.call_later(self.tick_s, self._expire, loop) if self._due else None
