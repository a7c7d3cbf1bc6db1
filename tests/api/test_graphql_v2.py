"""GraphQL and REST v2 over one store: what the runpod SDK's documents create, REST v2 reads
and changes, and back (templates, endpoints with their pools, registry credentials, SSH keys,
pods)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from runpod.api.mutations import container_register_auth as registry_docs
from runpod.api.mutations import endpoints as endpoint_docs
from runpod.api.mutations import pods as pod_docs
from runpod.api.mutations import templates as template_docs
from runpod.api.mutations import user as user_docs
from runpod.api.queries import endpoints as endpoint_queries
from runpod.api.queries import pods as pod_queries
from runpod.api.queries import user as user_queries

from tests.api.test_graphql import data
from tests.conftest import Server

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ a@b"


async def test_graphql_endpoint_in_v2_and_back(client: httpx.AsyncClient) -> None:
    t = (await data(client, template_docs.generate_pod_template(
        "gt", "runplane/local:.", docker_start_cmd="python -u h.py", env={"A": "1"},
        is_serverless=True)))["saveTemplate"]
    v2t = (await client.get(f"/v2/templates/{t['id']}")).json()
    assert v2t["image"] == "runplane/local:." and v2t["env"] == {"A": "1"}
    doc = endpoint_docs.generate_endpoint_mutation("ge", t["id"], gpu_ids="AMPERE_48,ADA_24",
                                                   workers_max=2, flashboot=True)
    e = (await data(client, doc))["saveEndpoint"]
    v2 = (await client.get(f"/v2/serverless/{e['id']}")).json()
    assert v2["gpu"]["pools"] == ["ADA_24", "AMPERE_48"] and v2["gpu"]["excludedTypes"] == []
    assert v2["workers"]["max"] == 2 and v2["flashboot"] == "FLASHBOOT"
    assert v2["templateId"] == t["id"] and v2["env"] == {"A": "1"}

    r = await client.patch(f"/v2/serverless/{e['id']}", json={
        "gpu": {"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA RTX A6000"]},
        "workers": {"max": 4}, "flashboot": "OFF"})
    assert r.status_code == 200, r.text
    (got,) = [x for x in (await data(client, endpoint_queries.QUERY_ENDPOINT))["myself"][
        "endpoints"] if x["id"] == e["id"]]
    assert got["gpuIds"] == "AMPERE_48,-NVIDIA RTX A6000"
    assert (got["workersMax"], got["version"]) == (4, 1)


async def test_v2_endpoint_and_pod_in_graphql(client: httpx.AsyncClient, tmp_path: Path,
                                              server: Server) -> None:
    r = await client.post("/v2/serverless", json={
        "name": "v2e", "type": "QUEUE", "image": "runplane/local:.", "args": "python h.py",
        "env": {"MODE": "v2"}, "gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L4"]},
        "workers": {"min": 0, "max": 2}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 3}})
    assert r.status_code == 201, r.text
    ep = r.json()
    (got,) = [x for x in (await data(client, endpoint_queries.QUERY_ENDPOINT))["myself"][
        "endpoints"] if x["id"] == ep["id"]]
    assert got["gpuIds"] == "ADA_24,-NVIDIA L4" and got["env"] == [{"key": "MODE",
                                                                 "value": "v2"}]
    assert got["templateId"] == ep["templateId"] and got["workersMax"] == 2

    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("import time\ntime.sleep(600)\n")
    try:
        doc = pod_docs.generate_pod_deployment_mutation(
            "gpod", f"local:{app}", None, docker_args=f"{sys.executable} app.py",
            instance_id="cpu3c-2-4", env={"P": "q"})
        pod = (await data(client, doc))["deployCpuPod"]
        v2pod = (await client.get(f"/v2/pods/{pod['id']}")).json()
        assert v2pod["name"] == "gpod" and v2pod["env"] == {"P": "q"}
        r = await client.post(f"/v2/pods/{pod['id']}/action", json={"action": "stop"})
        assert r.status_code == 200, r.text
        got = (await data(client, pod_queries.generate_pod_query(pod["id"])))["pod"]
        assert got["desiredStatus"] == "EXITED" and got["runtime"] is None
        await data(client, pod_docs.generate_pod_terminate_mutation(pod["id"]))
        assert (await client.get(f"/v2/pods/{pod['id']}")).status_code == 404
    finally:
        await server.services.controller.shutdown()


async def test_registry_auths_and_ssh_keys(client: httpx.AsyncClient) -> None:
    doc = registry_docs.generate_container_registry_auth("greg", "u", "p")
    auth = (await data(client, doc))["saveRegistryAuth"]
    v2 = (await client.get(f"/v2/registries/{auth['id']}")).json()
    assert v2["id"] == auth["id"] and v2["name"] == "greg"
    r = await client.post("/v2/registries", json={"name": "v2reg", "username": "u",
                                                  "password": "p"})
    assert r.status_code == 201, r.text
    creds = (await data(client, "{ myself { containerRegistryCreds { id name } } }"))
    assert {"id": r.json()["id"], "name": "v2reg"} in creds["myself"]["containerRegistryCreds"]

    await data(client, user_docs.generate_user_mutation(KEY))
    assert (await client.get("/v2/account/ssh-keys")).json() == {"keys": [KEY]}
    other = KEY.replace("SIQQZ", "SIQQY")
    r = await client.put("/v2/account/ssh-keys", json={"keys": [KEY, other]})
    assert r.status_code == 200, r.text
    assert (await data(client, user_queries.QUERY_USER))["myself"]["pubKey"] == f"{KEY}\n{other}"
