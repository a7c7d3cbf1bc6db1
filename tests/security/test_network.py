"""The server calls out only where it should: a webhook to loopback, link-local (the cloud's
metadata service), private or reserved addresses is refused at /run, and one whose name
resolves there is refused when it is sent (the listener hears nothing); redirects are not
followed; the operator's allowed ranges are the exception."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import Listener, refused, serve, wait_for


@pytest.fixture(scope="module")
def endpoint(alice: httpx.Client) -> str:
    t = alice.post("/v1/templates", json={"name": "hooks", "imageName": "ubuntu:22.04",
                                          "isServerless": True}).json()
    ep = alice.post("/v1/endpoints", json={"templateId": t["id"], "name": "hooks",
                                           "workersMax": 0})
    assert ep.status_code == 200, ep.text
    return ep.json()["id"]


def _jobs(alice: httpx.Client, ep: str) -> int:
    return alice.get(f"/v2/{ep}/health").json()["jobs"]["inQueue"]


REFUSED_AT_RUN = [
    ("loopback", "http://127.0.0.1:{port}/hook"),
    ("loopback, another spelling", "http://127.1:{port}/hook"),
    ("loopback as one number", "http://2130706433:{port}/hook"),
    ("loopback in hex", "http://0x7f.0.0.1:{port}/hook"),
    ("IPv6 loopback", "http://[::1]:{port}/hook"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:{port}/hook"),
    ("localhost", "http://localhost:{port}/hook"),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/"),
    ("private 10/8", "http://10.0.0.1/hook"),
    ("private 192.168/16", "https://192.168.1.1/hook"),
    ("shared CGNAT", "http://100.64.0.1/hook"),
    ("unspecified", "http://0.0.0.0:{port}/hook"),
    ("not http", "file:///etc/passwd"),
]


@pytest.mark.parametrize(("case", "url"), REFUSED_AT_RUN, ids=[c[0] for c in REFUSED_AT_RUN])
def test_webhooks_to_internal_addresses_are_refused_at_run(
        case: str, url: str, alice: httpx.Client, endpoint: str, listener: Listener) -> None:
    queued = _jobs(alice, endpoint)
    r = alice.post(f"/v2/{endpoint}/run",
                   json={"input": {}, "webhook": url.format(port=listener.port)})
    refused(r, 400, "webhook")
    assert _jobs(alice, endpoint) == queued
    assert listener.hits == []


def _finish(live: LiveServer, ep: str, job_id: str) -> None:
    """Take and finish the job as a registered manual worker (the real worker protocol)."""
    with live.client(live.user_key) as c:
        reg = c.post(f"/v2/{ep}/workers", json={}).json()
    env = reg["env"]
    with httpx.Client(headers={"Authorization": env["RUNPOD_AI_API_KEY"]}, timeout=30) as w:
        take = env["RUNPOD_WEBHOOK_GET_JOB"].replace("$ID", reg["id"])
        job = wait_for(lambda: (r := w.get(take)).status_code == 200 and r.json(), what="job")
        assert job["id"] == job_id
        done = (env["RUNPOD_WEBHOOK_POST_OUTPUT"].replace("$RUNPOD_POD_ID", reg["id"])
                .replace("$ID", job_id))
        assert w.post(done, json={"output": {"secret": "worker-chosen"}}).status_code == 200
    with live.client(live.user_key) as c:
        c.delete(f"/v2/{ep}/workers/{reg['id']}")


def test_a_name_resolving_to_loopback_is_refused_when_sent(
        live: LiveServer, alice: httpx.Client, endpoint: str, listener: Listener) -> None:
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, listener.port)}
    if not any(a.startswith("127.") or a == "::1" for a in addresses):
        pytest.skip(f"{host} does not resolve to loopback here ({addresses})")
    r = alice.post(f"/v2/{endpoint}/run",
                   json={"input": {}, "webhook": f"http://{host}:{listener.port}/hook"})
    assert r.status_code == 200, r.text  # a name: judged on what it resolves to at send time
    job_id = r.json()["id"]
    _finish(live, endpoint, job_id)
    wait_for(lambda: alice.get(f"/v2/{endpoint}/status/{job_id}").json()["status"]
             == "COMPLETED", what="COMPLETED")
    time.sleep(1.0)  # three attempts, 0.2 s apart, would all have arrived
    assert listener.hits == []
    assert "webhook for job" in live.log() and "refused" in live.log()


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.send_response(307)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def allowed(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose operator allows 127.0.0.0/8 for webhooks (a host of their own)."""
    srv = serve(tmp_path, RUNPLANE_SECURITY='{"webhook_allow_cidrs": ["127.0.0.0/8"]}')
    try:
        yield srv
    finally:
        srv.stop()


def test_allowed_ranges_are_delivered_and_redirects_not_followed(
        allowed: LiveServer, listener: Listener) -> None:
    redirector = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    _Redirector.target = f"http://127.0.0.1:{listener.port}/redirected"
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        with allowed.client(allowed.user_key) as c:
            t = c.post("/v1/templates", json={"name": "h", "imageName": "ubuntu:22.04",
                                              "isServerless": True}).json()
            ep = c.post("/v1/endpoints", json={"templateId": t["id"], "workersMax": 0}).json()["id"]
            direct = c.post(f"/v2/{ep}/run", json={
                "input": {}, "webhook": f"http://127.0.0.1:{listener.port}/direct"}).json()["id"]
            bounced = c.post(f"/v2/{ep}/run", json={
                "input": {}, "webhook": f"http://127.0.0.1:{redirector.server_address[1]}/r"})
            assert bounced.status_code == 200
        for job in (direct, bounced.json()["id"]):
            _finish(allowed, ep, job)
        wait_for(lambda: [p for p, _ in listener.hits if p == "/direct"], what="delivery")
        time.sleep(1.0)
        assert [p for p, _ in listener.hits] == ["/direct"]  # never "/redirected"
    finally:
        redirector.shutdown()
        redirector.server_close()
