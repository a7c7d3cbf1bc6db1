"""The smaller doors: /metrics closed without an admin key, the dashboard and the API docs
confined by their headers, bodies refused the way they should be, job ids unguessable and
a manual worker's handler never handed its user's key."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import refused, snapshot

HEADER_CASES = [
    ("/", "content-security-policy", "script-src 'self'"),
    ("/", "x-frame-options", "DENY"),
    ("/ui/app.js", "content-security-policy", "frame-ancestors 'none'"),
    ("/v1/docs", "content-security-policy", "script-src 'self';"),
    ("/v1/docs", "x-frame-options", "DENY"),
]


@pytest.mark.parametrize(("path", "header", "value"), HEADER_CASES)
def test_pages_holding_a_key_are_confined(path: str, header: str, value: str,
                                          live: LiveServer) -> None:
    r = httpx.get(live.url + path)
    assert r.status_code == 200 and value in r.headers[header]


def test_docs_load_nothing_from_another_host(live: LiveServer) -> None:
    """Swagger UI's files are served from here: a CDN host in the policy would let any of
    its files run beside the dashboard's key."""
    r = httpx.get(live.url + "/v1/docs")
    assert "http" not in r.headers["content-security-policy"] and "//" not in r.text


def test_metrics_need_an_admin_key(live: LiveServer, alice: httpx.Client,
                                   admin: httpx.Client) -> None:
    refused(httpx.get(live.url + "/metrics"), 401)
    refused(alice.get("/metrics"), 403)
    assert admin.get("/metrics").status_code == 200


def test_bodies(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(alice)

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"x" * 100_000

    refused(alice.post("/v1/templates", content=chunks()), 413)
    r = alice.post("/v1/templates", content=b'{"name": "t", "imageName": "ubuntu:22.04"}',
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 400, r.text  # text/plain is not read as JSON
    r = alice.delete("/v1/templates")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    r = alice.put("/v2/someendpoint/run")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert snapshot(alice) == before


def test_job_ids_are_random_uuids(alice: httpx.Client) -> None:
    t = alice.post("/v1/templates", json={"name": "ids", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    ep = alice.post("/v1/endpoints", json={"templateId": t["id"], "workersMax": 0}).json()["id"]
    ids = [alice.post(f"/v2/{ep}/run", json={"input": {}}).json()["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i.removesuffix("-u1")).version == 4 for i in ids)
    alice.post(f"/v2/{ep}/purge-queue")


def test_a_manual_workers_handler_never_sees_its_users_key(live: LiveServer,
                                                           alice: httpx.Client) -> None:
    t = alice.post("/v1/templates", json={"name": "manual", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    ep = alice.post("/v1/endpoints", json={"templateId": t["id"], "workersMax": 0}).json()["id"]
    show = "import os; print('KEYS', os.environ.get('RUNPLANE_API_KEY'), " \
           "os.environ.get('RUNPOD_API_KEY'), bool(os.environ.get('RUNPOD_AI_API_KEY')))"
    out = subprocess.run(
        [sys.executable, "-m", "runplane", "worker", "run", "--endpoint", ep, "--url", live.url,
         "--", sys.executable, "-c", show],
        env={"PATH": "/usr/bin:/bin", "RUNPLANE_API_KEY": live.user_key,
             "RUNPOD_API_KEY": live.user_key}, capture_output=True, text=True, timeout=60,
        check=False)
    assert "KEYS None None True" in out.stdout, out.stdout + out.stderr
    assert live.user_key not in out.stdout
