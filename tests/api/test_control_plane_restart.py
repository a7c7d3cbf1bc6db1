"""State lives in SQL: a second server on the same data dir finds everything as it was."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Server, client_for, create_endpoint, make_server


async def test_restart_keeps_everything(server: Server, data_dir: Path) -> None:
    async with client_for(server, server.user_key) as c:
        auth = (await c.post("/v1/containerregistryauth",
                             json={"name": "r", "username": "u", "password": "pw"})).json()
        vol = (await c.post("/v1/networkvolumes",
                            json={"name": "v", "size": 5, "dataCenterId": "EU-RO-1"})).json()
        ep = await create_endpoint(
            c, networkVolumeId=vol["id"], workersMax=2, flashboot=False,
            template={"env": {"A": "1"}, "containerRegistryAuthId": auth["id"]},
        )
        await c.patch(f"/v1/endpoints/{ep['id']}", json={"idleTimeout": 30})
        paths = [f"/v1/endpoints/{ep['id']}?includeTemplate=true&includeWorkers=true",
                 "/v1/endpoints", "/v1/templates?includeEndpointBoundTemplates=true",
                 "/v1/networkvolumes", "/v1/containerregistryauth",
                 f"/v1/containerregistryauth/{auth['id']}"]
        before = {p: (await c.get(p)).json() for p in paths}
    server.services.engine.dispose()

    again = make_server(data_dir)
    try:
        async with client_for(again, again.user_key) as c:
            after = {p: (await c.get(p)).json() for p in paths}
            assert after == before
            got = after[paths[0]]
            assert got["version"] == 1 and got["idleTimeout"] == 30 and got["flashboot"] is False
            assert again.services.endpoints.owner_of(ep["id"]) == got["userId"]
            assert again.services.registry_auths.credentials(auth["id"]) == ("u", "pw")
            # Rules still hold across the restart.
            r = await c.delete(f"/v1/templates/{ep['templateId']}")
            assert r.status_code == 409
            r = await c.delete(f"/v1/networkvolumes/{vol['id']}")
            assert r.status_code == 409
    finally:
        again.services.engine.dispose()


async def test_list_all_for_the_controller(client: httpx.AsyncClient, bob: httpx.AsyncClient,
                                           server: Server) -> None:
    a = await create_endpoint(client)
    b = await create_endpoint(bob)
    all_ids = [e.id for e in server.services.endpoints.list_all()]
    assert all_ids == [a["id"], b["id"]]
    internal = server.services.endpoints.get(a["id"])
    assert internal is not None and internal.template is not None
    assert internal.template.imageName == "runplane/local:." and internal.flashboot is True
    assert server.services.templates.get(a["templateId"]).isServerless is True  # type: ignore[union-attr]
