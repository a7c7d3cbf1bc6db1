"""/v1/containerregistryauth: the password is kept for pulls and never answered nor logged."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import Server

SECRET = "s3cr3t-Pa55word-xyz"


async def test_create_list_get_delete_never_show_password(
    client: httpx.AsyncClient, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = await client.post("/v1/containerregistryauth",
                          json={"name": "hub", "username": "me", "password": SECRET})
    assert r.status_code == 200
    auth = r.json()
    assert set(auth) == {"id", "name"} and auth["name"] == "hub"
    listed = await client.get("/v1/containerregistryauth")
    got = await client.get(f"/v1/containerregistryauth/{auth['id']}")
    assert listed.json() == [auth] and got.json() == auth
    for response in (r, listed, got):
        assert SECRET not in response.text and "me" not in response.json()
    assert server.services.registry_auths.credentials(auth["id"]) == ("me", SECRET)
    # Even a bad request carrying the password does not echo it.
    bad = await client.post("/v1/containerregistryauth",
                            json={"name": "hub", "username": 5, "password": SECRET})
    assert bad.status_code == 400 and SECRET not in bad.text
    assert SECRET not in caplog.text
    assert (await client.delete(f"/v1/containerregistryauth/{auth['id']}")).status_code == 204
    assert (await client.get(f"/v1/containerregistryauth/{auth['id']}")).status_code == 404


async def test_name_unique_per_user(client: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    body = {"name": "hub", "username": "u", "password": "p"}
    assert (await client.post("/v1/containerregistryauth", json=body)).status_code == 200
    r = await client.post("/v1/containerregistryauth", json=body)
    assert r.status_code == 409 and r.json()["field"] == "name"
    assert (await bob.post("/v1/containerregistryauth", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "u", "password": "p"}, "name"),
        ({"name": "n", "password": "p"}, "username"),
        ({"name": "n", "username": "u"}, "password"),
        ({"name": "n", "username": "u", "password": ""}, "password"),
        ({"name": "n", "username": "u", "password": 1234}, "password"),
    ],
)
async def test_bad_create_is_400(client: httpx.AsyncClient, body: dict, field: str) -> None:
    r = await client.post("/v1/containerregistryauth", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert (await client.get("/v1/containerregistryauth")).json() == []


async def test_no_update_route(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/containerregistryauth", json={"name": "n", "username": "u", "password": "p"})
    r = await client.patch(f"/v1/containerregistryauth/{r.json()['id']}", json={"name": "x"})
    assert r.status_code == 405
