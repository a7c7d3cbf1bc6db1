"""/v1/pods: real processes placed by the scheduler, stopped, restarted, billed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

APP = "import os, time\nprint('pod up', os.environ['RUNPOD_POD_ID'], os.environ['MSG'], flush=True)\ntime.sleep(600)\n"


@pytest.fixture
async def pod_dir(tmp_path: Path, server: Server) -> AsyncIterator[Path]:
    d = tmp_path / "app"
    d.mkdir()
    (d / "app.py").write_text(APP)
    yield d
    await server.services.controller.shutdown()  # stop every process the test started


def body(pod_dir: Path, **kw: object) -> dict:
    return {"name": "p1", "imageName": f"local:{pod_dir}", "computeType": "CPU",
            "vcpuCount": 1, "dockerStartCmd": [sys.executable, "app.py"], "env": {"MSG": "hello"},
            **kw}


async def logs_contain(client: httpx.AsyncClient, pod_id: str, text: str) -> bool:
    for _ in range(250):
        r = await client.get(f"/v1/pods/{pod_id}/logs")
        if text in r.text:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_pod_lifecycle(client: httpx.AsyncClient, bob: httpx.AsyncClient, pod_dir: Path,
                             server: Server) -> None:
    r = await client.post("/v1/pods", json=body(pod_dir))
    assert r.status_code == 201, r.text
    pod = r.json()
    machine = server.services.provider.machines()[0]
    assert pod["desiredStatus"] == "RUNNING" and pod["machineId"] == machine.id
    assert pod["machine"]["dataCenterId"] == machine.data_center_id
    assert pod["gpu"] is None and pod["vcpuCount"] == 1 and pod["lastStartedAt"]
    assert pod["image"] == f"local:{pod_dir}" and pod["env"] == {"MSG": "hello"}
    assert await logs_contain(client, pod["id"], f"pod up {pod['id']} hello")
    assert (await bob.get(f"/v1/pods/{pod['id']}")).status_code == 404
    assert [p["id"] for p in (await client.get("/v1/pods")).json()] == [pod["id"]]

    r = await client.post(f"/v1/pods/{pod['id']}/stop")
    assert r.status_code == 200 and r.json()["desiredStatus"] == "EXITED"
    assert r.json()["lastStatusChange"] == "Stopped by user"
    assert not server.services.pods.placements()

    r = await client.patch(f"/v1/pods/{pod['id']}", json={"env": {"MSG": "again"}})
    assert r.status_code == 200 and r.json()["desiredStatus"] == "EXITED"
    r = await client.post(f"/v1/pods/{pod['id']}/start")
    assert r.json()["desiredStatus"] == "RUNNING"
    assert await logs_contain(client, pod["id"], "hello\n") and await logs_contain(client, pod["id"], "again")
    r = await client.post(f"/v1/pods/{pod['id']}/restart")
    assert r.status_code == 200 and r.json()["lastStatusChange"] == "Started"

    assert (await client.delete(f"/v1/pods/{pod['id']}")).status_code == 204
    assert (await client.get(f"/v1/pods/{pod['id']}")).status_code == 404
    r = await client.get("/v1/billing/pods", params={"bucketSize": "day"})
    assert r.status_code == 200, r.text
    assert r.json() and r.json()[0]["timeBilledMs"] > 0, r.json()


@pytest.mark.parametrize(("override", "field"), [
    ({"imageName": "Not an image!"}, "imageName"),  # neither a directory nor an image
    ({"dockerStartCmd": []}, "dockerStartCmd"),
])
async def test_unrunnable_pods_are_refused(client: httpx.AsyncClient, pod_dir: Path,
                                           override: dict, field: str) -> None:
    r = await client.post("/v1/pods", json=body(pod_dir, **override))
    assert r.status_code == 400 and r.json()["field"] == field, r.text


async def test_gpu_pod_without_gpus_says_why(client: httpx.AsyncClient, pod_dir: Path,
                                             server: Server) -> None:
    if "NVIDIA H100 80GB HBM3" in server.services.provider.machines()[0].gpu_types():
        pytest.skip("this host has the GPU")
    r = await client.post("/v1/pods", json=body(pod_dir, computeType="GPU",
                                                 gpuTypeIds=["NVIDIA H100 80GB HBM3"]))
    assert r.status_code == 409
    assert "no machine has NVIDIA H100 80GB HBM3" in r.json()["error"]
    assert (await client.get("/v1/pods")).json() == []


async def test_machines_route_is_admin_only_and_shows_use(
        client: httpx.AsyncClient, admin: httpx.AsyncClient, pod_dir: Path) -> None:
    assert (await client.get("/v1/machines")).status_code == 403
    r = await client.post("/v1/pods", json=body(pod_dir, vcpuCount=2))
    assert r.status_code == 201
    (m,) = (await admin.get("/v1/machines")).json()
    assert m["capacity"]["pods"] == 1 and m["capacity"]["vcpusUsed"] == 2


VOLUME_APP = (
    "import os, pathlib, time\n"
    "pathlib.Path(os.environ['RUNPLANE_VOLUME_PATH'], 'from-pod.txt').write_text('written')\n"
    "print('wrote', flush=True)\ntime.sleep(600)\n"
)


async def test_pod_writes_into_the_network_volume_the_api_created(
    client: httpx.AsyncClient, pod_dir: Path, server: Server
) -> None:
    (pod_dir / "app.py").write_text(VOLUME_APP)
    dc = server.services.provider.machines()[0].data_center_id
    r = await client.post("/v1/networkvolumes", json={"name": "v", "size": 10, "dataCenterId": dc})
    assert r.status_code in (200, 201), r.text
    volume = server.services.volumes.get(r.json()["id"])
    r = await client.post("/v1/pods", json=body(pod_dir, networkVolumeId=volume.id))
    assert r.status_code == 201, r.text
    assert await logs_contain(client, r.json()["id"], "wrote")
    assert (server.services.volumes.path_of(volume) / "from-pod.txt").read_text() == "written"
