"""/v1/endpoints: defaults, every spec field, includeTemplate/includeWorkers, updates and
versions, CPU endpoints, volumes, and refusals that change nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server, create_endpoint

SPEC_FIELDS = {
    "allowedCudaVersions": list, "computeType": str, "createdAt": str, "dataCenterIds": list,
    "env": dict, "executionTimeoutMs": int, "gpuCount": int, "gpuTypeIds": list, "id": str,
    "idleTimeout": int, "instanceIds": list, "name": str, "networkVolumeId": str,
    "networkVolumeIds": list, "scalerType": str, "scalerValue": int, "templateId": str,
    "userId": str, "version": int, "workersMax": int, "workersMin": int,
}


async def _template(client: httpx.AsyncClient, **fields: object) -> dict:
    body = {"name": "t", "imageName": "runplane/local:.", "isServerless": True, **fields}
    r = await client.post("/v1/templates", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def _volume(client: httpx.AsyncClient, dc: str = "EU-RO-1", size: int = 10) -> dict:
    r = await client.post("/v1/networkvolumes", json={"name": "v", "size": size, "dataCenterId": dc})
    assert r.status_code == 200, r.text
    return r.json()


async def test_create_applies_spec_defaults(client: httpx.AsyncClient, server: Server) -> None:
    t = await _template(client, env={"A": "1"})
    r = await client.post("/v1/endpoints", json={"templateId": t["id"]})
    assert r.status_code == 200, r.text
    e = r.json()
    for name, kind in SPEC_FIELDS.items():
        assert isinstance(e[name], kind), name
    assert "template" not in e and "workers" not in e
    assert e["computeType"] == "GPU" and e["gpuCount"] == 1
    assert e["idleTimeout"] == 5 and e["scalerType"] == "QUEUE_DELAY" and e["scalerValue"] == 4
    assert e["workersMin"] == 0 and e["workersMax"] == 3
    assert e["executionTimeoutMs"] == 600_000 and e["flashboot"] is True
    assert e["dataCenterIds"] == server.services.catalog.default_data_centers
    assert e["gpuTypeIds"] == list(server.services.catalog.gpu_types)
    assert e["allowedCudaVersions"] == [] and e["instanceIds"] == []
    assert e["networkVolumeId"] == "" and e["networkVolumeIds"] == []
    assert e["env"] == {"A": "1"} and e["version"] == 0 and e["name"] == "t"
    assert e["createdAt"].endswith("Z") and len(e["id"]) == 14


async def test_get_with_template_and_workers(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    plain = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert plain == e
    full = (await client.get(f"/v1/endpoints/{e['id']}",
                             params={"includeTemplate": "true", "includeWorkers": "true"})).json()
    assert full["template"]["id"] == e["templateId"] and full["template"]["isServerless"] is True
    assert full["workers"] == []
    only_workers = (await client.get(f"/v1/endpoints/{e['id']}?includeWorkers=true")).json()
    assert "template" not in only_workers and only_workers["workers"] == []


async def test_workers_come_from_the_worker_pods_hook(client: httpx.AsyncClient, server: Server) -> None:
    e = await create_endpoint(client)
    pod = {"id": "w1", "desiredStatus": "RUNNING", "endpointId": e["id"]}
    server.services.endpoints.worker_pods = lambda ids: {i: [pod] for i in ids}
    got = (await client.get(f"/v1/endpoints/{e['id']}?includeWorkers=true")).json()
    assert got["workers"] == [pod]
    listed = (await client.get("/v1/endpoints?includeWorkers=true")).json()
    assert listed[0]["workers"] == [pod]


async def test_comma_separated_data_centers(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, dataCenterIds="EU-RO-1, US-TX-3")
    assert e["dataCenterIds"] == ["EU-RO-1", "US-TX-3"]
