"""GET /v1/endpoints/{id}/whatif: the endpoint's recent jobs through the simulator."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import insert

from runplane.store.tables import jobs
from tests.conftest import client_for, create_endpoint, make_server


async def test_whatif_replays_the_endpoints_jobs_and_suggests_settings(tmp_path: Path) -> None:
    srv = make_server(tmp_path / "data")
    async with client_for(srv, srv.user_key) as alice, client_for(srv, srv.other_key) as bob:
        ep = await create_endpoint(alice, computeType="CPU", workersMax=3, idleTimeout=60)
        r = await alice.get(f"/v1/endpoints/{ep['id']}/whatif")
        assert r.status_code == 200, r.text
        assert r.json()["jobs"] == 0 and r.json()["current"] is None
        now = time.time()
        with srv.services.engine.begin() as conn:
            conn.execute(insert(jobs), [
                {"id": f"j{i}", "endpoint_id": ep["id"], "user_id": ep["userId"],
                 "status": "COMPLETED", "payload": {}, "created_at": now - 3000 + 20 * i,
                 "expires_at": now + 3600, "execution_ms": 2000} for i in range(100)])
        r = await alice.get(f"/v1/endpoints/{ep['id']}/whatif?target=15")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["jobs"] == 100 and body["current"]["jobs"] == 100
        assert body["coldStartMeasured"] is False  # no worker ran here: the default, said so
        # A job every 20 s with idleTimeout 60 keeps a worker up; the suggestion is cheaper.
        assert body["suggested"]["costUsd"] < body["current"]["costUsd"]
        assert body["suggested"]["delayP95S"] <= 15
        assert set(body["suggestedSettings"]) >= {"scalerType", "idleTimeout", "workersMin"}
        r = await bob.get(f"/v1/endpoints/{ep['id']}/whatif")
        assert r.status_code == 404
        r = await alice.get(f"/v1/endpoints/{ep['id']}/whatif?window=5")
        assert r.status_code == 400
    srv.services.broker.close()
    srv.services.engine.dispose()
