"""Container workers end to end: a real server runs the test image (built by
scripts/setup_podman.sh from a debootstrap root filesystem, the runpod SDK inside, no registry)
through podman. Every wait is a poll with a deadline; nothing asserts how fast.

One server serves the whole module (each test makes its own endpoints and pods)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.container_kit import frozen, podman_state
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
    # The test registries below speak plain HTTP on loopback.
    server = fast_server(tmp_path_factory.mktemp("containers"),
                         RUNPLANE_CONTAINER_PULL_ARGS='["--tls-verify=false"]')
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
            "scalerType": "REQUEST_COUNT", "scalerValue": 1,
            "flashboot": False,  # idle workers stop (FlashBoot, on by default, parks them)
            **fields}
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
        # The SDK accelerator, mounted into the container, runs the image's SDK's job loop.
        assert pod["accelerator"].startswith("on (runpod "), pod["accelerator"]
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
        # Its own network (the default): its port published on a free host port.
        (published,) = pod["portMappings"].values()
        assert list(pod["portMappings"]) == [str(port)]

        def answer() -> str | None:
            try:
                return httpx.get(f"http://127.0.0.1:{published}/", timeout=2).text
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


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A private registry (Debian's docker-registry, htpasswd user alice) on loopback holding
    the test image as <registry>/private/worker:1; yields the registry's host:port."""
    if not (shutil.which("docker-registry") and shutil.which("htpasswd")):
        pytest.skip("docker-registry/htpasswd missing: run scripts/setup_podman.sh as root")
    port = free_port()
    users = tmp_path / "htpasswd"
    users.write_text(subprocess.run(["htpasswd", "-Bbn", "alice", "s3cret-Pa55"], check=True,
                                    capture_output=True, text=True).stdout)
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: test\n    path: {users}\n")
    with open(tmp_path / "registry.log", "wb") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(port), 30, "the registry to listen")
        subprocess.run(["podman", "push", "--quiet", "--tls-verify=false", "--creds",
                        "alice:s3cret-Pa55", IMAGE, f"{host}/private/worker:1"],
                       check=True, capture_output=True, timeout=300)
        yield host
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["podman", "rmi", "--force", f"{host}/private/worker:1"],
                       capture_output=True, check=False, timeout=60)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_private_image_pulls_with_the_templates_registry_auth(
        srv: LiveServer, registry: str) -> None:
    image = f"{registry}/private/worker:1"
    with srv.client() as c:
        # Without credentials the pull is refused, and the reason says so.
        eid = make_endpoint(c, make_template(c, "private-noauth", imageName=image))
        job = run(c, eid, {"echo": "x"})
        reason = wait_for(
            lambda: (h := health(c, eid).get("reason", "")).startswith("crash loop") and h,
            120, "the breaker to open on unauthorized pulls")
        assert f"pulling image {image} failed" in reason and "unauthorized" in reason, reason
        c.post(f"/v2/{eid}/cancel/{job}")

        r = c.post("/v1/containerregistryauth",
                   json={"name": "reg", "username": "alice", "password": "s3cret-Pa55"})
        assert r.status_code == 200, r.text
        auth_id = r.json()["id"]
        tid = make_template(c, "private-auth", imageName=image, containerRegistryAuthId=auth_id)
        eid = make_endpoint(c, tid)
        done = final(c, eid, run(c, eid, {"echo": "private"}), timeout=300)
        assert done["status"] == "COMPLETED" and done["output"]["echo"] == "private", done
        wid = done["output"]["worker"]
        log = (srv.data_dir / "logs" / f"{wid}.log").read_text()
        assert f"pulling {image}" in log and "Copying" in log  # the pull's output is relayed
        # The password is in no answer, no log and no file the server keeps.
        assert "s3cret-Pa55" not in c.get(f"/v1/templates/{tid}").text
        assert "s3cret-Pa55" not in c.get(f"/v1/containerregistryauth/{auth_id}").text
        assert "s3cret-Pa55" not in c.get(f"/v1/endpoints/{eid}",
                                          params={"includeWorkers": "true"}).text
        assert "s3cret-Pa55" not in log and "s3cret-Pa55" not in srv.log()
        leftovers = [p for p in (srv.data_dir / "containers").rglob("*") if p.is_file()
                     and b"s3cret" in p.read_bytes()]
        assert leftovers == []


class _StalledRegistry:
    """A registry that accepts connections and never answers: a pull that makes no progress."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for s in [*self.conns, self.sock]:
            s.close()


def test_a_pulling_worker_shows_its_progress(srv: LiveServer) -> None:
    stalled = _StalledRegistry()
    image = f"127.0.0.1:{stalled.port}/slow/worker:1"
    try:
        with srv.client() as c:
            eid = make_endpoint(c, make_template(c, "container-slow", imageName=image))
            job = run(c, eid, {"echo": "x"})
            (pod,) = wait_for(lambda: [w for w in workers(c, eid) if w.get("reason")], 60,
                              "the worker to report its pull")
            assert pod["workerStatus"] == "INITIALIZING"
            assert pod["reason"].startswith(f"pulling {image}"), pod
            h = health(c, eid)
            assert h["reason"] == f"worker {pod['id']} is starting: {pod['reason']}", h
            assert status(c, eid, job)["reason"] == h["reason"]
            assert c.delete(f"/v1/endpoints/{eid}").status_code in (200, 204)
            wait_for(lambda: f"runplane-{pod['id']}" not in containers(), 30, "the stop")
    finally:
        stalled.close()


def test_flashboot_parks_the_container_and_resumes_it_for_the_next_job(srv: LiveServer) -> None:
    with srv.client() as c:
        eid = make_endpoint(c, make_template(c, "container-flashboot"), flashboot=True)
        first = final(c, eid, run(c, eid, {"echo": 1}), timeout=120)
        assert first["status"] == "COMPLETED", first
        wid = first["output"]["worker"]
        # Idle past idleTimeout: parked (podman pause), not stopped.
        wait_for(lambda: [w["workerStatus"] for w in workers(c, eid)] == ["PARKED"], 60,
                 "the worker to park")
        assert frozen(f"runplane-{wid}")
        second = final(c, eid, run(c, eid, {"echo": 2}), timeout=120)
        assert second["status"] == "COMPLETED" and second["output"]["worker"] == wid, second
        # And again: parked and revived the same way every time.
        wait_for(lambda: [w["workerStatus"] for w in workers(c, eid)] == ["PARKED"], 60,
                 "the worker to park again")
        assert frozen(f"runplane-{wid}")
        third = final(c, eid, run(c, eid, {"echo": 3}), timeout=120)
        assert third["status"] == "COMPLETED" and third["output"]["worker"] == wid, third
        assert c.delete(f"/v1/endpoints/{eid}").status_code in (200, 204)
        wait_for(lambda: podman_state(f"runplane-{wid}") == "gone", 60, "the container to go")
