"""What workers post: only the worker holding a job may finish it or stream into it, and a
result no reader could carry is refused at job-done with the job FAILED, after which every
read of it still answers (never a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer


class Worker:
    """A manual worker registered through the API, speaking the real worker protocol."""

    def __init__(self, live: LiveServer, ep: str) -> None:
        with live.client(live.user_key) as c:
            reg = c.post(f"/v2/{ep}/workers", json={})
        assert reg.status_code == 201, reg.text
        body = reg.json()
        self.id, self.env = body["id"], body["env"]
        self.http = httpx.Client(headers={"Authorization": self.env["RUNPOD_AI_API_KEY"]},
                                 timeout=30)

    def _url(self, var: str, job_id: str) -> str:
        return self.env[var].replace("$RUNPOD_POD_ID", self.id).replace("$ID", job_id)

    def take(self) -> dict[str, Any]:
        r = self.http.get(self._url("RUNPOD_WEBHOOK_GET_JOB", self.id))
        assert r.status_code == 200, r.text
        return r.json()

    def done(self, job_id: str, raw: bytes) -> httpx.Response:
        return self.http.post(self._url("RUNPOD_WEBHOOK_POST_OUTPUT", job_id), content=raw,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})

    def stream(self, job_id: str, raw: bytes) -> httpx.Response:
        return self.http.post(self._url("RUNPOD_WEBHOOK_POST_STREAM", job_id), content=raw)


@pytest.fixture(scope="module")
def endpoint(alice: httpx.Client) -> str:
    t = alice.post("/v1/templates", json={"name": "results", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    return alice.post("/v1/endpoints", json={"templateId": t["id"], "name": "results",
                                             "workersMax": 0}).json()["id"]


@pytest.fixture(scope="module")
def worker(live: LiveServer, endpoint: str) -> Worker:
    return Worker(live, endpoint)


def _reads(alice: httpx.Client, ep: str, job_id: str) -> dict[str, int]:
    return {path: alice.get(path).status_code for path in (
        f"/v2/{ep}/status/{job_id}", f"/v2/{ep}/stream/{job_id}", f"/v1/jobs/{job_id}",
        f"/v1/endpoints/{ep}/jobs")}


BAD_RESULTS = [
    ("NaN", b'{"output": {"v": NaN}}', "not valid JSON"),
    ("Infinity", b'{"output": [Infinity]}', "not valid JSON"),
    ("-Infinity", b'{"output": -Infinity}', "not valid JSON"),
    ("a huge exponent", b'{"output": 1e400}', "not valid JSON"),
    ("2**64", b'{"output": 18446744073709551616}', "beyond 64 bits"),
    ("below -2**63", b'{"output": -9223372036854775809}', "beyond 64 bits"),
    ("300 levels deep", b'{"output": ' + b"[" * 300 + b"]" * 300 + b"}", "deeper than 254"),
    ("100k levels deep", b'{"output": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "not valid JSON"),
    ("not JSON at all", b"output=1", "not valid JSON"),
]


@pytest.mark.parametrize(("case", "raw", "why"), BAD_RESULTS, ids=[c[0] for c in BAD_RESULTS])
def test_unreadable_results_fail_the_job_and_reads_still_answer(
        case: str, raw: bytes, why: str, alice: httpx.Client, endpoint: str,
        worker: Worker) -> None:
    job_id = alice.post(f"/v2/{endpoint}/run", json={"input": {}}).json()["id"]
    assert worker.take()["id"] == job_id
    r = worker.done(job_id, raw)
    assert r.status_code == 400 and why in r.json()["error"], r.text
    st = alice.get(f"/v2/{endpoint}/status/{job_id}").json()
    assert st["status"] == "FAILED" and why in st["error"] and "output" not in st
    assert set(_reads(alice, endpoint, job_id).values()) == {200}
    assert worker.stream(job_id, raw).status_code in (200, 400)  # never a 500


def test_only_the_holder_finishes_or_streams(live: LiveServer, alice: httpx.Client,
                                             endpoint: str, worker: Worker) -> None:
    other = Worker(live, endpoint)
    queued = alice.post(f"/v2/{endpoint}/run", json={"input": {"q": 1}}).json()["id"]
    # A job never taken: nobody holds it.
    assert other.done(queued, b'{"output": "forged"}').status_code == 403
    assert other.stream(queued, b'{"output": "forged"}').status_code == 403
    assert alice.get(f"/v2/{endpoint}/status/{queued}").json()["status"] == "IN_QUEUE"
    assert worker.take()["id"] == queued
    # Held by worker: the other one is refused, the job unchanged.
    assert other.done(queued, b'{"output": "forged"}').status_code == 403
    assert other.stream(queued, b'{"output": "forged"}').status_code == 403
    st = alice.get(f"/v2/{endpoint}/stream/{queued}").json()
    assert st["status"] == "IN_PROGRESS" and st["stream"] == []
    assert "refused: worker" in live.log()
    # The holder: streams, finishes, and a retried job-done is answered the same way.
    assert worker.stream(queued, b'{"output": "chunk"}').status_code == 200
    assert worker.done(queued, b'{"output": "real"}').status_code == 200
    assert worker.done(queued, b'{"output": "real"}').status_code == 200
    st = alice.get(f"/v2/{endpoint}/status/{queued}").json()
    assert st["status"] == "COMPLETED" and st["output"] == "real"
    assert other.done(queued, b'{"output": "late"}').status_code == 403
    assert alice.get(f"/v2/{endpoint}/status/{queued}").json()["output"] == "real"
