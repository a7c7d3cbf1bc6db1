"""Memory a user can make the server hold (issue 23, finding 4): every byte counts against a
per-endpoint and a per-user budget, results leave memory once stored, and past a budget
new submissions are refused (429, or 413 when one alone is over) with nothing lost: what a
worker reports for a job already acknowledged is always taken and stays readable.

One real ``runplane serve`` with small budgets (6 MB an endpoint, 9 MB a user, a 4 MB cache
of just-finished jobs), a manual worker speaking the real worker protocol over HTTP, and
the server's resident memory read from /proc (psutil)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import FAST, serve, wait_for
from tests.security.test_results import Worker

MB = 1_000_000
BUDGETS = {"max_held_bytes_per_endpoint": 6 * MB, "max_held_bytes_per_user": 9 * MB,
           "result_cache_bytes": 4 * MB}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    broker = {**json.loads(FAST["RUNPLANE_BROKER"]), **BUDGETS}
    srv = serve(tmp_path_factory.mktemp("memory"), RUNPLANE_BROKER=json.dumps(broker))
    try:
        yield srv
    finally:
        srv.stop()


def _endpoint(alice: httpx.Client, name: str) -> str:
    t = alice.post("/v1/templates", json={"name": name, "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    return alice.post("/v1/endpoints", json={"templateId": t["id"], "name": name,
                                             "workersMax": 0}).json()["id"]


def _run(alice: httpx.Client, ep: str, blob_bytes: int) -> httpx.Response:
    return alice.post(f"/v2/{ep}/run", json={"input": {"blob": "y" * blob_bytes}})


def _refused(r: httpx.Response, status: int) -> None:
    """RunPod's JSON error shape; a 429 says when to come back."""
    assert r.status_code == status, r.text[:300]
    assert "budget" in r.json()["error"] or "holds" in r.json()["error"], r.text[:300]
    if status == 429:
        assert int(r.headers["retry-after"]) >= 1


def _jobs(alice: httpx.Client, ep: str) -> list[str]:
    return sorted(j["id"] for j in alice.get(f"/v1/endpoints/{ep}/jobs").json()["jobs"])


def test_results_leave_memory_once_stored_and_all_stay_readable(
        live: LiveServer, alice: httpx.Client) -> None:
    ep = _endpoint(alice, "results")
    worker = Worker(live, ep)
    assert live.proc is not None
    server = psutil.Process(live.proc.pid)

    def one(i: int) -> str:
        job_id = alice.post(f"/v2/{ep}/run", json={"input": {"i": i}}).json()["id"]
        assert worker.take()["id"] == job_id
        result = json.dumps({"output": f"{i}:" + "x" * (4 * MB)}).encode()
        assert worker.done(job_id, result).status_code == 200
        return job_id

    one(-1)  # (the allocator's first large blocks)
    before = server.memory_info().rss
    ids = [one(i) for i in range(25)]  # 100 MB of results, 25 times the cache
    grown = server.memory_info().rss - before
    # Today's code kept every result in memory for its retention: ~100 MB or more.
    assert grown < 40 * MB, f"the server grew by {grown / MB:.0f} MB for 100 MB of results"
    for i, job_id in enumerate(ids):  # every one read back (from the store)
        st = alice.get(f"/v2/{ep}/status/{job_id}").json()
        assert st["status"] == "COMPLETED", st.get("status")
        assert st["output"].startswith(f"{i}:") and len(st["output"]) == 4 * MB + len(f"{i}:")


def test_submissions_past_the_budgets_are_refused_and_nothing_is_lost(
        live: LiveServer, alice: httpx.Client) -> None:
    ep, other = _endpoint(alice, "budget"), _endpoint(alice, "budget-2")
    # 1.5 MB inputs: three fit the endpoint's 6 MB, the fourth does not (429).
    accepted = [_run(alice, ep, 1_500_000) for _ in range(3)]
    assert [r.status_code for r in accepted] == [200] * 3
    _refused(_run(alice, ep, 1_500_000), 429)
    # One input over the endpoint's budget by itself could never be admitted (413).
    _refused(_run(alice, other, 7 * MB), 413)
    # The user's 9 MB: 4.5 MB held on `ep`, so another endpoint of theirs takes 3 MB more...
    assert [_run(alice, other, 1_500_000).status_code for _ in range(2)] == [200, 200]
    _refused(_run(alice, other, 1_500_000), 429)  # ...and no more, though it has room
    ids = sorted(r.json()["id"] for r in accepted)
    assert _jobs(alice, ep) == ids  # the refused created nothing

    # A worker's posts for an acknowledged job are taken even past the budgets.
    worker = Worker(live, ep)
    job_id = worker.take()["id"]
    chunks = [f"chunk{i}:" + "z" * MB for i in range(3)]
    for c in chunks:  # the 2nd and 3rd are over the endpoint's budget: kept in the store
        assert worker.stream(job_id, json.dumps({"output": c}).encode()).status_code == 200
    # A progress update past the budget is refused (the job goes on).
    progress = json.dumps({"status": "IN_PROGRESS", "output": "p" * (2 * MB)}).encode()
    assert worker.done(job_id, progress).status_code == 429
    st = alice.get(f"/v2/{ep}/stream/{job_id}").json()
    assert [c["output"] for c in st["stream"]] == chunks and st["status"] == "IN_PROGRESS"
    result = json.dumps({"output": "r" * (3 * MB)}).encode()
    assert worker.done(job_id, result).status_code == 200
    st = alice.get(f"/v2/{ep}/status/{job_id}").json()
    assert st["status"] == "COMPLETED" and st["output"] == "r" * (3 * MB)
    # Its input left the budget with it: room for one more.
    assert _run(alice, ep, 1_500_000).status_code == 200
    # Nothing lost: every acknowledged job is there, the rest still queued.
    for j in _jobs(alice, ep):
        assert alice.get(f"/v2/{ep}/status/{j}").json()["status"] in ("IN_QUEUE", "COMPLETED")
    for e in (ep, other):
        alice.post(f"/v2/{e}/purge-queue")


def test_the_openai_passthrough_counts_its_bytes(live: LiveServer, alice: httpx.Client) -> None:
    ep = _endpoint(alice, "openai")
    url = f"/v2/{ep}/openai/v1/chat/completions"
    big = {"model": "m", "messages": [{"role": "user", "content": "q" * (7 * MB)}]}
    # Today's passthrough counted 0 bytes and waited for a worker (the timeout).
    _refused(alice.post(url, json=big, timeout=10), 413)
    answers: list[httpx.Response] = []
    body = {"model": "m", "messages": [{"role": "user", "content": "q" * (4 * MB)}]}
    waiting = threading.Thread(target=lambda: answers.append(alice.post(url, json=body)))
    waiting.start()
    try:
        wait_for(lambda: alice.get(f"/v2/{ep}/health").json()["jobs"]["inQueue"] == 1,
                 what="the OpenAI request queued")
        _refused(_run(alice, ep, 2_500_000), 429)  # 4 MB of it held: 2.5 MB more do not fit
        worker = Worker(live, ep)
        job = worker.take()
        assert job["input"]["openai_route"] == "/v1/chat/completions"
        answer = {"id": "c1", "object": "chat.completion", "choices": []}
        assert worker.done(job["id"], json.dumps({"output": answer}).encode()).status_code == 200
    finally:
        waiting.join(timeout=30)
    assert answers and answers[0].status_code == 200 and answers[0].json()["id"] == "c1"
    assert _run(alice, ep, 2_500_000).status_code == 200  # released with its end
    alice.post(f"/v2/{ep}/purge-queue")


def test_batch_finalize_counts_its_bytes(alice: httpx.Client) -> None:
    ep = _endpoint(alice, "batch")

    def batch(n: int) -> str:
        r = alice.post(f"/v2/{ep}/batch",
                       json=[{"input": {"blob": "b" * 1_500_000}} for _ in range(n)])
        assert r.status_code == 200, r.text[:300]
        return r.json()["id"]

    # 7.5 MB of inputs at once: over the endpoint's budget by itself (413), still a DRAFT.
    too_big = batch(5)
    _refused(alice.post(f"/v2/{ep}/batch/{too_big}/finalize"), 413)
    assert alice.get(f"/v2/{ep}/batch/{too_big}").json()["status"] == "DRAFT"
    # 3 MB while a 4 MB /run is queued: no room now (429), and none of it queued.
    fits_later = batch(2)
    assert _run(alice, ep, 4 * MB).status_code == 200
    _refused(alice.post(f"/v2/{ep}/batch/{fits_later}/finalize"), 429)
    assert alice.get(f"/v2/{ep}/health").json()["jobs"]["inQueue"] == 1
    alice.post(f"/v2/{ep}/purge-queue")
    r = alice.post(f"/v2/{ep}/batch/{fits_later}/finalize")
    assert r.status_code == 200 and r.json()["status"] == "FINALIZED", r.text[:300]
    alice.post(f"/v2/{ep}/batch/{fits_later}/cancel")
    alice.post(f"/v2/{ep}/batch/{too_big}/cancel")
