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


async def test_workers_are_the_registered_workers_as_pods(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    r = await client.post(f"/v2/{e['id']}/workers")  # a manual worker (`runplane worker run`)
    assert r.status_code == 201, r.text
    worker_id = r.json()["id"]
    got = (await client.get(f"/v1/endpoints/{e['id']}?includeWorkers=true")).json()
    assert [(p["id"], p["endpointId"], p["desiredStatus"], p["workerStatus"])
            for p in got["workers"]] == [(worker_id, e["id"], "RUNNING", "INITIALIZING")]
    listed = (await client.get("/v1/endpoints?includeWorkers=true")).json()
    assert [p["id"] for p in listed[0]["workers"]] == [worker_id]


async def test_comma_separated_data_centers(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, dataCenterIds="EU-RO-1, US-TX-3")
    assert e["dataCenterIds"] == ["EU-RO-1", "US-TX-3"]


async def test_every_change_bumps_version_once(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    url = f"/v1/endpoints/{e['id']}"
    r = await client.patch(url, json={"workersMax": 5, "idleTimeout": 60})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert r.json()["workersMax"] == 5 and r.json()["idleTimeout"] == 60
    r = await client.post(url + "/update", json={"name": "renamed"})
    assert r.json()["version"] == 2 and r.json()["workersMax"] == 5
    r = await client.patch(url, json={"name": "renamed"})  # no actual change
    assert r.json()["version"] == 2
    other = await _template(client, name="other")
    r = await client.patch(url, json={"templateId": other["id"]})
    assert r.json()["version"] == 3 and r.json()["templateId"] == other["id"]
    assert (await client.get(url)).json() == r.json()


async def test_cpu_endpoint(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, computeType="CPU", cpuFlavorIds=["cpu3c", "cpu5g"],
                              vcpuCount=8, gpuTypeIds=["NVIDIA A40"])
    assert e["computeType"] == "CPU" and e["instanceIds"] == ["cpu3c-8-16", "cpu5g-8-32"]
    assert e["gpuTypeIds"] == [] and e["gpuCount"] == 0 and e["vcpuCount"] == 8
    r = await client.patch(f"/v1/endpoints/{e['id']}", json={"vcpuCount": 4})
    assert r.json()["instanceIds"] == ["cpu3c-4-8", "cpu5g-4-16"]
    default = await create_endpoint(client, computeType="CPU")
    assert [i.split("-")[0] for i in default["instanceIds"]] == ["cpu3c", "cpu3g", "cpu5c", "cpu5g"]


async def test_cuda_settings(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, allowedCudaVersions=["12.4", "12.8"], minCudaVersion="12.4")
    assert e["allowedCudaVersions"] == ["12.4", "12.8"] and e["minCudaVersion"] == "12.4"
    r = await client.patch(f"/v1/endpoints/{e['id']}", json={"minCudaVersion": None})
    assert r.status_code == 200 and "minCudaVersion" not in r.json()


async def test_volumes_attach_detach_and_data_centers(client: httpx.AsyncClient) -> None:
    ro = await _volume(client, "EU-RO-1")
    tx = await _volume(client, "US-TX-3")
    e = await create_endpoint(client, networkVolumeId=ro["id"])
    # Without dataCenterIds, workers run where the volume is.
    assert e["dataCenterIds"] == ["EU-RO-1"]
    assert e["networkVolumeId"] == ro["id"] and e["networkVolumeIds"] == [ro["id"]]
    r = await client.patch(f"/v1/endpoints/{e['id']}", json={
        "networkVolumeIds": [ro["id"], tx["id"]], "dataCenterIds": ["EU-RO-1", "US-TX-3"]})
    assert r.status_code == 200, r.text
    assert r.json()["networkVolumeIds"] == [ro["id"], tx["id"]]
    # In use: the volume cannot be deleted.
    r = await client.delete(f"/v1/networkvolumes/{tx['id']}")
    assert r.status_code == 409
    r = await client.patch(f"/v1/endpoints/{e['id']}", json={"networkVolumeId": ""})
    assert r.json()["networkVolumeIds"] == [] and r.json()["networkVolumeId"] == ""
    assert (await client.delete(f"/v1/networkvolumes/{tx['id']}")).status_code == 204


async def test_volume_outside_endpoint_data_centers_is_400(client: httpx.AsyncClient) -> None:
    ro = await _volume(client, "EU-RO-1")
    t = await _template(client)
    r = await client.post("/v1/endpoints", json={
        "templateId": t["id"], "networkVolumeId": ro["id"], "dataCenterIds": ["US-TX-3"]})
    assert r.status_code == 400 and r.json()["field"] == "networkVolumeId"
    assert "EU-RO-1" in r.json()["message"]
    e = await create_endpoint(client, dataCenterIds=["US-TX-3"])
    r = await client.patch(f"/v1/endpoints/{e['id']}", json={"networkVolumeIds": [ro["id"]]})
    assert r.status_code == 400 and r.json()["field"] == "networkVolumeIds[0]"
    # Narrowing the data centers away from an attached volume is refused too.
    v = await create_endpoint(client, networkVolumeId=ro["id"], dataCenterIds=["EU-RO-1", "US-TX-3"])
    r = await client.patch(f"/v1/endpoints/{v['id']}", json={"dataCenterIds": ["US-TX-3"]})
    assert r.status_code == 400 and r.json()["field"] == "dataCenterIds"


async def test_two_volumes_in_one_data_center_is_400(client: httpx.AsyncClient) -> None:
    a, b = await _volume(client), await _volume(client)
    t = await _template(client)
    r = await client.post("/v1/endpoints", json={"templateId": t["id"],
                                                 "networkVolumeIds": [a["id"], b["id"]]})
    assert r.status_code == 400 and r.json()["field"] == "networkVolumeIds[1]"


async def test_pod_template_is_refused(client: httpx.AsyncClient) -> None:
    t = await _template(client, isServerless=False)
    r = await client.post("/v1/endpoints", json={"templateId": t["id"]})
    assert r.status_code == 400 and r.json()["field"] == "templateId"
    assert "isServerless" in r.json()["message"]


async def test_delete(client: httpx.AsyncClient, server: Server) -> None:
    e = await create_endpoint(client)
    assert server.services.endpoints.owner_of(e["id"]) is not None
    assert (await client.delete(f"/v1/endpoints/{e['id']}")).status_code == 204
    assert (await client.get(f"/v1/endpoints/{e['id']}")).status_code == 404
    assert (await client.delete(f"/v1/endpoints/{e['id']}")).status_code == 404
    assert server.services.endpoints.owner_of(e["id"]) is None


BAD_CREATE = [
    ({"templateId": None}, "templateId"),
    ({"templateId": "nope"}, "templateId"),
    ({"gpuTypeIds": ["NVIDIA GeForce RTX 9999"]}, "gpuTypeIds[0]"),
    ({"gpuTypeIds": "NVIDIA A40,bogus"}, "gpuTypeIds[1]"),
    ({"gpuTypeIds": []}, "gpuTypeIds"),
    ({"gpuTypeIds": ["NVIDIA A40", "NVIDIA A40"]}, "gpuTypeIds"),
    ({"dataCenterIds": ["MARS-1"]}, "dataCenterIds[0]"),
    ({"dataCenterIds": []}, "dataCenterIds"),
    ({"dataCenterIds": 5}, "dataCenterIds"),
    ({"allowedCudaVersions": ["9.0"]}, "allowedCudaVersions[0]"),
    ({"minCudaVersion": "1.0"}, "minCudaVersion"),
    ({"allowedCudaVersions": ["11.8"], "minCudaVersion": "12.4"}, "allowedCudaVersions"),
    ({"cpuFlavorIds": ["cpu9z"]}, "cpuFlavorIds[0]"),
    ({"computeType": "TPU"}, "computeType"),
    ({"computeType": "CPU", "cpuFlavorIds": []}, "cpuFlavorIds"),
    ({"gpuCount": 0}, "gpuCount"),
    ({"gpuCount": "2"}, "gpuCount"),
    ({"gpuCount": 1.5}, "gpuCount"),
    ({"idleTimeout": 0}, "idleTimeout"),
    ({"idleTimeout": 3601}, "idleTimeout"),
    ({"scalerValue": 0}, "scalerValue"),
    ({"scalerType": "FAST"}, "scalerType"),
    ({"workersMin": -1}, "workersMin"),
    ({"workersMax": -1}, "workersMax"),
    ({"workersMax": 10**20}, "workersMax"),
    ({"workersMin": 4, "workersMax": 2}, "workersMin"),
    ({"executionTimeoutMs": 100}, "executionTimeoutMs"),
    ({"flashboot": "true"}, "flashboot"),
    ({"name": "x" * 192}, "name"),
    ({"networkVolumeId": "nope"}, "networkVolumeId"),
    ({"networkVolumeIds": ["nope"]}, "networkVolumeIds[0]"),
    ({"env": {"1A": "x"}}, "env"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATE)
async def test_bad_create_is_400_naming_the_field(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    t = await _template(client)
    r = await client.post("/v1/endpoints", json={"templateId": t["id"], **body})
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["field"] == field and err["message"].startswith(field), err
    assert (await client.get("/v1/endpoints")).json() == []


@pytest.mark.parametrize(("body", "field"), [
    (b, f) for b, f in BAD_CREATE if "templateId" not in b and "computeType" not in b
] + [({"workersMin": 9}, "workersMin"), ({"computeType": "CPU"}, "computeType")])
async def test_bad_update_is_400_and_changes_nothing(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    e = await create_endpoint(client)
    for url in (f"/v1/endpoints/{e['id']}", f"/v1/endpoints/{e['id']}/update"):
        r = await client.request("PATCH" if url.endswith(e["id"]) else "POST", url, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == field
    assert (await client.get(f"/v1/endpoints/{e['id']}")).json() == e


async def test_malformed_bodies(client: httpx.AsyncClient) -> None:
    for content, expected in [
        (b"{not json", "malformed JSON"),
        (b"", "request body required"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
    ]:
        for headers in ({"content-type": "application/json"}, {}):
            r = await client.post("/v1/endpoints", content=content, headers=headers)
            assert r.status_code == 400, (content, r.text)
            assert expected in r.json()["message"]


async def test_oversized_body_is_413(client: httpx.AsyncClient, server: Server) -> None:
    t = await _template(client)
    limit = server.settings.max_v1_body_bytes
    r = await client.post("/v1/endpoints", json={"templateId": t["id"], "name": "x" * (limit + 1)})
    assert r.status_code == 413 and "limit" in r.json()["message"]
    assert (await client.get("/v1/endpoints")).json() == []


async def test_bad_query_flag_is_400(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    r = await client.get(f"/v1/endpoints/{e['id']}?includeTemplate=perhaps")
    assert r.status_code == 400 and r.json()["field"] == "includeTemplate"
