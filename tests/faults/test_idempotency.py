"""Item 8 of issue 14: a resent /run is not a second job.

A client whose answers were lost in a server crash sends its requests again with the same
``Idempotency-Key`` (or ``requestId`` in the body) and gets the first jobs back: after a
SIGKILL in the middle of a burst and a resend of everything, each input has exactly one job.
Keys are per user; one used on another endpoint is a 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.scaling_kit import make_endpoint
from tests.faults.kit import server

pytestmark = pytest.mark.e2e


async def _send_all(url: str, key: str, eid: str, n: int, kill_pid: int | None,
                    kill_after: int) -> dict[int, str]:
    """/run for inputs 0..n-1 with keys k-<i>, 16 at a time; SIGKILL ``kill_pid``'s group
    after ``kill_after`` answers. Returns input -> job id for the answered ones."""
    acked: dict[int, str] = {}
    todo = iter(range(n))

    async def sender(session: aiohttp.ClientSession) -> None:
        for i in todo:
            try:
                async with session.post(f"{url}/v2/{eid}/run", json={"input": {"i": i}},
                                        headers={"Authorization": f"Bearer {key}",
                                                 "Idempotency-Key": f"k-{i}"}) as r:
                    if r.status == 200:
                        acked[i] = (await r.json())["id"]
            except (TimeoutError, aiohttp.ClientError):
                continue
            if kill_pid is not None and len(acked) >= kill_after:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(kill_pid, signal.SIGKILL)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(sender(session) for _ in range(16)))
    return acked


def test_resending_after_a_crash_makes_no_duplicate(tmp_path: Path) -> None:
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, _ = make_endpoint(c, tmp_path, workersMax=0)  # the jobs stay queued
        first = asyncio.run(_send_all(srv.url, srv.user_key, eid, 400, srv.proc.pid, 150))
        srv.proc.wait(timeout=30)
        srv.start()
        again = asyncio.run(_send_all(srv.url, srv.user_key, eid, 400, None, 0))
        assert len(again) == 400
        assert all(again[i] == job for i, job in first.items())  # acknowledged: the same job
        with sqlite3.connect(f"file:{srv.data_dir / 'runplane.db'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT json_extract(payload, '$.input.i'), count(*) FROM jobs "
                              "GROUP BY 1").fetchall()
        assert len(rows) == 400 and all(n == 1 for _, n in rows), rows[:5]
    finally:
        srv.stop()


def test_keys_are_per_user_and_the_body_field_works_too(tmp_path: Path) -> None:
    srv = server(tmp_path)
    try:
        for sub in ("b", "c"):
            (tmp_path / sub).mkdir()
        with srv.client() as c, srv.client(srv.other_key) as other:
            eid, _ = make_endpoint(c, tmp_path, workersMax=0)
            one = c.post(f"/v2/{eid}/run", json={"input": {}, "requestId": "abc"}).json()
            same = c.post(f"/v2/{eid}/runsync", params={"wait": 1000},
                          headers={"Idempotency-Key": "abc"}, json={"input": {}}).json()
            assert same["id"] == one["id"]
            eid2 = make_endpoint(c, tmp_path / "b", workersMax=0)[0]
            r = c.post(f"/v2/{eid2}/run", json={"input": {}, "requestId": "abc"})
            assert r.status_code == 409 and one["id"] in r.json()["error"], r.text
            r = c.post(f"/v2/{eid}/run", headers={"Idempotency-Key": "k" * 300}, json={"input": {}})
            assert r.status_code == 400 and r.json()["field"] == "Idempotency-Key", r.text
            # Bob's key "abc" is his own (on his own endpoint).
            theirs = make_endpoint(other, tmp_path / "c", workersMax=0)[0]
            r = other.post(f"/v2/{theirs}/run", json={"input": {}, "requestId": "abc"})
            assert r.status_code == 200 and r.json()["id"] != one["id"]
    finally:
        srv.stop()
