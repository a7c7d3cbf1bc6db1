"""/v1/networkvolumes: directories on disk, grow-only resize, deletion rules, bad input."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server, create_endpoint


async def _create(client: httpx.AsyncClient, **fields: object) -> dict:
    body = {"name": "v", "size": 10, "dataCenterId": "EU-RO-1", **fields}
    r = await client.post("/v1/networkvolumes", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_create_makes_a_directory_delete_removes_it(
    client: httpx.AsyncClient, server: Server
) -> None:
    v = await _create(client)
    assert v == {"id": v["id"], "name": "v", "size": 10, "dataCenterId": "EU-RO-1"}
    path = server.settings.resolved_volume_root / "EU-RO-1" / v["id"]
    assert path.is_dir()
    (path / "weights.bin").write_bytes(b"x")
    assert (await client.get(f"/v1/networkvolumes/{v['id']}")).json() == v
    assert [x["id"] for x in (await client.get("/v1/networkvolumes")).json()] == [v["id"]]
    assert (await client.delete(f"/v1/networkvolumes/{v['id']}")).status_code == 204
    assert not path.exists()
    assert (await client.get(f"/v1/networkvolumes/{v['id']}")).status_code == 404


async def test_volume_root_setting(tmp_path, data_dir) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import client_for, make_server

    srv = make_server(data_dir, volume_root=tmp_path / "nfs")
    async with client_for(srv, srv.user_key) as c:
        v = await _create(c, dataCenterId="US-TX-3")
    assert (tmp_path / "nfs" / "US-TX-3" / v["id"]).is_dir()
    srv.services.engine.dispose()


async def test_update_renames_and_grows_never_shrinks(client: httpx.AsyncClient) -> None:
    v = await _create(client, size=50)
    r = await client.patch(f"/v1/networkvolumes/{v['id']}", json={"name": "big", "size": 100})
    assert r.status_code == 200 and r.json()["size"] == 100 and r.json()["name"] == "big"
    r = await client.post(f"/v1/networkvolumes/{v['id']}/update", json={"size": 100})
    assert r.status_code == 200
    r = await client.patch(f"/v1/networkvolumes/{v['id']}", json={"size": 20})
    assert r.status_code == 400 and r.json()["field"] == "size"
    assert (await client.get(f"/v1/networkvolumes/{v['id']}")).json()["size"] == 100


async def test_delete_in_use_is_409(client: httpx.AsyncClient) -> None:
    v = await _create(client)
    e = await create_endpoint(client, networkVolumeId=v["id"])
    r = await client.delete(f"/v1/networkvolumes/{v['id']}")
    assert r.status_code == 409 and e["id"] not in r.json()["message"]
    await client.delete(f"/v1/endpoints/{e['id']}")
    assert (await client.delete(f"/v1/networkvolumes/{v['id']}")).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "v", "size": 10}, "dataCenterId"),
        ({"name": "v", "dataCenterId": "EU-RO-1"}, "size"),
        ({"size": 10, "dataCenterId": "EU-RO-1"}, "name"),
        ({"name": "v", "size": 10, "dataCenterId": "MARS-1"}, "dataCenterId"),
        ({"name": "v", "size": -1, "dataCenterId": "EU-RO-1"}, "size"),
        ({"name": "v", "size": 4001, "dataCenterId": "EU-RO-1"}, "size"),
        ({"name": "v", "size": "10", "dataCenterId": "EU-RO-1"}, "size"),
    ],
)
async def test_bad_create_is_400(
    client: httpx.AsyncClient, server: Server, body: dict, field: str
) -> None:
    r = await client.post("/v1/networkvolumes", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert (await client.get("/v1/networkvolumes")).json() == []
    root = server.settings.resolved_volume_root
    assert not root.exists() or not any(root.rglob("*"))
