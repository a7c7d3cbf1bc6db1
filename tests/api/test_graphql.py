"""POST /graphql against the app: the documents the real runpod SDK (1.12) builds, their
answers in RunPod's shapes, the same resources through REST v1 both ways, and the errors."""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from runpod.api.mutations import container_register_auth as registry_docs
from runpod.api.mutations import endpoints as endpoint_docs
from runpod.api.mutations import pods as pod_docs
from runpod.api.mutations import templates as template_docs
from runpod.api.mutations import user as user_docs
from runpod.api.queries import endpoints as endpoint_queries
from runpod.api.queries import gpus as gpu_queries
from runpod.api.queries import pods as pod_queries
from runpod.api.queries import user as user_queries

from runplane.api.graphql.schema import SCHEMA
from tests.conftest import Server, client_for, create_endpoint, make_server

A40 = "NVIDIA A40"


async def gql(client: httpx.AsyncClient, document: str, status: int = 200) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": document})
    assert r.status_code == status, r.text
    return r.json()


async def data(client: httpx.AsyncClient, document: str) -> dict[str, Any]:
    body = await gql(client, document)
    assert "errors" not in body, body
    return body["data"]


async def error(client: httpx.AsyncClient, document: str) -> dict[str, Any]:
    body = await gql(client, document)
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


async def serverless_template(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"name": f"t-{len(kw)}-{id(kw)}", "image_name": "runplane/local:.",
                            "is_serverless": True, **kw}
    return (await data(client, template_docs.generate_pod_template(**args)))["saveTemplate"]


def test_every_root_field_has_a_resolver() -> None:
    for root in (SCHEMA.query_type, SCHEMA.mutation_type):
        assert root is not None
        missing = [name for name, f in root.fields.items() if f.resolve is None]
        assert not missing, f"{root.name} fields without a resolver: {missing}"


async def test_sdk_template_and_endpoint_calls_match_rest(client: httpx.AsyncClient) -> None:
    start = 'bash -c ". /runpod-volume/x/prod/venv/bin/activate && python -u /runpod-volume/h.py"'
    t = await serverless_template(client, docker_start_cmd=start, env={"A": "1", "B": "two"},
                                  container_disk_in_gb=7, ports="8000/http, 22/tcp")
    assert t["dockerArgs"] == shlex.join(shlex.split(start))
    assert t["env"] == [{"key": "A", "value": "1"}, {"key": "B", "value": "two"}]
    assert (t["ports"], t["containerDiskInGb"], t["volumeInGb"], t["isServerless"]) == (
        "8000/http,22/tcp", 7, 0, True)
    rest = (await client.get(f"/v1/templates/{t['id']}")).json()
    assert rest["dockerStartCmd"] == [
        "bash", "-c", ". /runpod-volume/x/prod/venv/bin/activate && python -u /runpod-volume/h.py"]
    assert rest["env"] == {"A": "1", "B": "two"} and rest["ports"] == ["8000/http", "22/tcp"]

    doc = endpoint_docs.generate_endpoint_mutation(
        "ep", t["id"], gpu_ids="AMPERE_48,-NVIDIA RTX A6000", idle_timeout=9,
        scaler_type="REQUEST_COUNT", scaler_value=3, workers_max=2, flashboot=True,
        allowed_cuda_versions="12.4,12.5", gpu_count=2)
    e = (await data(client, doc))["saveEndpoint"]
    assert e["gpuIds"] == "AMPERE_48,-NVIDIA RTX A6000" and e["flashBootType"] == "FLASHBOOT"
    assert (e["locations"], e["networkVolumeId"], e["allowedCudaVersions"], e["gpuCount"]) == (
        "", None, "12.4,12.5", 2)
    rest = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert rest["gpuTypeIds"] == [A40] and rest["flashboot"] is True
    assert rest["allowedCudaVersions"] == ["12.4", "12.5"] and rest["gpuCount"] == 2
    assert (rest["idleTimeout"], rest["scalerType"], rest["scalerValue"], rest["workersMax"]) == (
        9, "REQUEST_COUNT", 3, 2)

    # Without flashboot the SDK sends no flashBootType: RunPod's default is off.
    plain = (await data(client, endpoint_docs.generate_endpoint_mutation("p", t["id"])))
    assert plain["saveEndpoint"]["flashBootType"] == "OFF"
    assert (await client.get(f"/v1/endpoints/{plain['saveEndpoint']['id']}")).json()[
        "flashboot"] is False

    listed = (await data(client, endpoint_queries.QUERY_ENDPOINT))["myself"]["endpoints"]
    mine = next(x for x in listed if x["id"] == e["id"])
    assert mine["env"] == t["env"] and mine["type"] == "QB" and mine["version"] == 0
    assert mine["templateId"] == t["id"] and mine["userId"] == rest["userId"]

    other = await serverless_template(client)
    doc = endpoint_docs.update_endpoint_template_mutation(e["id"], other["id"])
    assert (await data(client, doc))["updateEndpointTemplate"] == {"id": e["id"],
                                                                  "templateId": other["id"]}
    rest = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert rest["templateId"] == other["id"] and rest["version"] == 1


async def test_rest_endpoint_reads_back_through_graphql(client: httpx.AsyncClient,
                                                        server: Server) -> None:
    dc = server.services.provider.machines()[0].data_center_id
    vol = (await client.post("/v1/networkvolumes", json={"name": "v", "size": 5,
                                                         "dataCenterId": dc})).json()
    e = await create_endpoint(client, gpuTypeIds=["NVIDIA L4", "NVIDIA GeForce RTX 4090", A40],
                              networkVolumeId=vol["id"], template={"env": {"K": "v"}})
    listed = (await data(client, endpoint_queries.QUERY_ENDPOINT))["myself"]["endpoints"]
    (got,) = [x for x in listed if x["id"] == e["id"]]
    assert got["gpuIds"] == "ADA_24,AMPERE_48,-NVIDIA RTX A6000"
    assert got["locations"] == dc and got["networkVolumeId"] == vol["id"]
    assert got["networkVolume"] == {"id": vol["id"], "dataCenterId": dc}
    assert got["env"] == [{"key": "K", "value": "v"}]
    user = (await data(client, user_queries.QUERY_USER))["myself"]
    assert user["networkVolumes"] == [{"id": vol["id"], "name": "v", "size": 5, "dataCenterId": dc}]


async def test_save_endpoint_with_id_updates_and_delete_endpoint(client: httpx.AsyncClient,
                                                                 bob: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, workersMax=3)
    doc = (f'mutation {{ saveEndpoint(input: {{id: "{e["id"]}", workersMax: 5, gpuIds: "ADA_24", '
           'flashBootType: OFF}) { id workersMax workersMin gpuIds flashBootType } }')
    assert (await data(client, doc))["saveEndpoint"] == {
        "id": e["id"], "workersMax": 5, "workersMin": 0, "gpuIds": "ADA_24", "flashBootType": "OFF"}
    rest = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert rest["workersMax"] == 5 and rest["flashboot"] is False and rest["version"] == 1
    assert rest["gpuTypeIds"] == ["NVIDIA L4", "NVIDIA GeForce RTX 4090"]
    # Another user's id is answered exactly like a missing one, and changes nothing.
    assert (await error(bob, doc))["message"] == f"endpoint {e['id']} not found"
    delete = f'mutation {{ deleteEndpoint(id: "{e["id"]}") }}'
    missing = await error(bob, delete)
    assert missing["extensions"]["code"] == "NOT_FOUND"
    assert (await data(client, delete)) == {
        "deleteEndpoint": None}
    assert (await client.get(f"/v1/endpoints/{e['id']}")).status_code == 404


@pytest.mark.parametrize(("document", "field", "needle"), [
    ('saveEndpoint(input: {name: "x", templateId: "TPL", gpuIds: "AMPERE_99"}) { id }',
     "gpuIds", "'AMPERE_99' is neither a GPU pool"),
    ('saveEndpoint(input: {name: "x", templateId: "TPL", gpuIds: "ADA_24", workersMax: -1}) { id }',
     "workersMax", "greater than or equal to 0"),
    ('saveEndpoint(input: {name: "x", templateId: "TPL", locations: "NOWHERE-1"}) { id }',
     "dataCenterIds", "NOWHERE-1"),
    ('saveEndpoint(input: {name: "x", templateId: "nope"}) { id }', "templateId", "nope"),
    ('saveTemplate(input: {name: "y", imageName: "i", dockerArgs: "bash -c \\"oops"}) { id }',
     "dockerArgs", "No closing quotation"),
    ('saveTemplate(input: {name: "y", imageName: "i", ports: "80/udp"}) { id }', "ports",
     "80/udp"),
])
async def test_bad_input_is_a_graphql_error_that_changes_nothing(
        client: httpx.AsyncClient, document: str, field: str, needle: str) -> None:
    t = await serverless_template(client)
    before = ((await client.get("/v1/endpoints")).json(),
              (await client.get("/v1/templates", params={"includeEndpointBoundTemplates": True})
               ).json())
    err = await error(client, "mutation { " + document.replace("TPL", t["id"]) + " }")
    assert needle in err["message"], err
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["status"] == 400
    assert err["extensions"].get("field", "").startswith(field), err
    after = ((await client.get("/v1/endpoints")).json(),
             (await client.get("/v1/templates", params={"includeEndpointBoundTemplates": True})
              ).json())
    assert after == before


async def test_endpoint_types(client: httpx.AsyncClient) -> None:
    t = await serverless_template(client)
    doc = (f'mutation {{ saveEndpoint(input: {{name: "lb", templateId: "{t["id"]}", type: "LB", '
           'gpuIds: "ADA_24", scalerType: "REQUEST_COUNT", scalerValue: 2}) { id type } }')
    lb = (await data(client, doc))["saveEndpoint"]
    assert lb["type"] == "LB"
    assert (await client.get(f"/v2/serverless/{lb['id']}")).json()["type"] == "LOAD_BALANCER"
    change = f'mutation {{ saveEndpoint(input: {{id: "{lb["id"]}", type: "QB"}}) {{ id }} }}'
    assert "fixed when the endpoint is created" in (await error(client, change))["message"]
    bad = doc.replace('type: "LB"', 'type: "XX"')
    assert (await error(client, bad))["extensions"]["field"] == "type"
    refused = doc.replace('scalerType: "REQUEST_COUNT", ', "")
    assert "REQUEST_COUNT" in (await error(client, refused))["message"]


async def test_pod_template_cannot_back_an_endpoint(client: httpx.AsyncClient) -> None:
    t = await serverless_template(client, is_serverless=False)
    err = await error(client, endpoint_docs.generate_endpoint_mutation("e", t["id"]))
    assert "isServerless: true" in err["message"] and err["extensions"]["field"] == "templateId"


async def test_save_template_with_id_updates(client: httpx.AsyncClient, bob: httpx.AsyncClient,
                                             ) -> None:
    t = await serverless_template(client)
    doc = (f'mutation {{ saveTemplate(input: {{id: "{t["id"]}", imageName: "img:2", env: '
           '[{key: "X", value: "y"}], isServerless: true}) { id imageName env { key value } } }')
    assert (await data(client, doc))["saveTemplate"] == {
        "id": t["id"], "imageName": "img:2", "env": [{"key": "X", "value": "y"}]}
    assert (await client.get(f"/v1/templates/{t['id']}")).json()["imageName"] == "img:2"
    flip = doc.replace("isServerless: true", "isServerless: false")
    assert "cannot be changed" in (await error(client, flip))["message"]
    assert (await error(bob, doc))["extensions"]["code"] == "NOT_FOUND"
    gone = f'mutation {{ deleteTemplate(templateName: "{t["name"]}") }}'
    assert (await error(bob, gone))["message"] == f"template {t['name']} not found"
    assert (await data(client, gone)) == {"deleteTemplate": None}
    assert (await client.get(f"/v1/templates/{t['id']}")).status_code == 404


async def test_registry_auth_calls(client: httpx.AsyncClient, bob: httpx.AsyncClient,
                                   server: Server) -> None:
    doc = registry_docs.generate_container_registry_auth("reg", "me", "s3cret")
    created = (await data(client, doc))["saveRegistryAuth"]
    assert created["name"] == "reg"
    assert (await client.get(f"/v1/containerregistryauth/{created['id']}")).json() == created
    doc = registry_docs.update_container_registry_auth(created["id"], "me2", "n3w")
    assert (await data(client, doc))["updateRegistryAuth"] == created
    assert server.services.registry_auths.credentials(created["id"]) == ("me2", "n3w")
    assert (await error(bob, doc))["extensions"]["code"] == "NOT_FOUND"
    assert server.services.registry_auths.credentials(created["id"]) == ("me2", "n3w")
    creds = (await data(client, "{ myself { containerRegistryCreds { id name } } }"))
    assert creds["myself"]["containerRegistryCreds"] == [created]
    doc = registry_docs.delete_container_registry_auth(created["id"])
    assert (await data(client, doc)) == {"deleteRegistryAuth": None}
    assert (await client.get(f"/v1/containerregistryauth/{created['id']}")).status_code == 404


async def test_user_pub_key_is_the_ssh_key_set(client: httpx.AsyncClient) -> None:
    keys = "ssh-ed25519 AAAAC3Nza one@host\n\nssh-rsa AAAAB3Nza two"
    done = (await data(client, user_docs.generate_user_mutation(keys)))["updateUserSettings"]
    assert done["pubKey"] == "ssh-ed25519 AAAAC3Nza one@host\nssh-rsa AAAAB3Nza two"
    assert (await data(client, user_queries.QUERY_USER))["myself"]["pubKey"] == done["pubKey"]
    bad = await error(client, user_docs.generate_user_mutation("not a key"))
    assert bad["extensions"]["code"] == "BAD_USER_INPUT"


async def test_auth_and_request_errors(server: Server, anon: httpx.AsyncClient) -> None:
    r = await anon.post("/graphql", json={"query": user_queries.QUERY_USER})
    assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with client_for(server, "rpl_wrong") as wrong:
        assert (await wrong.post("/graphql", json={"query": "{ myself { id } }"})).status_code == 401
    r = await anon.post("/graphql", params={"api_key": server.user_key},
                        json={"query": "{ myself { id } }"})
    assert r.status_code == 200 and r.json()["data"]["myself"]["id"].startswith("user_")
    async with client_for(server, server.user_key) as c:
        r = await c.post("/graphql", content=b"{nope")
        assert r.status_code == 400 and "malformed JSON" in r.json()["errors"][0]["message"]
        r = await c.post("/graphql", json={"query": 5})
        assert r.status_code == 400 and "errors" in r.json()
        syntax = await error(c, "{ myself { id ")
        assert syntax["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        unknown = await error(c, "{ myself { id shoeSize } }")
        assert "shoeSize" in unknown["message"]
        r = await c.post("/graphql", json={"query": "query($p: String!) { pod(input: {podId: $p})"
                                                     " { id } }", "variables": {"p": "x"}})
        assert r.json()["errors"][0]["message"] == "pod x not found"
        # Small documents that would expand to many lists are refused before anything runs;
        # a client's full introspection query is served.
        bomb = "fragment A on User { pods { id } endpoints { id } }\n" + "".join(
            f"fragment F{i} on User {{ {' '.join([f'...F{i - 1}' if i else '...A'] * 2)} }}\n"
            for i in range(12)) + "{ myself { ...F11 } }"
        assert "at most 1000" in (await error(c, bomb))["message"]
        schema = await data(c, get_introspection_query())
        assert {"name": "saveEndpoint"} in [
            {"name": f["name"]} for t in schema["__schema"]["types"] if t["name"] == "Mutation"
            for f in t["fields"]]


# -- GPU types and pods: one declared A40 at a price, whatever this host has -----------------


@pytest.fixture
async def gpu_server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = make_server(tmp_path / "data", machine={
        "detect_gpus": False, "cost_per_gpu_hr": 0.5, "secure_cloud": True,
        "declared_gpus": [{"type": A40, "count": 2, "cuda": "12.4"}]})
    yield srv
    await srv.services.controller.shutdown()
    srv.services.engine.dispose()


@pytest.fixture
async def alice(gpu_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gpu_server, gpu_server.user_key) as c:
        yield c


async def test_gpu_types(alice: httpx.AsyncClient, gpu_server: Server) -> None:
    listed = (await data(alice, gpu_queries.QUERY_GPU_TYPES))["gpuTypes"]
    assert {"id": A40, "displayName": "A40", "memoryInGb": 48} in listed
    assert len(listed) == len(gpu_server.services.catalog.gpu_types)
    (one,) = (await data(alice, gpu_queries.generate_gpu_query(A40, 2)))["gpuTypes"]
    assert (one["maxGpuCount"], one["secureCloud"], one["communityCloud"]) == (2, True, False)
    assert (one["securePrice"], one["communityPrice"], one["manufacturer"]) == (0.5, None, "Nvidia")
    assert one["lowestPrice"] == {"minimumBidPrice": None, "uninterruptablePrice": 0.5}
    (three,) = (await data(alice, gpu_queries.generate_gpu_query(A40, 3)))["gpuTypes"]
    assert three["lowestPrice"]["uninterruptablePrice"] is None
    assert (await data(alice, gpu_queries.generate_gpu_query("No Such GPU")))["gpuTypes"] == []


APP = "import os, time\nprint('up', os.environ['MSG'], flush=True)\ntime.sleep(600)\n"


async def test_pod_calls(alice: httpx.AsyncClient, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    start = f"{sys.executable} app.py"
    doc = pod_docs.generate_pod_deployment_mutation(
        "gpu-pod", f"local:{app}", A40, gpu_count=1, docker_args=start, ports="8888/http",
        env={"MSG": "hi"}, volume_in_gb=0, container_disk_in_gb=5, min_vcpu_count=1,
        min_memory_in_gb=1, volume_mount_path="/workspace")
    pod = (await data(alice, doc))["podFindAndDeployOnDemand"]
    assert pod["imageName"] == f"local:{app}" and pod["env"] == ["MSG=hi"] and pod["machineId"]
    rest = (await alice.get(f"/v1/pods/{pod['id']}")).json()
    assert rest["gpu"]["id"] == A40 and rest["gpu"]["count"] == 1
    assert rest["dockerStartCmd"] == [sys.executable, "app.py"] and rest["env"] == {"MSG": "hi"}

    got = (await data(alice, pod_queries.generate_pod_query(pod["id"])))["pod"]
    assert (got["desiredStatus"], got["gpuCount"], got["ports"], got["podType"]) == (
        "RUNNING", 1, "8888/http", "ON_DEMAND")
    assert got["machine"]["gpuDisplayName"] == "A40" and got["dockerArgs"] == shlex.join(
        [sys.executable, "app.py"])
    assert got["runtime"]["ports"][0]["privatePort"] == 8888
    listed = (await data(alice, pod_queries.QUERY_POD))["myself"]["pods"]
    assert [p["id"] for p in listed] == [pod["id"]]

    stopped = (await data(alice, pod_docs.generate_pod_stop_mutation(pod["id"])))["podStop"]
    assert stopped == {"id": pod["id"], "desiredStatus": "EXITED"}
    assert (await alice.get(f"/v1/pods/{pod['id']}")).json()["desiredStatus"] == "EXITED"
    got = (await data(alice, pod_queries.generate_pod_query(pod["id"])))["pod"]
    assert got["runtime"] is None and got["uptimeSeconds"] == 0
    resumed = (await data(alice, pod_docs.generate_pod_resume_mutation(pod["id"], 1)))["podResume"]
    assert resumed["desiredStatus"] == "RUNNING"
    assert (await data(alice, pod_docs.generate_pod_terminate_mutation(pod["id"]))) == {
        "podTerminate": None}
    assert (await alice.get(f"/v1/pods/{pod['id']}")).status_code == 404

    # A CPU pod as the SDK asks for one: RunPod's implicit runpod-ubuntu template is dropped.
    doc = pod_docs.generate_pod_deployment_mutation(
        "cpu-pod", f"local:{app}", None, docker_args=start, env={"MSG": "cpu"},
        instance_id="cpu3c-2-4")
    assert 'templateId: "runpod-ubuntu"' in doc
    cpu = (await data(alice, doc))["deployCpuPod"]
    rest = (await alice.get(f"/v1/pods/{cpu['id']}")).json()
    assert rest["gpu"] is None and rest["vcpuCount"] == 2 and rest["templateId"] is None
    # No capacity: the service's reason, in errors.
    doc = pod_docs.generate_pod_deployment_mutation("big", f"local:{app}", A40, gpu_count=3,
                                                    docker_args=start)
    err = await error(alice, doc)
    assert err["extensions"]["code"] == "CONFLICT" and "no capacity" in err["message"]
