"""Every resource belongs to a user: another user's is a 404 on every route (never its data
nor a hint it exists), admins see and manage everyone's, anonymous callers get 401."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server, create_endpoint


async def _alice_world(client: httpx.AsyncClient) -> dict[str, str]:
    auth = (await client.post("/v1/containerregistryauth",
                              json={"name": "r", "username": "u", "password": "p"})).json()
    vol = (await client.post("/v1/networkvolumes",
                             json={"name": "v", "size": 1, "dataCenterId": "EU-RO-1"})).json()
    ep = await create_endpoint(client, networkVolumeId=vol["id"])
    return {"auth": auth["id"], "volume": vol["id"], "endpoint": ep["id"], "template": ep["templateId"]}


def _routes(ids: dict[str, str]) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/v1/endpoints/{ids['endpoint']}?includeTemplate=true", None),
        ("PATCH", f"/v1/endpoints/{ids['endpoint']}", {"workersMax": 1}),
        ("POST", f"/v1/endpoints/{ids['endpoint']}/update", {"workersMax": 1}),
        ("DELETE", f"/v1/endpoints/{ids['endpoint']}", None),
        ("GET", f"/v1/templates/{ids['template']}", None),
        ("PATCH", f"/v1/templates/{ids['template']}", {"imageName": "evil"}),
        ("POST", f"/v1/templates/{ids['template']}/update", {"imageName": "evil"}),
        ("DELETE", f"/v1/templates/{ids['template']}", None),
        ("GET", f"/v1/networkvolumes/{ids['volume']}", None),
        ("PATCH", f"/v1/networkvolumes/{ids['volume']}", {"size": 2}),
        ("POST", f"/v1/networkvolumes/{ids['volume']}/update", {"size": 2}),
        ("DELETE", f"/v1/networkvolumes/{ids['volume']}", None),
        ("GET", f"/v1/containerregistryauth/{ids['auth']}", None),
        ("DELETE", f"/v1/containerregistryauth/{ids['auth']}", None),
    ]


async def test_other_user_gets_404_like_a_missing_id(
    client: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    ids = await _alice_world(client)
    before = {path: (await client.get(path)).json()
              for method, path, _ in _routes(ids) if method == "GET"}
    for method, path, body in _routes(ids):
        r = await bob.request(method, path, json=body)
        missing = await bob.request(method, path.replace(path.split("/")[3].split("?")[0], "zzzzzzzzzz"),
                                    json=body)
        assert r.status_code == 404, (method, path, r.text)
        # Same answer as for an id that does not exist (modulo the id itself).
        assert r.json()["message"].split(" ")[0] == missing.json()["message"].split(" ")[0]
        for value in ids.values():
            if value not in path:
                assert value not in r.text
    for path in ("/v1/endpoints", "/v1/templates?includeEndpointBoundTemplates=true",
                 "/v1/networkvolumes", "/v1/containerregistryauth"):
        assert (await bob.get(path)).json() == []
    after = {path: (await client.get(path)).json() for path in before}
    assert after == before


async def test_other_users_resources_cannot_be_referenced(
    client: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    ids = await _alice_world(client)
    bob_template = (await bob.post("/v1/templates", json={
        "name": "b", "imageName": "i", "isServerless": True})).json()
    r = await bob.post("/v1/endpoints", json={"templateId": ids["template"]})
    assert r.status_code == 400 and r.json()["field"] == "templateId"
    r = await bob.post("/v1/endpoints", json={"templateId": bob_template["id"],
                                              "networkVolumeId": ids["volume"]})
    assert r.status_code == 400 and r.json()["field"] == "networkVolumeId"
    r = await bob.post("/v1/templates", json={"name": "c", "imageName": "i",
                                              "containerRegistryAuthId": ids["auth"]})
    assert r.status_code == 400 and r.json()["field"] == "containerRegistryAuthId"


async def test_admin_sees_and_manages_everyone(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, server: Server
) -> None:
    ids = await _alice_world(client)
    assert (await admin.get(f"/v1/endpoints/{ids['endpoint']}")).status_code == 200
    assert [e["id"] for e in (await admin.get("/v1/endpoints")).json()] == [ids["endpoint"]]
    assert len((await admin.get("/v1/networkvolumes")).json()) == 1
    assert len((await admin.get("/v1/containerregistryauth")).json()) == 1
    bound = (await admin.get("/v1/templates?includeEndpointBoundTemplates=true")).json()
    assert [t["id"] for t in bound] == [ids["template"]]
    r = await admin.patch(f"/v1/endpoints/{ids['endpoint']}", json={"workersMax": 7})
    assert r.status_code == 200 and r.json()["userId"] != server.services.users.find_user("admin")["id"]
    assert (await client.get(f"/v1/endpoints/{ids['endpoint']}")).json()["workersMax"] == 7


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/endpoints"), ("POST", "/v1/endpoints"), ("GET", "/v1/endpoints/x"),
        ("PATCH", "/v1/endpoints/x"), ("POST", "/v1/endpoints/x/update"),
        ("DELETE", "/v1/endpoints/x"), ("GET", "/v1/templates"), ("POST", "/v1/templates"),
        ("GET", "/v1/templates/x"), ("PATCH", "/v1/templates/x"), ("DELETE", "/v1/templates/x"),
        ("GET", "/v1/networkvolumes"), ("POST", "/v1/networkvolumes"),
        ("DELETE", "/v1/networkvolumes/x"), ("GET", "/v1/containerregistryauth"),
        ("POST", "/v1/containerregistryauth"), ("GET", "/v1/billing/endpoints"),
        ("GET", "/v1/billing/pods"), ("GET", "/v1/billing/networkvolumes"),
    ],
)
async def test_anonymous_is_401(anon: httpx.AsyncClient, method: str, path: str) -> None:
    r = await anon.request(method, path, json={} if method in ("POST", "PATCH") else None)
    assert r.status_code == 401 and r.json()["message"]


async def test_owner_of_is_cached_and_invalidated(client: httpx.AsyncClient, server: Server) -> None:
    svc = server.services.endpoints
    e = await create_endpoint(client)
    alice = server.services.users.find_user("alice")["id"]
    assert svc.owner_of(e["id"]) == alice
    assert svc.owner_of("missing") is None
    await client.delete(f"/v1/endpoints/{e['id']}")
    assert svc.owner_of(e["id"]) is None
