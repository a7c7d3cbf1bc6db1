"""Issue 14, for container workers: a restart costs no work.

A container outlives the server (only its engine client dies with the server): after SIGKILL
and start, or SIGTERM (``shutdown = "keep"``) and start, the new server takes the same
container back (``LocalProvider.adopt``), its running job completes on the same worker, run
once and without a retry, the next job runs there too, and once the endpoint scales down
nothing of it is left: no container, no engine client, no follower, no worker process.

Real podman, a real server and the unmodified runpod SDK inside the test image (the fault
kit's handler, given as the template's ``dockerStartCmd``; its state on the network volume).
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.container_kit import podman_state
from tests.e2e.scaling_kit import HANDLER, final, run, status, wait_for, workers
from tests.e2e.test_container import IMAGE, _podman_ready
from tests.faults.kit import attempts, server, worker_ids_of

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _podman() -> None:
    why = _podman_ready()
    if why:
        pytest.skip(why)


def _endpoint(c: httpx.Client) -> tuple[str, Path]:
    """A CPU endpoint on the test image running the fault kit's handler; its state directory
    (the network volume, ``/runpod-volume`` inside) as the host sees it."""
    r = c.post("/v1/networkvolumes", json={"name": "state", "size": 1,
                                           "dataCenterId": "LOCAL-1"})
    assert r.status_code == 200, r.text
    volume = r.json()
    r = c.post("/v1/templates", json={
        "name": "container-restarts", "imageName": IMAGE, "isServerless": True,
        "dockerStartCmd": ["python", "-u", "-c", HANDLER],
        "env": {"STATE_DIR": "/runpod-volume", "RUNPOD_LOG_LEVEL": "WARN"}})
    assert r.status_code == 200, r.text
    r = c.post("/v1/endpoints", json={
        "name": "container-restarts", "templateId": r.json()["id"], "computeType": "CPU",
        "vcpuCount": 1, "workersMin": 0, "workersMax": 1, "idleTimeout": 1,
        "scalerType": "REQUEST_COUNT", "scalerValue": 1, "flashboot": False,
        "networkVolumeId": volume["id"]})
    assert r.status_code == 200, r.text
    return r.json()["id"], volume


def _container_id(name: str) -> str:
    return subprocess.run(["podman", "inspect", "--format", "{{.Id}}", name],
                          capture_output=True, text=True, check=False, timeout=60).stdout.strip()


def _owned_containers(data_dir: Path) -> list[str]:
    """Every container (running or not) labelled with this server's data dir."""
    owner = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return subprocess.run(["podman", "ps", "--all", "--filter", f"label=runplane.owner={owner}",
                           "--format", "{{.Names}}"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.split()


def _engine_clients(name: str) -> list[int]:
    """Live processes naming container ``name`` on their command line: a launcher's engine
    client, a follower and its ``wait`` (not the engine's own monitor, conmon)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        try:
            if name in cmd and Path(cmd[0]).name != "conmon" \
                    and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_restart_keeps_the_running_container_and_its_job(tmp_path: Path, how: str) -> None:
    srv = server(tmp_path)
    try:
        with srv.client() as c:
            eid, volume = _endpoint(c)
            state = srv.data_dir / "volumes" / volume["dataCenterId"] / volume["id"]
            # Ends around the restart: a result that meets the server down, or the kept-alive
            # connection to the dead one, is sent again (the SDK accelerator's delivery).
            job = run(c, eid, {"sleep": 4, "echo": "kept"})
            held = wait_for(lambda: (s := status(c, eid, job))["status"] == "IN_PROGRESS"
                            and attempts(state, job) == 1 and s, 120, "the job to run")
        name = f"runplane-{held['workerId']}".lower()
        container = _container_id(name)
        assert container

        if how == "SIGKILL":
            srv.kill()
        else:  # shutdown = "keep", the default: the workers are left for the next run
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(timeout=60)
        assert podman_state(name) == "running", "the container died with the server"
        wait_for(lambda: _engine_clients(name) == [], 30, "its engine client to die")
        srv.start()

        with srv.client() as c:
            done = final(c, eid, job, timeout=60)
            assert done["status"] == "COMPLETED" and done["output"]["echo"] == "kept", done
            assert done["retries"] == 0 and done["workerId"] == held["workerId"], done
            assert attempts(state, job) == 1
            assert _container_id(name) == container  # the same container, taken over
            after = final(c, eid, run(c, eid, {"echo": "next"}), timeout=60)
            assert after["status"] == "COMPLETED" and after["workerId"] == held["workerId"]
            assert after["retries"] == 0

            # idleTimeout 1 s: the adopted worker is stopped like any other, and nothing of
            # it is left (no container, engine client, follower or worker process).
            wait_for(lambda: workers(c, eid) == [], 60, "scale-down to zero")
            wait_for(lambda: _owned_containers(srv.data_dir) == [], 60,
                     "the container to be removed")
            wait_for(lambda: _engine_clients(name) == [], 30, "its follower to end")
            assert worker_ids_of(srv) == set()
        log = (srv.data_dir / "logs" / f"{held['workerId']}.log").read_text()
        assert f"following container {name} again" in log
    finally:
        srv.stop()
