"""A container has a network of its own (issue 23, finding 6).

On the shared host network a user's container reached any service bound to the host's
127.0.0.1 and could take the port another user's load-balancing worker was given. On the
default ``[container] network = "private"`` each worker has its own: here, on a real podman and
the security defaults, bob's pod tries the host's loopback (a service this test binds on
127.0.0.1), alice's load-balancing worker (its published host port at every host address, and
its container's own address) and the server's port. Only the server answers; alice's worker
still gets her requests though bob listens on its host port number; and a real SDK worker in a
container still takes and finishes a job.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import Listener, needs_podman, wait_for

WORKER_IMAGE = "localhost/runplane-test/worker:latest"  # the SDK, FastAPI and uvicorn inside
APP = (Path(__file__).resolve().parents[2] / "examples" / "lb_worker" / "app.py").read_text()

# Bob's pod: connects to every (what, host, port) it is given, the container's gateway (the
# host, as the container sees it) added; prints what answered; then holds a port of its own.
PROBE = r"""
import json, socket, struct, sys, threading, time
targets, hold = json.loads(sys.argv[1]), int(sys.argv[2])
route = open("/proc/net/route").read().split("\n")[1].split()
gateway = socket.inet_ntoa(struct.pack("<I", int(route[2], 16)))
targets += [[what + " via the gateway", gateway, port] for what, host, port in targets
            if host == "127.0.0.1"]
out = {}
def probe(what, host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        out[f"{what} {host}:{port}"] = s.recv(64).decode(errors="replace").split("\r\n")[0]
    except OSError as err:
        out[f"{what} {host}:{port}"] = "refused: " + type(err).__name__
    finally:
        s.close()
threads = [threading.Thread(target=probe, args=t) for t in targets]
[t.start() for t in threads]
[t.join() for t in threads]
print("PROBE=" + json.dumps(out, sort_keys=True), flush=True)
held = socket.socket()
held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
held.bind(("0.0.0.0", hold))
held.listen(8)
while True:
    conn, _ = held.accept()
    conn.sendall(b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nbob")
    conn.close()
"""

pytestmark = needs_podman


@pytest.fixture(scope="module", autouse=True)
def _image() -> None:
    if subprocess.run(["podman", "image", "exists", WORKER_IMAGE], check=False).returncode != 0:
        pytest.skip(f"{WORKER_IMAGE} is not built: run scripts/setup_podman.sh")


def _host_addresses() -> list[str]:
    """Every IPv4 address of this host but loopback's (the bridges' gateways included)."""
    return sorted({a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                   if a.family == socket.AF_INET and not a.address.startswith("127.")})


def _inspect(name: str, fmt: str) -> str:
    return subprocess.run(["podman", "inspect", "--format", fmt, name], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def _lb_endpoint(c: httpx.Client) -> tuple[str, str]:
    """Alice's load-balancing endpoint, answering; (its id, the worker that answered)."""
    r = c.post("/v2/serverless", json={
        "name": "alice-lb", "type": "LOAD_BALANCER", "image": WORKER_IMAGE,
        "ports": ["8000/http"], "env": {"LOAD_SECONDS": "0"},
        "cpu": [{"id": "cpu3c", "vcpuCount": 2}], "workers": {"min": 1, "max": 1},
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 100}})
    assert r.status_code == 201, r.text
    ep, tpl = r.json()["id"], r.json()["templateId"]
    assert c.patch(f"/v1/templates/{tpl}", json={
        "dockerStartCmd": ["python", "-u", "-c", APP]}).status_code == 200
    answer = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello", timeout=120)).status_code == 200
                      and r, 180, "alice's worker to answer")
    return ep, answer.headers["x-runpod-worker-id"]


def test_a_container_reaches_the_server_and_nothing_else_of_the_host(
        live: LiveServer, alice: httpx.Client, bob: httpx.Client, listener: Listener) -> None:
    ep, worker = _lb_endpoint(alice)
    pod = None
    try:
        name = f"runplane-{worker}"
        # Where the server reaches alice's worker: its published host port (on the host
        # network, the host port it was given as its PORT).
        ports = json.loads(_inspect(name, "{{json .NetworkSettings.Ports}}") or "{}") or {}
        env = dict(e.split("=", 1) for e in json.loads(_inspect(name, "{{json .Config.Env}}")))
        published = int(ports["8000/tcp"][0]["HostPort"]) if ports.get("8000/tcp") \
            else int(env["PORT"])
        targets: list[list[Any]] = [["server", "127.0.0.1", live.port],
                                    ["host loopback service", "127.0.0.1", listener.port],
                                    ["alice's worker", "127.0.0.1", published]]
        inside = _inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
        if inside:  # its own address on its own network
            targets.append(["alice's container", inside, 8000])
        for address in _host_addresses():
            targets += [["host loopback service", address, listener.port],
                        ["alice's worker", address, published]]
        r = bob.post("/v1/pods", json={
            "name": "prober", "imageName": WORKER_IMAGE, "computeType": "CPU", "vcpuCount": 1,
            "dockerStartCmd": ["python", "-u", "-c", PROBE, json.dumps(targets),
                               str(published)]})
        assert r.status_code == 201, r.text
        pod = r.json()["id"]
        line = wait_for(lambda: next((ln for ln in bob.get(f"/v1/pods/{pod}/logs").text
                                      .splitlines() if ln.startswith("PROBE=")), None),
                        timeout=120, what="bob's probe")
        seen = json.loads(line.removeprefix("PROBE="))
        assert seen.pop(f"server 127.0.0.1:{live.port}").startswith("HTTP/1.1 200"), seen
        answered = {k: v for k, v in seen.items() if not v.startswith("refused")}
        assert answered == {}, f"bob's container reached {answered}"
        assert listener.hits == []
        # Bob holds the host port number alice's worker was given, in his own network: alice's
        # requests still reach her worker.
        again = alice.get(f"/lb/{ep}/hello", timeout=60)
        assert again.status_code == 200 and again.headers["x-runpod-worker-id"] == worker
        assert again.json()["worker"] == worker
    finally:
        if pod is not None:
            bob.delete(f"/v1/pods/{pod}")
        alice.delete(f"/v1/endpoints/{ep}")


def test_an_sdk_worker_in_its_own_network_takes_and_finishes_a_job(bob: httpx.Client) -> None:
    r = bob.post("/v2/serverless", json={
        "name": "bob-queue", "type": "QUEUE", "image": WORKER_IMAGE,
        "cpu": [{"id": "cpu3c", "vcpuCount": 2}], "workers": {"min": 0, "max": 1},
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}})
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    try:
        r = bob.post(f"/v2/{ep}/runsync?wait=120000", json={"input": {"echo": "through the door"}},
                     timeout=150)
        assert r.status_code == 200, r.text
        done = r.json()
        if done["status"] != "COMPLETED":
            done = wait_for(lambda: (s := bob.get(f"/v2/{ep}/status/{done['id']}").json())
                            ["status"] == "COMPLETED" and s, 120, "the job")
        assert done["output"]["echo"] == "through the door" and done["output"]["in_container"]
    finally:
        bob.delete(f"/v1/endpoints/{ep}")
