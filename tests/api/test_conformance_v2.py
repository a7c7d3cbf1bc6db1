"""Every REST v2 operation of the spec answers what the spec says: each success and each
error is validated against the copied spec (closed: no unknown fields), with its media type
(problem+json for errors) and the RateLimit headers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runplane.catalog.spec import runpod_spec_v2
from tests.api.spec_check_v2 import check
from tests.conftest import Server, client_for, make_server

METHODS = ("get", "post", "put", "patch", "delete")
ALL_OPERATIONS = {(p, m) for p, ops in runpod_spec_v2()["paths"].items() for m in ops if m in METHODS}
APP = "import time\nprint('v2 pod up', flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def server(data_dir: Path) -> Iterator[Server]:
    # Many calls from one user: quotas high enough for the test (the 429 test sets its own).
    srv = make_server(data_dir, limits={"rest_v2_per_minute": 100_000,
                                        "creates_per_minute": 100_000})
    yield srv
    srv.services.engine.dispose()


@pytest.fixture
async def app_dir(tmp_path: Path, server: Server) -> AsyncIterator[Path]:
    d = tmp_path / "app"
    d.mkdir()
    (d / "app.py").write_text(APP)
    yield d
    await server.services.controller.shutdown()


class Caller:
    """Calls /v2 routes, validates each answer against the spec, records what it covered."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen: set[tuple[str, str]] = set()
        self.statuses: dict[tuple[str, str], set[int]] = {}

    async def __call__(self, method: str, spec_path: str, url: str, status: int,
                       **kw: Any) -> Any:
        r = await self.client.request(method.upper(), url, **kw)
        assert r.status_code == status, f"{method.upper()} {url}: {r.status_code} {r.text}"
        self.seen.add((spec_path, method))
        self.statuses.setdefault((spec_path, method), set()).add(status)
        if status >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
        return check(r, spec_path, method)


async def test_every_operation_answers_the_spec(server: Server, app_dir: Path) -> None:
    async with client_for(server, server.user_key) as c:
        call = Caller(c)
        # Account.
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0 alice@laptop"
        assert (await call("put", "/v2/account/ssh-keys", "/v2/account/ssh-keys", 200,
                           json={"keys": [key, key]}))["keys"] == [key]
        assert (await call("get", "/v2/account/ssh-keys", "/v2/account/ssh-keys", 200))["keys"] == [key]
        # Registries.
        reg = await call("post", "/v2/registries", "/v2/registries", 201,
                         json={"name": "hub", "username": "u", "password": "p"})
        await call("get", "/v2/registries", "/v2/registries", 200)
        await call("get", "/v2/registries/{id}", f"/v2/registries/{reg['id']}", 200)
        # Templates.
        tpl = await call("post", "/v2/templates", "/v2/templates", 201, json={
            "name": "t1", "image": "runplane/local:.", "args": "python handler.py",
            "disk": 20, "env": {"A": "1"}, "ports": ["8000/http"], "registry": reg["id"],
            "serverless": True, "mounts": {"persistent": {"size": 20, "path": "/workspace"}},
            "category": "NVIDIA", "public": False, "startSsh": False, "startJupyter": False,
            "allowedCudaVersions": ["12.4"]})
        assert tpl["args"] == "python handler.py" and tpl["registry"] == reg["id"]
        await call("get", "/v2/templates", "/v2/templates", 200)
        await call("get", "/v2/templates/{id}", f"/v2/templates/{tpl['id']}", 200)
        patched = await call("patch", "/v2/templates/{id}", f"/v2/templates/{tpl['id']}", 200,
                             json={"name": "t2", "disk": 30})
        assert patched["name"] == "t2" and patched["disk"] == 30
        await call("get", "/v2/catalog/templates", "/v2/catalog/templates", 200,
                   params={"source": "community"})
        # Network volumes.
        vol = await call("post", "/v2/network-volumes", "/v2/network-volumes", 201,
                         json={"name": "v", "size": 10, "dataCenter": "US-TX-3", "type": "STANDARD"})
        await call("get", "/v2/network-volumes", "/v2/network-volumes", 200)
        await call("get", "/v2/network-volumes/{id}", f"/v2/network-volumes/{vol['id']}", 200)
        assert (await call("patch", "/v2/network-volumes/{id}", f"/v2/network-volumes/{vol['id']}",
                           200, json={"size": 20}))["size"] == 20
        # Serverless: one on the template, one inline on CPUs.
        ep = await call("post", "/v2/serverless", "/v2/serverless", 201, json={
            "name": "gpu-ep", "type": "QUEUE", "templateId": tpl["id"],
            "gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L4"], "count": 1,
                    "allowedCudaVersions": ["12.4"]},
            "workers": {"min": 0, "max": 2, "idleTimeout": 30},
            "scaling": {"type": "REQUEST_COUNT", "requestCount": 3},
            "dataCenterIds": ["US-TX-3"], "networkVolumes": [vol["id"]], "flashboot": "FLASHBOOT",
            "timeout": 60_000})
        assert ep["gpu"]["pools"] == ["ADA_24"] and ep["gpu"]["excludedTypes"] == ["NVIDIA L4"]
        assert ep["requestUrls"]["runSync"].endswith(f"/v2/{ep['id']}/runsync")
        cpu_ep = await call("post", "/v2/serverless", "/v2/serverless", 201, json={
            "name": "cpu-ep", "type": "QUEUE", "image": "runplane/local:.", "args": "python h.py",
            "env": {"MODE": "x"}, "cpu": [{"id": "cpu3c", "vcpuCount": 4}],
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 2}})
        assert cpu_ep["cpu"] == [{"id": "cpu3c", "vcpuCount": 4, "memory": 8}]
        lb_ep = await call("post", "/v2/serverless", "/v2/serverless", 201, json={
            "name": "lb-ep", "type": "LOAD_BALANCER", "image": "runplane/local:.",
            "args": "python app.py", "ports": ["8000/http"], "env": {"HEALTH_CHECK_PATH": "/ready"},
            "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
            "scaling": {"type": "REQUEST_COUNT", "requestCount": 4}})
        assert lb_ep["type"] == "LOAD_BALANCER"
        assert lb_ep["requestUrls"]["base"].endswith(f"/lb/{lb_ep['id']}")
        assert lb_ep["requestUrls"]["health"] == lb_ep["requestUrls"]["base"] + "/ready"
        await call("get", "/v2/serverless", "/v2/serverless", 200)
        await call("get", "/v2/serverless/{id}", f"/v2/serverless/{ep['id']}", 200)
        changed = await call("patch", "/v2/serverless/{id}", f"/v2/serverless/{ep['id']}", 200,
                             json={"workers": {"max": 4}, "env": {"B": "2"}})
        assert changed["workers"]["max"] == 4 and changed["env"] == {"A": "1", "B": "2"}
        workers = await call("get", "/v2/serverless/{id}/workers",
                             f"/v2/serverless/{ep['id']}/workers", 200)
        assert workers["endpointVersion"] == 1 and workers["summary"]["total"] == 0
        releases = await call("get", "/v2/serverless/{id}/releases",
                              f"/v2/serverless/{ep['id']}/releases", 200)
        assert [r["version"] for r in releases["releases"]] == [1, 0]
        assert {d["field"] for d in releases["releases"][0]["diff"]} == {"workersMax", "env"}
        # A manual worker that has come and gone: its logs are what runplane recorded.
        worker_id, _ = server.services.workers.register(ep["id"], manual=True)
        server.services.workers.retire(worker_id, "test over")
        await call("get", "/v2/serverless/{id}/workers/{workerId}/logs",
                   f"/v2/serverless/{ep['id']}/workers/{worker_id}/logs", 200,
                   params={"source": "system"})
        # Pods: a real process.
        pod = await call("post", "/v2/pods", "/v2/pods", 201, json={
            "name": "p", "image": f"local:{app_dir}", "args": f"{sys.executable} app.py",
            "cpu": {"id": "cpu3c", "vcpuCount": 2}, "env": {"X": "1"}})
        assert pod["status"] == "RUNNING" and "stop" in pod["actions"]
        await call("get", "/v2/pods", "/v2/pods", 200)
        await call("get", "/v2/pods/{id}", f"/v2/pods/{pod['id']}", 200)
        await call("patch", "/v2/pods/{id}", f"/v2/pods/{pod['id']}", 200, json={"name": "p2"})
        stopped = await call("post", "/v2/pods/{id}/action", f"/v2/pods/{pod['id']}/action", 200,
                             json={"action": "stop"})
        assert stopped["status"] == "EXITED"
        await call("get", "/v2/pods/{id}/logs", f"/v2/pods/{pod['id']}/logs", 200)
        await call("post", "/v2/pods/{id}/action", f"/v2/pods/{pod['id']}/action", 204,
                   json={"action": "terminate"})
        pod2 = await call("post", "/v2/pods", "/v2/pods", 201, json={
            "name": "p3", "image": f"local:{app_dir}", "args": f"{sys.executable} app.py",
            "cpu": {"id": "cpu3c", "vcpuCount": 2}})
        await call("delete", "/v2/pods/{id}", f"/v2/pods/{pod2['id']}", 204)
        # Catalog, with and without availability.
        gpus = await call("get", "/v2/catalog/gpus", "/v2/catalog/gpus", 200)
        assert any(g["pool"] == "ADA_24" for g in gpus["gpus"])
        await call("get", "/v2/catalog/gpus", "/v2/catalog/gpus", 200,
                   params={"include": "AVAILABILITY", "product": "POD,SERVERLESS", "count": 1})
        await call("get", "/v2/catalog/gpus/{id}", "/v2/catalog/gpus/NVIDIA A40", 200,
                   params={"include": "AVAILABILITY", "product": "SERVERLESS",
                           "minCudaVersion": "12.0"})
        await call("get", "/v2/catalog/cpus", "/v2/catalog/cpus", 200,
                   params={"include": "AVAILABILITY", "product": "POD"})
        await call("get", "/v2/catalog/cpus/{id}", "/v2/catalog/cpus/cpu3c", 200)
        await call("get", "/v2/catalog/datacenters", "/v2/catalog/datacenters", 200,
                   params={"include": "GPU_AVAILABILITY,CPU_AVAILABILITY"})
        await call("get", "/v2/catalog/datacenters/{id}", "/v2/catalog/datacenters/US-TX-3", 200)
        # Billing, from real usage records.
        now = server.services.clock.now()
        server.services.billing.record_usage(
            user_id=server.services.endpoints.get(ep["id"]).userId, kind="endpoint",
            resource_id=ep["id"], pod_id="w1", gpu_type_id="NVIDIA A40", start_at=now - 7200,
            usd_per_hr=0.5, end_at=now - 3600)
        total = await call("get", "/v2/billing", "/v2/billing", 200, params={"bucketSize": "hour",
                                                                              "lastN": 4})
        assert total["metadata"]["totals"]["serverlessGpuAmount"] == pytest.approx(0.5)
        sls = await call("get", "/v2/billing/serverless", "/v2/billing/serverless", 200,
                         params={"serverlessId": ep["id"]})
        assert sls["records"][0]["serverlessId"] == ep["id"]
        for path in ("/v2/billing/pods", "/v2/billing/endpoints", "/v2/billing/network-volumes",
                     "/v2/billing/clusters"):
            await call("get", path, path, 200)
        # What needs infrastructure runplane lacks: 501, said why.
        for method, path, url, kw in (
                ("get", "/v2/clusters", "/v2/clusters", {}),
                ("post", "/v2/clusters", "/v2/clusters", {"json": {}}),
                ("get", "/v2/clusters/{id}", "/v2/clusters/c1", {}),
                ("patch", "/v2/clusters/{id}", "/v2/clusters/c1", {"json": {"name": "x"}}),
                ("delete", "/v2/clusters/{id}", "/v2/clusters/c1", {}),
                ("get", "/v2/clusters/{id}/pods", "/v2/clusters/c1/pods", {}),
                ("get", "/v2/registries/delegations", "/v2/registries/delegations", {}),
                ("post", "/v2/registries/delegations", "/v2/registries/delegations",
                 {"json": {"resource": "arn:aws:ecr:x"}}),
                ("delete", "/v2/registries/delegations/{id}", "/v2/registries/delegations/d1", {})):
            await call(method, path, url, 501, **kw)
        # Deletes last.
        await call("delete", "/v2/serverless/{id}", f"/v2/serverless/{cpu_ep['id']}", 204)
        await call("delete", "/v2/serverless/{id}", f"/v2/serverless/{ep['id']}", 204)
        await call("delete", "/v2/templates/{id}", f"/v2/templates/{tpl['id']}", 204)
        await call("delete", "/v2/network-volumes/{id}", f"/v2/network-volumes/{vol['id']}", 204)
        await call("delete", "/v2/registries/{id}", f"/v2/registries/{reg['id']}", 204)
        assert call.seen == ALL_OPERATIONS, sorted(ALL_OPERATIONS - call.seen)


def _url(path: str) -> str:
    return path.replace("{id}", "missing0000000").replace("{workerId}", "nobody")


async def test_every_operation_answers_its_errors_in_the_spec(server: Server) -> None:
    """401 without a key everywhere; 404 for another user's or a missing id; 422 for a body
    that breaks the schema; 400 for one that is not JSON."""
    async with client_for(server, None) as anon, client_for(server, server.user_key) as c, \
            client_for(server, server.other_key) as bob:
        mine = (await c.post("/v2/serverless", json={
            "name": "x", "type": "QUEUE", "image": "runplane/local:.",
            "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 1}})).json()
        for path, method in sorted(ALL_OPERATIONS):
            unauth = Caller(anon)
            await unauth(method, path, _url(path), 401,
                         **({"json": {}} if method in ("post", "put", "patch") else {}))
            if "{id}" in path and "clusters" not in path and "delegations" not in path:
                other = Caller(bob)
                has_body = method in ("post", "patch") and not path.endswith("/logs")
                body = {"action": "start"} if path.endswith("/action") else \
                    {"name": "x"} if has_body else None
                await other(method, path, _url(path), 404, **({"json": body} if body else {}))
        # Another user's endpoint is as missing as a missing one.
        other = Caller(bob)
        await other("get", "/v2/serverless/{id}", f"/v2/serverless/{mine['id']}", 404)
        await other("get", "/v2/serverless/{id}/workers", f"/v2/serverless/{mine['id']}/workers", 404)
        call = Caller(c)
        for path, url in (("/v2/serverless", "/v2/serverless"), ("/v2/templates", "/v2/templates"),
                          ("/v2/network-volumes", "/v2/network-volumes"),
                          ("/v2/registries", "/v2/registries"), ("/v2/pods", "/v2/pods")):
            await call("post", path, url, 422, json={"name": "x", "bogus": 1})
            await call("post", path, url, 400, content=b"{not json",
                       headers={"content-type": "application/json"})
        await call("put", "/v2/account/ssh-keys", "/v2/account/ssh-keys", 422,
                   json={"keys": ["not a key"]})
        await call("patch", "/v2/serverless/{id}", f"/v2/serverless/{mine['id']}", 422,
                   json={"workers": {"max": -1}})
        await call("patch", "/v2/serverless/{id}", f"/v2/serverless/{mine['id']}", 400,
                   json={"gpu": {"pools": ["NOT_A_POOL"]}})
        await call("patch", "/v2/network-volumes/{id}", "/v2/network-volumes/x", 422, json={})
        await call("get", "/v2/catalog/gpus", "/v2/catalog/gpus", 400,
                   params={"include": "AVAILABILITY"})
        await call("get", "/v2/catalog/gpus/{id}", "/v2/catalog/gpus/NoSuchGPU", 404)
        await call("get", "/v2/billing", "/v2/billing", 400,
                   params={"lastN": 2, "startTime": "2026-01-01T00:00:00Z"})
        # The spec's if/then: a LOAD_BALANCER endpoint scales by REQUEST_COUNT only.
        lb = await call("post", "/v2/serverless", "/v2/serverless", 400, json={
            "name": "lb", "type": "LOAD_BALANCER", "image": "x", "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}})
        assert "REQUEST_COUNT" in lb["detail"]


async def test_rate_limits_answer_429_with_retry_after(data_dir: Path) -> None:
    srv = make_server(data_dir, limits={"rest_v2_per_minute": 3})
    try:
        async with client_for(srv, srv.user_key) as c:
            call = Caller(c)
            for left in (2, 1, 0):
                r = await c.get("/v2/serverless")
                assert r.status_code == 200
                assert r.headers["ratelimit"].startswith(f'"minute";r={left};')
                assert r.headers["ratelimit-policy"].startswith('"minute";q=3;w=60')
            refused = await call("get", "/v2/serverless", "/v2/serverless", 429)
            assert "minute" in refused["detail"]
            # The job API shares the server's limiter set but not this quota.
            assert (await c.get("/v2/nosuchendpoint/health")).status_code == 404
    finally:
        srv.services.engine.dispose()
        await asyncio.sleep(0)
