"""Items 1 and 6 of issue 14: a store that cannot write (a full disk).

Reproduced with a real server whose SQLite store lives on a small tmpfs that the test fills
up, and a real SDK worker: a result that cannot be stored is not reported (``/status`` keeps
the state the store has, the worker is answered 503 and sends it again), it is stored once
the disk has room, and a restart then finds it final, run once. ``/run`` on the full disk is
a 503 with ``Retry-After`` saying the store cannot write, never a 500.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import make_live_server
from tests.e2e.scaling_kit import final, make_endpoint, run, status, wait_for
from tests.faults.kit import FAST_ENV, attempts, job_row, small_tmpfs

pytestmark = pytest.mark.e2e


def _fill_until_refused(disk, c: httpx.Client, eid: str) -> httpx.Response:
    """Fill the disk, then send /run (10 kB inputs, so SQLite's WAL must grow) until the
    store refuses one; returns that answer (no answer may be a 500 on the way)."""
    disk.fill()
    for i in range(3000):
        r = c.post(f"/v2/{eid}/run", json={"input": {"pad": "x" * 10_000, "i": i},
                                           "policy": {"lowPriority": True}})
        assert r.status_code != 500, r.text
        if r.status_code == 503:
            return r
    raise AssertionError("the store never refused a write on a full disk")


def test_a_result_the_store_cannot_write_is_not_reported_and_lands_later(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "store") as disk:
        srv = make_live_server(tmp_path, **FAST_ENV, RUNPLANE_BROKER__STORE_WAIT_S="1",
                               RUNPLANE_DATABASE_URL=f"sqlite:///{disk.mount / 'runplane.db'}")
        shutil.copy(srv.data_dir / "runplane.db", disk.mount / "runplane.db")  # users, keys
        db = disk.mount / "runplane.db"
        srv.start()
        try:
            with srv.client() as c:
                eid, state = make_endpoint(c, tmp_path, workersMax=1)
                job = run(c, eid, {"block": True, "echo": "kept"})
                held = wait_for(lambda: (s := status(c, eid, job))["status"] == "IN_PROGRESS"
                                and s, 60, "the job to be taken")

                refused = _fill_until_refused(disk, c, eid)
                # Item 6: a 503 that says why, with Retry-After, in the job API's error shape.
                assert refused.headers.get("retry-after"), refused.headers
                assert "the store cannot write" in refused.json()["error"], refused.text

                (state / "release").touch()  # the handler returns; its job-done is refused
                # The SDK sends its result 3 times (2 s, 3 s apart); meanwhile the job is
                # reported as the store has it.
                deadline = time.monotonic() + 9
                while time.monotonic() < deadline:
                    s = status(c, eid, job)
                    assert s["status"] == "IN_PROGRESS", s
                    assert job_row(db, job)["status"] == "IN_PROGRESS"
                    time.sleep(0.3)
                assert held["workerId"]

                disk.free()  # the kept write lands
                done = final(c, eid, job, timeout=20)
                assert done["status"] == "COMPLETED" and done["output"]["echo"] == "kept", done
                assert done["retries"] == 0
                assert job_row(db, job)["status"] == "COMPLETED"

            srv.kill()
            srv.start()
            with srv.client() as c:
                again = status(c, eid, job)
                assert again["status"] == "COMPLETED" and again["retries"] == 0, again
            assert attempts(state, job) == 1  # never run twice
        finally:
            srv.stop()


def test_a_cancel_the_store_cannot_write_is_answered_503(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "store") as disk:
        srv = make_live_server(tmp_path, **FAST_ENV, RUNPLANE_BROKER__STORE_WAIT_S="1",
                               RUNPLANE_DATABASE_URL=f"sqlite:///{disk.mount / 'runplane.db'}")
        shutil.copy(srv.data_dir / "runplane.db", disk.mount / "runplane.db")
        srv.start()
        try:
            with srv.client() as c:
                eid, _ = make_endpoint(c, tmp_path, workersMax=0)
                job = run(c, eid, {"echo": 1})
                _fill_until_refused(disk, c, eid)
                r = c.post(f"/v2/{eid}/cancel/{job}")
                assert r.status_code == 503 and r.headers.get("retry-after"), r.text
                assert status(c, eid, job)["status"] == "IN_QUEUE"
                disk.free()
                wait_for(lambda: status(c, eid, job)["status"] == "CANCELLED", 10,
                         "the kept cancel to land")
        finally:
            srv.stop()
