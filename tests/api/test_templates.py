"""/v1/templates: defaults, listing flags, uniqueness, updates that roll endpoints, and
deletion refused while in use."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import create_endpoint


async def _create(client: httpx.AsyncClient, **fields: object) -> dict:
    r = await client.post("/v1/templates", json={"name": "t", "imageName": "img:1", **fields})
    assert r.status_code == 200, r.text
    return r.json()


async def test_spec_defaults(client: httpx.AsyncClient) -> None:
    t = await _create(client)
    assert t["category"] == "NVIDIA" and t["containerDiskInGb"] == 50
    assert t["ports"] == ["8888/http", "22/tcp"] and t["volumeInGb"] == 20
    assert t["volumeMountPath"] == "/workspace" and t["readme"] == ""
    assert t["dockerEntrypoint"] == [] and t["dockerStartCmd"] == [] and t["env"] == {}
    assert t["isPublic"] is False and t["isServerless"] is False and t["isRunpod"] is False
    assert len(t["id"]) == 10
    assert (await client.get(f"/v1/templates/{t['id']}")).json() == t


async def test_ports_as_comma_separated_string(client: httpx.AsyncClient) -> None:
    t = await _create(client, ports="8000/http, 9000/tcp")
    assert t["ports"] == ["8000/http", "9000/tcp"]


async def test_names_are_unique_per_user(client: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    await _create(client, name="same")
    r = await client.post("/v1/templates", json={"name": "same", "imageName": "x"})
    assert r.status_code == 409 and r.json()["field"] == "name"
    await _create(bob, name="same")  # another user may use the name


async def test_update_patch_and_post_alias_bump_endpoint_versions(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    tid = e["templateId"]
    r = await client.patch(f"/v1/templates/{tid}", json={"env": {"K": "v"}, "imageName": "img:2"})
    assert r.status_code == 200 and r.json()["env"] == {"K": "v"} and r.json()["imageName"] == "img:2"
    r = await client.post(f"/v1/templates/{tid}/update", json={"containerDiskInGb": 80})
    assert r.status_code == 200 and r.json()["containerDiskInGb"] == 80
    assert r.json()["env"] == {"K": "v"}  # untouched fields stay
    got = (await client.get(f"/v1/endpoints/{e['id']}")).json()
    assert got["version"] == 2 and got["env"] == {"K": "v"}
    # The same values again are not a change.
    await client.patch(f"/v1/templates/{tid}", json={"containerDiskInGb": 80})
    assert (await client.get(f"/v1/endpoints/{e['id']}")).json()["version"] == 2


async def test_rename_onto_existing_name_is_409(client: httpx.AsyncClient) -> None:
    await _create(client, name="a")
    b = await _create(client, name="b")
    r = await client.patch(f"/v1/templates/{b['id']}", json={"name": "a"})
    assert r.status_code == 409
    assert (await client.get(f"/v1/templates/{b['id']}")).json()["name"] == "b"


async def test_delete_in_use_is_409_then_allowed(client: httpx.AsyncClient) -> None:
    e = await create_endpoint(client)
    r = await client.delete(f"/v1/templates/{e['templateId']}")
    assert r.status_code == 409 and "endpoint" in r.json()["message"]
    assert (await client.get(f"/v1/templates/{e['templateId']}")).status_code == 200
    assert (await client.delete(f"/v1/endpoints/{e['id']}")).status_code == 204
    assert (await client.delete(f"/v1/templates/{e['templateId']}")).status_code == 204
    assert (await client.get(f"/v1/templates/{e['templateId']}")).status_code == 404


async def test_list_flags(client: httpx.AsyncClient, bob: httpx.AsyncClient,
                          admin: httpx.AsyncClient) -> None:
    free = await _create(client, name="free")
    bound = (await create_endpoint(client))["templateId"]
    bobs_public = await _create(bob, name="bob-public", isPublic=True)
    await _create(bob, name="bob-private")
    official = await _create(admin, name="official", isPublic=True)

    async def ids(**params: str) -> set[str]:
        r = await client.get("/v1/templates", params=params)
        assert r.status_code == 200
        return {t["id"] for t in r.json()}

    assert await ids() == {free["id"]}
    assert await ids(includeEndpointBoundTemplates="true") == {free["id"], bound}
    assert await ids(includePublicTemplates="true") == {free["id"], bobs_public["id"]}
    assert await ids(includeRunpodTemplates="true") == {free["id"], official["id"]}
    runpod = (await client.get(f"/v1/templates/{official['id']}?includeRunpodTemplates=true")).json()
    assert runpod["isRunpod"] is True
    assert (await client.get(f"/v1/templates/{bobs_public['id']}")).status_code == 404
    r = await client.get(f"/v1/templates/{bobs_public['id']}?includePublicTemplates=true")
    assert r.status_code == 200 and r.json()["isRunpod"] is False
    # Reading a public template does not make it usable or editable by others.
    r = await client.patch(f"/v1/templates/{bobs_public['id']}", json={"name": "mine"})
    assert r.status_code == 404
    r = await client.post("/v1/endpoints", json={"templateId": bobs_public["id"]})
    assert r.status_code == 400 and r.json()["field"] == "templateId"


async def test_registry_auth_reference(client: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    mine = (await client.post("/v1/containerregistryauth",
                              json={"name": "r", "username": "u", "password": "p"})).json()
    theirs = (await bob.post("/v1/containerregistryauth",
                             json={"name": "r", "username": "u", "password": "p"})).json()
    t = await _create(client, containerRegistryAuthId=mine["id"])
    assert t["containerRegistryAuthId"] == mine["id"]
    r = await client.post("/v1/templates", json={"name": "x", "imageName": "i",
                                                 "containerRegistryAuthId": theirs["id"]})
    assert r.status_code == 400 and r.json()["field"] == "containerRegistryAuthId"
    # In use: the credentials cannot be deleted; clearing the reference frees them.
    assert (await client.delete(f"/v1/containerregistryauth/{mine['id']}")).status_code == 409
    r = await client.patch(f"/v1/templates/{t['id']}", json={"containerRegistryAuthId": None})
    assert r.status_code == 200 and r.json()["containerRegistryAuthId"] == ""
    assert (await client.delete(f"/v1/containerregistryauth/{mine['id']}")).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"imageName": "x"}, "name"),
        ({"name": "x"}, "imageName"),
        ({"name": "", "imageName": "x"}, "name"),
        ({"name": "x", "imageName": ""}, "imageName"),
        ({"name": "x", "imageName": 5}, "imageName"),
        ({"name": "x", "imageName": "i", "ports": ["80/udp"]}, "ports"),
        ({"name": "x", "imageName": "i", "ports": ["70000/http"]}, "ports"),
        ({"name": "x", "imageName": "i", "ports": "80/http,80/tcp"}, "ports"),
        ({"name": "x", "imageName": "i", "env": {"1BAD": "v"}}, "env"),
        ({"name": "x", "imageName": "i", "env": {"A": 1}}, "env.A"),
        ({"name": "x", "imageName": "i", "env": ["A=1"]}, "env"),
        ({"name": "x", "imageName": "i", "volumeMountPath": "relative"}, "volumeMountPath"),
        ({"name": "x", "imageName": "i", "containerDiskInGb": 0}, "containerDiskInGb"),
        ({"name": "x", "imageName": "i", "containerDiskInGb": "50"}, "containerDiskInGb"),
        ({"name": "x", "imageName": "i", "volumeInGb": -1}, "volumeInGb"),
        ({"name": "x", "imageName": "i", "volumeInGb": 10**30}, "volumeInGb"),
        ({"name": "x", "imageName": "i", "category": "TPU"}, "category"),
        ({"name": "x", "imageName": "i", "isServerless": "yes"}, "isServerless"),
        ({"name": "x", "imageName": "i", "dockerStartCmd": "python x.py"}, "dockerStartCmd"),
        ({"name": "x", "imageName": "i", "containerRegistryAuthId": "nope"}, "containerRegistryAuthId"),
    ],
)
async def test_bad_create_is_400_naming_the_field(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    r = await client.post("/v1/templates", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["field"] == field and err["message"].startswith(field) and err["status"] == 400
    assert (await client.get("/v1/templates")).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"isServerless": True}, "isServerless"),  # not updatable (spec: TemplateUpdateInput)
        ({"ports": [""]}, "ports"),
        ({"volumeInGb": 5000}, "volumeInGb"),
    ],
)
async def test_bad_update_is_400_and_changes_nothing(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    t = await _create(client)
    r = await client.patch(f"/v1/templates/{t['id']}", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert (await client.get(f"/v1/templates/{t['id']}")).json() == t
