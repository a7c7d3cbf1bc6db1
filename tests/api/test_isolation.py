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


# -- the template an endpoint may run: one rule on every surface -------------------------

V2_BASE = {"name": "e", "type": "QUEUE", "gpu": {"pools": ["ADA_24"]},
           "scaling": {"type": "QUEUE_DELAY", "queueDelay": 3}}


async def _template(c: httpx.AsyncClient, name: str, **kw: object) -> str:
    r = await c.post("/v1/templates", json={"name": name, "imageName": "runplane/local:.",
                                            "isServerless": True, "env": {"OWNER": name}, **kw})
    assert r.status_code == 200, r.text
    return r.json()["id"]


async def _create(c: httpx.AsyncClient, surface: str, template_id: str) -> tuple[int, str | None]:
    """(status, the field blamed) of an endpoint create on ``template_id`` through one surface."""
    if surface == "graphql":
        doc = f'mutation {{ saveEndpoint(input: {{name: "e", templateId: "{template_id}"}}) {{ id }} }}'
        body = (await c.post("/graphql", json={"query": doc})).json()
        if "errors" not in body:
            return 200, None
        ext = body["errors"][0]["extensions"]
        return ext["status"], ext.get("field")
    if surface == "v1":
        r = await c.post("/v1/endpoints", json={"templateId": template_id})
        return r.status_code, r.json().get("field") if r.status_code >= 400 else None
    inline = {"image": "runplane/local:inline"} if surface == "v2 inline" else {}
    r = await c.post("/v2/serverless", json={**V2_BASE, "templateId": template_id, **inline})
    field = r.json()["errors"][0].split(":")[0] if r.status_code >= 400 else None
    return (200 if r.status_code == 201 else r.status_code), field


async def _repoint(c: httpx.AsyncClient, surface: str, endpoint_id: str,
                   template_id: str) -> tuple[int, str | None]:
    """(status, the field blamed) of pointing an endpoint at ``template_id``."""
    if surface == "graphql":
        doc = (f'mutation {{ updateEndpointTemplate(input: {{endpointId: "{endpoint_id}", '
               f'templateId: "{template_id}"}}) {{ id }} }}')
        body = (await c.post("/graphql", json={"query": doc})).json()
        if "errors" not in body:
            return 200, None
        ext = body["errors"][0]["extensions"]
        return ext["status"], ext.get("field")
    if surface == "v1":
        r = await c.patch(f"/v1/endpoints/{endpoint_id}", json={"templateId": template_id})
        return r.status_code, r.json().get("field") if r.status_code >= 400 else None
    inline = {"disk": 9} if surface == "v2 inline" else {}
    r = await c.patch(f"/v2/serverless/{endpoint_id}", json={"templateId": template_id, **inline})
    return r.status_code, r.json()["errors"][0].split(":")[0] if r.status_code >= 400 else None


SURFACES = ("v1", "graphql", "v2", "v2 inline")
REFUSED = (400, "templateId")


@pytest.mark.parametrize("surface", SURFACES)
async def test_the_template_an_endpoint_may_run_is_one_rule_on_every_surface(
    surface: str, client: httpx.AsyncClient, bob: httpx.AsyncClient, admin: httpx.AsyncClient,
) -> None:
    """A serverless template of the endpoint's owner, and nothing else, through v1, GraphQL
    and REST v2 alike. REST v2 with inline container settings (which copy the template) used
    to take an admin's reach (anyone's template, its env copied to another user's endpoint)
    and Pod templates."""
    alices = await _template(client, "alice-1")
    alices_other = await _template(client, "alice-2")
    alices_pod = await _template(client, "alice-pod", isServerless=False)
    bobs_public = await _template(bob, "bob-public", isPublic=True)
    admins = await _template(admin, "admin-1")
    ep = await create_endpoint(client)

    before = [await _list(c) for c in (client, bob, admin)]
    assert await _create(client, surface, alices_pod) == REFUSED
    assert await _create(client, surface, bobs_public) == REFUSED
    assert await _create(admin, surface, alices) == REFUSED  # an admin's own endpoint
    assert await _repoint(admin, surface, ep["id"], bobs_public) == REFUSED  # alice's endpoint
    assert await _repoint(admin, surface, ep["id"], admins) == REFUSED
    assert await _repoint(client, surface, ep["id"], alices_pod) == REFUSED
    # Refusals change nothing: no template was copied, the endpoint still runs its own.
    assert [await _list(c) for c in (client, bob, admin)] == before
    got = (await client.get(f"/v1/endpoints/{ep['id']}?includeTemplate=true")).json()
    assert (got["templateId"], got["version"]) == (ep["templateId"], 0)
    assert "OWNER" not in got["env"]
    # What the rule allows, it allows everywhere: the owner's own, whoever asks.
    assert (await _create(client, surface, alices))[0] == 200
    assert (await _repoint(admin, surface, ep["id"], alices_other))[0] == 200


async def _list(c: httpx.AsyncClient) -> list[str]:
    r = await c.get("/v1/templates", params={"includeEndpointBoundTemplates": "true"})
    return sorted(t["id"] for t in r.json())
