"""One store, two views: what v1 creates v2 reads and changes, and back; v1's leniency."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from tests.conftest import Server, client_for, create_endpoint, make_server

V2_CREATE = {"name": "inline", "type": "QUEUE", "image": "runplane/local:.",
             "args": "python handler.py --fast", "env": {"MODE": "v2"},
             "gpu": {"pools": ["ADA_24", "AMPERE_48"], "excludedTypes": ["NVIDIA A40"]},
             "workers": {"min": 0, "max": 2}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 3}}


async def test_v1_endpoint_in_v2_and_back(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client, workersMax=2, gpuTypeIds=["NVIDIA GeForce RTX 4090"],
                              template={"env": {"A": "1"}})
    v2 = (await client.get(f"/v2/serverless/{e['id']}")).json()
    assert v2["workers"] == {"min": 0, "max": 2, "idleTimeout": 5}
    assert v2["gpu"]["pools"] == ["ADA_24"] and v2["gpu"]["excludedTypes"] == ["NVIDIA L4"]
    assert v2["env"] == {"A": "1"} and v2["templateId"] == e["templateId"]
    # A v2 PATCH is the next version v1 shows.
    r = await client.patch(f"/v2/serverless/{e['id']}", json={
        "workers": {"max": 5}, "scaling": {"type": "REQUEST_COUNT", "requestCount": 7}})
    assert r.status_code == 200, r.text
    v1 = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert (v1["version"], v1["workersMax"], v1["scalerType"], v1["scalerValue"]) == \
        (1, 5, "REQUEST_COUNT", 7)
    # A v1 change of the endpoint's own env and of its template: two more releases.
    assert (await client.patch(f"/v1/endpoints/{e['id']}", json={"env": {"B": "2"}})).json()[
        "version"] == 2
    assert (await client.patch(f"/v1/templates/{e['templateId']}",
                               json={"imageName": "runplane/local:other"})).status_code == 200
    releases = (await client.get(f"/v2/serverless/{e['id']}/releases")).json()
    assert releases["endpointVersion"] == 3
    diffs = {r["version"]: {d["field"]: (d["old"], d["new"]) for d in r["diff"]}
             for r in releases["releases"]}
    assert diffs[3] == {"template.imageName": ("runplane/local:.", "runplane/local:other")}
    assert diffs[2] == {"env": ({}, {"B": "2"})}
    assert diffs[1] == {"workersMax": (2, 5), "scalerType": ("QUEUE_DELAY", "REQUEST_COUNT"),
                        "scalerValue": (4, 7)}
    assert diffs[0]["workersMax"] == (None, 2)
    # Workers get the template's environment with the endpoint's own on top.
    assert (await client.get(f"/v2/serverless/{e['id']}")).json()["env"] == {"A": "1", "B": "2"}


async def test_v2_inline_endpoint_in_v1(client: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    r = await client.post("/v2/serverless", json=V2_CREATE)
    assert r.status_code == 201, r.text
    ep = r.json()
    v1 = (await client.get(f"/v1/endpoints/{ep['id']}?includeTemplate=true")).json()
    assert v1["gpuTypeIds"] == ["NVIDIA L4", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    assert v1["template"]["imageName"] == "runplane/local:."
    assert v1["template"]["dockerStartCmd"] == ["python", "handler.py", "--fast"]
    assert v1["env"] == {"MODE": "v2"} and v1["idleTimeout"] == 10 and not v1["flashboot"]
    # The endpoint's own template changes in place: one release, no new template.
    r = await client.patch(f"/v2/serverless/{ep['id']}", json={"image": "runplane/local:v2"})
    assert r.status_code == 200 and r.json()["templateId"] == ep["templateId"]
    assert (await client.get(f"/v1/templates/{ep['templateId']}")).json()["imageName"] == \
        "runplane/local:v2"
    # A template two endpoints share is copied instead, so the other one does not change.
    other = (await client.post("/v1/endpoints", json={"templateId": ep["templateId"],
                                                      "name": "second"})).json()
    r = await client.patch(f"/v2/serverless/{ep['id']}", json={"disk": 7})
    moved = r.json()
    assert moved["templateId"] != ep["templateId"] and moved["disk"] == 7
    assert (await client.get(f"/v2/serverless/{other['id']}")).json()["disk"] == 50
    # Another user's endpoint is a 404 in v2 as in v1.
    assert (await bob.patch(f"/v2/serverless/{ep['id']}", json={"name": "x"})).status_code == 404
    # A refused create leaves no template behind.
    before = len((await client.get("/v2/templates")).json()["templates"])
    bad = {**V2_CREATE, "dataCenterIds": ["NOWHERE-1"]}
    assert (await client.post("/v2/serverless", json=bad)).status_code == 400
    assert len((await client.get("/v2/templates")).json()["templates"]) == before


async def test_workers_and_rollout_from_the_real_registry(client: httpx.AsyncClient,
                                                          server: Server) -> None:
    e = await create_endpoint(client)
    worker_id, _ = server.services.workers.register(e["id"], manual=True)
    listed = (await client.get(f"/v2/serverless/{e['id']}/workers")).json()
    assert [(w["id"], w["status"], w["isStale"]) for w in listed["workers"]] == \
        [(worker_id, "INITIALIZING", False)]
    assert listed["summary"]["initializing"] == 1 and listed["summary"]["total"] == 1
    await client.patch(f"/v1/endpoints/{e['id']}", json={"workersMax": 9})
    listed = (await client.get(f"/v2/serverless/{e['id']}/workers")).json()
    assert listed["workers"][0]["isStale"] and listed["endpointVersion"] == 1
    rollout = (await client.get(f"/v2/serverless/{e['id']}/releases")).json()["rollout"]
    assert rollout == {"inProgress": True, "workersOnLatest": 0, "workersTotal": 1,
                       "percentOnLatest": 0}


async def test_v1_ignores_unknown_fields_and_names_them(client: httpx.AsyncClient,
                                                        data_dir: Path) -> None:
    r = await client.post("/v1/networkvolumes", json={
        "name": "v", "size": 10, "dataCenterId": "US-TX-3", "volumeType": "STANDARD",
        "tags": ["a"]})
    assert r.status_code == 200, r.text
    assert r.headers["x-runplane-ignored-fields"] == "tags, volumeType"
    r = await client.post("/v1/templates", json={"name": "t", "imageName": "i", "colour": "red"})
    assert r.status_code == 200 and r.headers["x-runplane-ignored-fields"] == "colour"
    assert "colour" not in r.json()
    # A create-only setting on an update is refused, not ignored.
    r = await client.patch(f"/v1/templates/{r.json()['id']}", json={"isServerless": True})
    assert r.status_code == 400 and r.json()["field"] == "isServerless"
    strict = make_server(data_dir.parent / "strict", strict_validation=True)
    try:
        async with client_for(strict, strict.user_key) as c:
            r = await c.post("/v1/networkvolumes", json={
                "name": "v", "size": 10, "dataCenterId": "US-TX-3", "volumeType": "STANDARD"})
            assert r.status_code == 400 and r.json()["field"] == "volumeType"
    finally:
        strict.services.engine.dispose()


async def test_pod_logs_stream_and_resume(tmp_path: Path, data_dir: Path) -> None:
    srv = make_server(data_dir)
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("for i in range(5):\n    print(f'line {i}', flush=True)\n")
    try:
        async with client_for(srv, srv.user_key) as c:
            r = await c.post("/v2/pods", json={"name": "p", "image": f"local:{app}",
                                               "args": f"{sys.executable} app.py",
                                               "cpu": {"id": "cpu3c", "vcpuCount": 2}})
            assert r.status_code == 201, r.text
            pod_id = r.json()["id"]
            for _ in range(200):  # the process prints and exits; the reaper records it
                srv.services.pods.reap(srv.services.clock.now())
                if not srv.services.pods.runs(pod_id):
                    break
                await asyncio.sleep(0.05)
            r = await c.get(f"/v2/pods/{pod_id}/logs", params={"source": "container", "tail": 3})
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-cache"
            events = [e for e in r.text.split("\n\n") if e.startswith("id: ")]
            assert [e.split('"line":"')[1].split('"')[0] for e in events] == \
                ["line 2", "line 3", "line 4"]
            resume = events[0].split("\n")[0][4:]
            r = await c.get(f"/v2/pods/{pod_id}/logs", params={"source": "container"},
                            headers={"Last-Event-ID": resume})
            assert r.text.count("id: ") == 2 and "line 4" in r.text
    finally:
        await srv.services.controller.shutdown()
        srv.services.engine.dispose()


async def test_oversized_body_is_a_413_problem(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/templates", content=b"{" + b" " * 2_000_000 + b"}",
                          headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Request Entity Too Large" and "limit" in r.json()["detail"]


async def test_v2_endpoint_bodies_are_validated_once_in_v2_names(
        client: httpx.AsyncClient) -> None:
    """What broke v1's rules after v2's used to be an internal error (500) or a refusal in
    v1's names; now each rule runs once and answers in the body's own names."""
    ep = (await client.post("/v2/serverless", json=V2_CREATE)).json()
    templates = len((await client.get("/v2/templates")).json()["templates"])
    for change, status, lead in [
        ({"ports": ["80/udp"]}, 422, "ports: '80/udp' is not"),
        ({"dataCenterIds": ["US-TX-3", "US-TX-3"]}, 422, "dataCenterIds: 'US-TX-3' is listed twice"),
        ({"args": " ".join(["a"] * 257)}, 400, "args: 257 words"),
        ({"networkVolumes": ["nope"]}, 400, "networkVolumes[0]: no network volume 'nope'"),
        ({"workers": {"min": 3, "max": 1}}, 400, "workers.min: 3 is more than"),
        ({"registry": "nope"}, 400, "registry: no container registry auth 'nope'"),
    ]:
        for r in (await client.post("/v2/serverless", json={**V2_CREATE, **change}),
                  await client.patch(f"/v2/serverless/{ep['id']}", json=change)):
            assert r.status_code == status, (change, r.text)
            assert r.json()["errors"][0].startswith(lead), (change, r.json())
    # Refused, they changed nothing.
    assert len((await client.get("/v2/templates")).json()["templates"]) == templates
    assert (await client.get(f"/v2/serverless/{ep['id']}")).json() == ep
    # The longest name an endpoint may have still leaves room for its template's.
    r = await client.post("/v2/serverless", json={**V2_CREATE, "name": "n" * 191})
    assert r.status_code == 201, r.text
