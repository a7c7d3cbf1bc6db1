"""API keys: Bearer and raw forms, missing and bad keys, revocation."""

from __future__ import annotations

import httpx

from tests.conftest import Server


async def test_missing_key_is_401_in_spec_shape(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/v1/templates")
    assert r.status_code == 401
    body = r.json()
    assert isinstance(body["message"], str) and body["message"]
    assert body["status"] == 401


async def test_bad_key_is_401(server: Server) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://t"
    ) as c:
        r = await c.get("/v1/templates", headers={"Authorization": "Bearer rpl_nope"})
        assert r.status_code == 401
        assert "invalid" in r.json()["message"]


async def test_raw_key_accepted(server: Server) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://t"
    ) as c:
        r = await c.get("/v1/templates", headers={"Authorization": server.user_key})
        assert r.status_code == 200


async def test_revoked_key_stops_working(server: Server) -> None:
    users = server.services.users
    alice = users.find_user("alice")
    key = users.create_key(alice["id"], "temp")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://t",
        headers={"Authorization": f"Bearer {key.secret}"},
    ) as c:
        assert (await c.get("/v1/templates")).status_code == 200
        assert users.revoke_key(key.id)
        assert (await c.get("/v1/templates")).status_code == 401


def test_keys_are_stored_only_as_hashes(server: Server) -> None:
    from sqlalchemy import select

    from runplane.store.tables import api_keys

    with server.services.engine.connect() as conn:
        rows = conn.execute(select(api_keys)).all()
    for row in rows:
        for value in row:
            assert value not in (server.user_key, server.admin_key, server.other_key)
