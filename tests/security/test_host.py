"""No user reaches the host: ``local:`` images are refused to non-admins, the processes an
operator's ``local:`` image starts run as the unprivileged worker user, containers run with
no-new-privileges and the limits of their size, and the store and logs are private."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import (
    needs_podman,
    needs_root_and_worker_user,
    python,
    refused,
    snapshot,
    wait_for,
)

IMAGE = "localhost/runplane-test/debian-python:bookworm"


def _marker_cmd(marker: Path) -> list[str]:
    return ["sh", "-c", f"touch {marker}; id -u > {marker}"]


HOST_CASES = [
    # (what bob sends, method, path, body builder)
    ("a template with a local: image", "POST", "/v1/templates",
     lambda d, m: {"name": "evil", "imageName": f"local:{d}", "dockerStartCmd": _marker_cmd(m)}),
    ("a serverless template with a file:// image", "POST", "/v1/templates",
     lambda d, m: {"name": "evil2", "imageName": f"file://{d}", "isServerless": True,
                   "dockerStartCmd": _marker_cmd(m)}),
    ("a pod with a local: image", "POST", "/v1/pods",
     lambda d, m: {"name": "evil", "imageName": f"local:{d}", "computeType": "CPU",
                   "vcpuCount": 1, "dockerStartCmd": _marker_cmd(m)}),
    ("a pod with a local: image of /", "POST", "/v1/pods",
     lambda d, m: {"name": "evil", "imageName": "local:/", "computeType": "CPU",
                   "vcpuCount": 1, "dockerStartCmd": _marker_cmd(m)}),
]


@pytest.mark.parametrize(("case", "method", "path", "make"), HOST_CASES,
                         ids=[c[0] for c in HOST_CASES])
def test_local_images_are_refused_to_users(case: str, method: str, path: str, make: object,
                                           bob: httpx.Client, host_dir: Path) -> None:
    marker = host_dir / "marker"
    before = snapshot(bob)
    r = bob.request(method, path, json=make(host_dir, marker))  # type: ignore[operator]
    refused(r, 403, "imageName", "local: images run as processes on the server's host")
    assert snapshot(bob) == before
    assert not marker.exists()


def test_a_template_cannot_become_local_nor_a_pod_run_an_admins_public_local_template(
        bob: httpx.Client, admin: httpx.Client, host_dir: Path) -> None:
    marker = host_dir / "marker2"
    t = bob.post("/v1/templates", json={"name": "mine", "imageName": "ubuntu:22.04"})
    assert t.status_code == 200, t.text
    refused(bob.patch(f"/v1/templates/{t.json()['id']}", json={"imageName": f"local:{host_dir}"}),
            403, "imageName")
    assert bob.get(f"/v1/templates/{t.json()['id']}").json()["imageName"] == "ubuntu:22.04"
    # The operator's own public local: template: a user's pod may not run it with their command.
    op = admin.post("/v1/templates", json={"name": "op-tool", "imageName": f"local:{host_dir}",
                                           "isPublic": True, "dockerStartCmd": ["true"]})
    assert op.status_code == 200, op.text
    before = snapshot(bob)
    refused(bob.post("/v1/pods", json={"templateId": op.json()["id"], "computeType": "CPU",
                                       "vcpuCount": 1, "dockerStartCmd": _marker_cmd(marker)}),
            403, "imageName")
    assert snapshot(bob) == before and not marker.exists()


@needs_root_and_worker_user
def test_an_operators_local_pod_runs_unprivileged_and_cannot_read_the_store(
        live: LiveServer, admin: httpx.Client, host_dir: Path) -> None:
    store = live.data_dir / "runplane.db"
    # (Quoted so the log's first line, which repeats the command, does not hold the words.)
    probe = (f"id -u; head -c 16 {store} > /dev/null && echo READ-'THE'-STORE; "
             f"touch {live.data_dir}/marker && echo WROTE-'THE'-DATA-DIR; echo probe-'done'")
    r = admin.post("/v1/pods", json={"name": "probe", "imageName": f"local:{host_dir}",
                                     "computeType": "CPU", "vcpuCount": 1,
                                     "dockerStartCmd": ["sh", "-c", probe]})
    assert r.status_code == 201, r.text
    pod = r.json()["id"]
    logs = wait_for(lambda: (t := admin.get(f"/v1/pods/{pod}/logs").text) and "probe-done" in t
                    and t, what="the probe's output")
    uid = int(next(line for line in logs.splitlines() if line.strip().isdigit()))
    assert uid != 0 and uid == _worker_uid()
    assert "READ-THE-STORE" not in logs and "WROTE-THE-DATA-DIR" not in logs
    assert not (live.data_dir / "marker").exists()
    admin.delete(f"/v1/pods/{pod}")


@needs_root_and_worker_user
def test_a_missing_worker_user_refuses_the_start(tmp_path: Path, host_dir: Path) -> None:
    from tests.security.conftest import serve

    srv = serve(tmp_path, RUNPLANE_SECURITY='{"worker_user": "no-such-user-here"}')
    try:
        with srv.client(srv.admin_key) as c:
            r = c.post("/v1/pods", json={"name": "p", "imageName": f"local:{host_dir}",
                                         "computeType": "CPU", "vcpuCount": 1,
                                         "dockerStartCmd": [python(), "-c", "print(1)"]})
            refused(r, 409, None, "worker user 'no-such-user-here' does not exist")
            assert c.get("/v1/pods").json() == []
    finally:
        srv.stop()


def test_the_store_and_logs_are_private(live: LiveServer) -> None:
    assert stat.S_IMODE(live.data_dir.stat().st_mode) == 0o700
    files = [p for p in live.data_dir.rglob("*") if p.is_file() and p.name != "server.log"]
    assert any(p.name == "runplane.db" for p in files)
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}


@needs_podman
def test_a_container_pod_is_limited_and_its_secrets_stay_off_command_lines(
        live: LiveServer, alice: httpx.Client) -> None:
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is not built: run scripts/setup_podman.sh")
    secret = "s3cret-line-one\ns3cret-line-two"
    r = alice.post("/v1/pods", json={
        "name": "limited", "imageName": IMAGE, "computeType": "CPU", "vcpuCount": 1,
        "env": {"MULTI": secret},
        "dockerStartCmd": ["sh", "-c",
                           "grep NoNewPrivs /proc/self/status; echo 're'ady; sleep 60"]})
    assert r.status_code == 201, r.text
    pod = r.json()["id"]
    try:
        logs = wait_for(lambda: (t := alice.get(f"/v1/pods/{pod}/logs").text) and "ready" in t
                        and t, timeout=60, what="the container's output")
        assert "NoNewPrivs:\t1" in logs
        fmt = ("{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
               "{{.HostConfig.Privileged}}")
        out = subprocess.run(["podman", "inspect", f"runplane-{pod}", "--format", fmt],
                             capture_output=True, text=True, check=True).stdout.split()
        memory, nano_cpus, pids, privileged = out
        assert int(memory) == 2 * 1024**3 and int(nano_cpus) == 10**9
        assert int(pids) == 4096 and privileged == "false"
        for p in psutil.process_iter(["cmdline"]):
            line = " ".join(p.info["cmdline"] or [])
            assert "s3cret" not in line, line
    finally:
        alice.delete(f"/v1/pods/{pod}")


def _worker_uid() -> int:
    import pwd

    return pwd.getpwnam("runplane-worker").pw_uid

