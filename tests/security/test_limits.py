"""Rate limits and quotas on a real server: past each limit a 429 with ``Retry-After``, and
the refused request changed nothing; a flood of bad keys does not lock out a valid user.

Each case runs a server with that limit set small (the shipped ones are RunPod's: /run
1,000 per 10 s, docs/security.md), so the case needs only a few requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import serve


@pytest.fixture
def limited(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    srv = serve(tmp_path, RUNPLANE_LIMITS=json.dumps(request.param))
    try:
        yield srv
    finally:
        srv.stop()


def _endpoint(c: httpx.Client, name: str = "ep") -> str:
    t = c.post("/v1/templates", json={"name": name, "imageName": "ubuntu:22.04",
                                      "isServerless": True})
    assert t.status_code == 200, t.text
    ep = c.post("/v1/endpoints", json={"templateId": t.json()["id"], "name": name,
                                       "workersMax": 0})
    assert ep.status_code == 200, ep.text
    return ep.json()["id"]


def _too_many(r: httpx.Response, says: str) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert says in r.json()["error"]


def _queued(c: httpx.Client, ep: str) -> int:
    return c.get(f"/v2/{ep}/health").json()["jobs"]["inQueue"]


@pytest.mark.parametrize("limited", [{"job_api": {"run": {"requests": 5},
                                                  "cancel": {"requests": 2}}}], indirect=True)
def test_job_api_routes_per_key_and_endpoint(limited: LiveServer) -> None:
    with limited.client(limited.user_key) as c:
        ep = _endpoint(c)
        ids = [c.post(f"/v2/{ep}/run", json={"input": {"n": i}}).json()["id"] for i in range(5)]
        _too_many(c.post(f"/v2/{ep}/run", json={"input": {"n": 5}}), "too many /run requests")
        assert _queued(c, ep) == 5
        assert [c.post(f"/v2/{ep}/cancel/{j}").status_code for j in ids[:2]] == [200, 200]
        _too_many(c.post(f"/v2/{ep}/cancel/{ids[2]}"), "too many /cancel requests")
        assert c.get(f"/v2/{ep}/status/{ids[2]}").json()["status"] == "IN_QUEUE"
        other = _endpoint(c, "other")  # another endpoint: its own budget
        assert c.post(f"/v2/{other}/run", json={"input": {}}).status_code == 200


@pytest.mark.parametrize("limited", [{"creates_per_minute": 3}], indirect=True)
def test_creates_per_client_address(limited: LiveServer) -> None:
    with limited.client(limited.user_key) as alice, limited.client(limited.other_key) as bob:
        for i in range(2):
            assert alice.post("/v1/templates", json={"name": f"t{i}",
                                                     "imageName": "ubuntu:22.04"}).status_code == 200
        assert bob.post("/v1/networkvolumes", json={"name": "v", "size": 1,
                                                    "dataCenterId": "LOCAL-1"}).status_code == 200
        # The same address, whoever the user: the fourth create is refused.
        _too_many(bob.post("/v1/templates", json={"name": "t", "imageName": "ubuntu:22.04"}),
                  "too many creates from this address")
        assert bob.get("/v1/templates").json() == [] and len(alice.get("/v1/templates").json()) == 2
        assert alice.get("/v1/templates").status_code == 200  # reads are not creates


@pytest.mark.parametrize("limited", [{"worker_registrations_per_minute": 2}], indirect=True)
def test_worker_registrations_per_client_address(limited: LiveServer) -> None:
    with limited.client(limited.user_key) as c:
        ep = _endpoint(c)
        assert [c.post(f"/v2/{ep}/workers", json={}).status_code for _ in range(2)] == [201, 201]
        _too_many(c.post(f"/v2/{ep}/workers", json={}), "too many worker registrations")
        assert len(c.get(f"/v2/{ep}/workers").json()) == 2


@pytest.mark.parametrize("limited", [{"failed_auth_per_minute": 3}], indirect=True)
def test_a_bad_key_flood_is_refused_and_a_valid_user_is_not(limited: LiveServer) -> None:
    with limited.client(limited.user_key) as alice:
        assert alice.get("/v1/templates").status_code == 200  # alice, known to the server
        codes = []
        for i in range(50):
            with limited.client(f"rpl_{i:040d}") as attacker:
                codes.append(attacker.get("/v1/templates").status_code)
        assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}
        with limited.client("rpw_not-a-worker") as worker:
            _too_many(worker.get("/v2/x/ping/y"), "too many failed authentications")
        time.sleep(2.2)  # past the key cache: alice is looked up again, from the same address
        assert alice.get("/v1/templates").status_code == 200
        assert alice.post("/v2/nosuch/run", json={"input": {}}).status_code == 404


@pytest.mark.parametrize("limited", [{"max_queued_jobs_per_endpoint": 4,
                                      "max_queued_bytes_per_endpoint": 3000}], indirect=True)
def test_queue_caps_per_endpoint(limited: LiveServer) -> None:
    with limited.client(limited.user_key) as c:
        many, big = _endpoint(c, "many"), _endpoint(c, "big")
        for i in range(4):
            assert c.post(f"/v2/{many}/run", json={"input": {"n": i}}).status_code == 200
        _too_many(c.post(f"/v2/{many}/run", json={"input": {}}), "queue is full (4 jobs")
        assert _queued(c, many) == 4
        blob = {"input": {"x": "y" * 1400}}
        assert [c.post(f"/v2/{big}/run", json=blob).status_code for _ in range(2)] == [200, 200]
        _too_many(c.post(f"/v2/{big}/run", json=blob), "bytes of inputs waiting")
        assert _queued(c, big) == 2
        c.post(f"/v2/{big}/purge-queue")
        assert c.post(f"/v2/{big}/run", json=blob).status_code == 200  # room again
