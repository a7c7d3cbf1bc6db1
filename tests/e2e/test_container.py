"""Container workers end to end: a real server runs the test image (built by
scripts/setup_podman.sh from a debootstrap root filesystem, the runpod SDK inside, no registry)
through podman. Every wait is a poll with a deadline; nothing asserts how fast.

One server serves the whole module (each test makes its own endpoints and pods)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer, free_port
from tests.e2e.scaling_kit import fast_server, final, health, run, status, wait_for, workers

IMAGE = "localhost/runplane-test/worker:latest"
ROOT = Path(__file__).resolve().parents[2]


def _podman_ready() -> str | None:
    """None when podman runs and the test image is built, else why not."""
    try:
        ok = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True,
                            timeout=60, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError) as err:
        return f"podman is not usable here ({err}); run scripts/setup_podman.sh as root"
    return None if ok else f"{IMAGE} is not built: run scripts/setup_podman.sh as root"


def containers(name_prefix: str = "runplane-") -> list[str]:
    out = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    return [n for n in out if n.startswith(name_prefix)]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    why = _podman_ready()
    if why:
        pytest.skip(why)
    server = fast_server(tmp_path_factory.mktemp("containers"))
    try:
        yield server
    finally:
        server.stop()
    # A server that stops stops its containers.
    owner = hashlib.sha256(str(server.data_dir.resolve()).encode()).hexdigest()[:16]
    left = subprocess.run(["podman", "ps", "--all", "--filter", f"label=runplane.owner={owner}",
                           "--format", "{{.Names}}"], capture_output=True, text=True,
                          timeout=60, check=True).stdout.split()
    assert left == [], f"containers left after the server stopped: {left}"


def make_template(c: httpx.Client, name: str, **fields: Any) -> str:
    r = c.post("/v1/templates", json={"name": name, "imageName": IMAGE, "isServerless": True,
                                      "env": {"GREETING": "hello", "RUNPOD_LOG_LEVEL": "WARN"},
                                      **fields})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def make_endpoint(c: httpx.Client, template_id: str, **fields: Any) -> str:
    body = {"name": f"ep-{template_id[:6]}", "templateId": template_id, "computeType": "CPU",
            "vcpuCount": 1, "workersMin": 0, "workersMax": 1, "idleTimeout": 1,
            "scalerType": "REQUEST_COUNT", "scalerValue": 1, **fields}
    r = c.post("/v1/endpoints", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_endpoint_scales_from_zero_serves_cancels_and_scales_down(srv: LiveServer) -> None:
    with srv.client() as c:
        r = c.post("/v1/networkvolumes", json={"name": "v", "size": 1, "dataCenterId": "LOCAL-1"})
        assert r.status_code == 200, r.text
        volume = r.json()["id"]
        eid = make_endpoint(c, make_template(c, "container-worker"), networkVolumeId=volume)
        assert workers(c, eid) == []

        # From zero: the job starts a container whose image CMD runs the unmodified SDK.
        done = final(c, eid, run(c, eid, {"echo": "hi", "write": "proof.txt"}), timeout=120)
        assert done["status"] == "COMPLETED", done
        out = done["output"]
        wid = out["worker"]
        assert out["echo"] == "hi" and out["in_container"] is True and out["greeting"] == "hello"
        assert out["runplane_env"] == [] and out["cwd"] == "/app"
        assert "proof.txt" in out["volume"]  # the network volume is at /runpod-volume
        (pod,) = workers(c, eid)
        assert pod["id"] == wid and pod["image"] == IMAGE
        assert f"runplane-{wid}" in containers()

        # Cancel: the async handler is stopped through job-stop; the worker serves again.
        job = run(c, eid, {"sleep": 300})
        wait_for(lambda: status(c, eid, job)["status"] == "IN_PROGRESS", 60, "the long job")
        assert c.post(f"/v2/{eid}/cancel/{job}").status_code == 200
        assert final(c, eid, job)["status"] == "CANCELLED"
        again = final(c, eid, run(c, eid, {"echo": "after cancel"}))
        assert again["status"] == "COMPLETED" and again["output"]["echo"] == "after cancel"

        # idleTimeout 1 s: the worker goes, and its container with it.
        wait_for(lambda: workers(c, eid) == [], 60, "scale-down to zero")
        wait_for(lambda: f"runplane-{wid}" not in containers(), 60, "the container to be removed")
        assert sum(health(c, eid)["workers"].values()) == 0
        log = (srv.data_dir / "logs" / f"{wid}.log").read_text()
        assert f"starting {wid}: podman image {IMAGE}" in log


def test_stream_from_a_start_command_override(srv: LiveServer) -> None:
    with srv.client() as c:
        tid = make_template(c, "container-stream",
                            dockerStartCmd=["python", "-u", "/app/stream.py"])
        eid = make_endpoint(c, tid)
        job = run(c, eid, {"n": 4})
        chunks: list[Any] = []

        def drained() -> bool:
            r = c.get(f"/v2/{eid}/stream/{job}")
            assert r.status_code == 200, r.text
            body = r.json()
            chunks.extend(s["output"] for s in body.get("stream", []))
            return body["status"] == "COMPLETED"

        wait_for(drained, 120, "the stream to complete")
        assert chunks == [{"i": i} for i in range(4)]
        assert final(c, eid, job)["output"] == [{"i": i} for i in range(4)]


def test_pod_publishes_its_port(srv: LiveServer) -> None:
    port = free_port()
    with srv.client() as c:
        r = c.post("/v1/pods", json={
            "name": "web", "imageName": IMAGE, "computeType": "CPU", "vcpuCount": 1,
            "dockerStartCmd": ["python", "-u", "/app/pod_server.py", str(port)],
            "ports": [f"{port}/http"]})
        assert r.status_code == 201, r.text
        pod = r.json()
        assert pod["portMappings"] == {str(port): port}

        def answer() -> str | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except httpx.HTTPError:
                return None

        assert wait_for(answer, 120, "the pod's web server") == f"hello from {pod['id']}\n"
        assert "pod server on port" in c.get(f"/v1/pods/{pod['id']}/logs").text
        assert f"runplane-{pod['id']}" in containers()
        assert c.delete(f"/v1/pods/{pod['id']}").status_code == 204
        assert f"runplane-{pod['id']}" not in containers()
        assert answer() is None


def test_bad_image_fails_with_a_clear_reason(srv: LiveServer) -> None:
    bad = "localhost/runplane-test/no-such-image:1"
    with srv.client() as c:
        eid = make_endpoint(c, make_template(c, "container-bad", imageName=bad))
        job = run(c, eid, {"echo": "never"})
        # Each failed pull counts for the crash-loop breaker (2 in the fast settings).
        reason = wait_for(
            lambda: (h := health(c, eid).get("reason", "")).startswith("crash loop") and h,
            120, "the breaker to open on failed pulls")
        assert f"pulling image {bad} failed" in reason, reason
        queued = status(c, eid, job)
        assert queued["status"] == "IN_QUEUE" and queued["reason"] == reason
        assert c.get(f"/v1/endpoints/{eid}").json()["reason"] == reason
