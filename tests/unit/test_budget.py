"""The held-bytes budgets and the cache of just-finished jobs (runplane.broker.budget) through
the job book's transitions: what each counts, when it is released, and what leaves memory
(no writer, registry or event loop: the book is pure state); and a webhook's body, counted
while it is posted (a real HTTP listener on loopback)."""

from __future__ import annotations

import asyncio

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runplane.broker.book import JobBook
from runplane.broker.budget import HeldBytes
from runplane.broker.models import COMPLETED, FAILED, Job, Worker
from runplane.broker.webhook_guard import networks
from runplane.broker.webhooks import WebhookSender
from runplane.errors import RateLimited, TooLarge
from runplane.worker_state import WorkerState

NOW = 1_000.0


def _book(per_endpoint: int = 0, per_user: int = 0, cache_bytes: int = 10**9) -> JobBook:
    w = Worker(id="w1", endpoint_id="ep1", user_id="u", token_hash="t",
               status=WorkerState.IDLE, desired_status=WorkerState.RUNNING, manual=False,
               created_at=0.0)
    return JobBook({"w1": w}.get, max_retries=3, run_retention_s=60.0,
                   runsync_retention_s=60.0, held=HeldBytes(per_endpoint, per_user),
                   cache_bytes=cache_bytes)


def _job(i: int, size: int, endpoint_id: str = "ep1", user_id: str = "u") -> Job:
    return Job(id=f"j{i}", endpoint_id=endpoint_id, user_id=user_id, payload={"input": i},
               created_at=NOW, expires_at=NOW + 3600, size=size)


def _run(book: JobBook, job: Job) -> Worker:
    w = book._worker_of("w1")
    assert w is not None and book.reserve(w, 1) == [job]
    book.confirm(w, [job], NOW)
    return w


def test_inputs_count_per_endpoint_and_per_user_until_the_job_ends() -> None:
    book = _book(per_endpoint=1000, per_user=1500)
    held = book.held
    book.admit(_job(1, 600), NOW)
    book.admit(_job(2, 700, endpoint_id="ep2"), NOW)
    assert held.endpoints == {"ep1": 600, "ep2": 700} and held.users == {"u": 1300}
    held.check("ep1", "u", 200)  # fits both
    with pytest.raises(RateLimited, match="byte budget"):
        held.check("ep1", "u", 401)  # the endpoint's
    with pytest.raises(RateLimited):
        held.check("ep3", "u", 201)  # the user's, on another endpoint
    held.check("ep3", "other", 999)  # another user's budget is their own
    with pytest.raises(TooLarge, match="can never be admitted"):
        held.check("ep3", "other", 1001)
    j1 = book.jobs["j1"]
    w = _run(book, j1)
    assert held.endpoints["ep1"] == 600  # running: its input is still held (a retry needs it)
    book.report(j1, w, COMPLETED, "x" * 10, None, NOW, 12)
    assert held.endpoints == {"ep2": 700} and held.users == {"u": 700} and j1.held == 0
    book.delete(book.jobs["j2"], "ttl expired", NOW)
    assert held.endpoints == {} and held.users == {}


def test_chunks_count_until_they_go_to_the_store() -> None:
    book = _book(per_endpoint=1000)
    job = _job(1, 100)
    book.admit(job, NOW)
    _run(book, job)
    book.stream_chunk(job, "c", 300)
    assert book.held.endpoints["ep1"] == 400 and job.chunks == ["c"]
    book.stream_chunk(job, "d", 700)  # over the budget: none is kept from now on
    assert book.held.endpoints["ep1"] == 100 and job.chunks == [] and job.chunks_in_store
    assert job.nchunks == 2


def test_finished_jobs_leave_memory_past_the_cache_bytes_once_stored() -> None:
    book = _book(cache_bytes=1000)
    jobs = [_job(i, 100) for i in range(4)]
    for job in jobs:
        book.admit(job, NOW)
        w = _run(book, job)
        book.report(job, w, COMPLETED, "out", None, NOW, 300)
    assert len(book.jobs) == 4  # final, not stored yet: every one stays
    for job in jobs:
        book.keep(job)
    # 400 bytes each: the two newest fit in 1,000.
    assert set(book.jobs) == {"j2", "j3"} and book.finished.bytes == 800
    # Whoever held an evicted job still has its result.
    assert jobs[0].output == "out"
    # A retried job leaves the cache's count; a deleted one too.
    book.reset(jobs[3])
    assert book.finished.bytes == 400 and book.held.endpoints["ep1"] == 100
    book.forget_results(["j2"])
    assert book.finished.bytes == 0


def test_a_result_is_never_refused_by_a_full_budget() -> None:
    book = _book(per_endpoint=100)
    job = _job(1, 100)
    book.admit(job, NOW)
    w = _run(book, job)
    with pytest.raises(RateLimited):
        book.held.check("ep1", "u", 1)
    fx = book.report(job, w, FAILED, None, "e" * 5000, NOW, 5000)
    assert job.status == FAILED and fx.finals == [job] and book.held.endpoints == {}


async def test_a_webhook_body_counts_while_held_and_one_over_the_budget_is_not_sent() -> None:
    hits: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.rfile.read(int(self.headers["content-length"])))
            during.append(dict(held.users))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    held = HeldBytes(per_user=1000)
    during: list[dict[str, int]] = []
    sender = WebhookSender(0.0, networks(["127.0.0.0/8"]), held)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        small, big = _job(1, 600), _job(2, 1001)
        small.webhook = big.webhook = url
        sender.send(small, b"w" * 600)
        assert held.users == {"u": 600}  # counted from the moment it is held
        while sender._tasks:
            await asyncio.sleep(0.01)
        assert hits == [b"w" * 600] and during == [{"u": 600}]  # and while it was posted
        assert held.users == {} and held.endpoints == {}  # released once delivered
        # Over the user's budget: no attempt is made, nothing is held.
        sender.send(big, b"w" * 1001)
        assert not sender._tasks and len(hits) == 1
        assert held.users == {} and held.endpoints == {}
    finally:
        await sender.aclose()
        server.shutdown()
        server.server_close()
