"""``api.lb.deadlines.Deadlines``: the proxy's processing limit without a timer per request."""

from __future__ import annotations

import asyncio

import pytest

from runplane.api.lb.deadlines import Deadlines


async def test_in_time_past_the_limit_and_someone_elses_cancel() -> None:
    deadlines = Deadlines(tick_s=0.02)

    async def answer(after: float) -> str:
        await asyncio.sleep(after)
        return "done"

    assert await deadlines.watch(answer(0), 10) == "done"
    with pytest.raises(TimeoutError):
        await deadlines.watch(answer(10), 0.05)
    # Nothing left watched: the sweep stops.
    await asyncio.sleep(0.05)
    assert deadlines._sweep is None and not deadlines._due
    # A cancellation that is not the limit's stays a cancellation.
    task = asyncio.ensure_future(deadlines.watch(answer(10), 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_requests_each_under_its_own_limit() -> None:
    deadlines = Deadlines(tick_s=0.02)

    async def one(limit: float) -> str:
        try:
            return await deadlines.watch(asyncio.sleep(0.2, "answered"), limit)
        except TimeoutError:
            return "timed out"

    got = await asyncio.gather(*(one(limit) for limit in (0.05, 5, 0.05, 5)))
    assert got == ["timed out", "answered", "timed out", "answered"]
