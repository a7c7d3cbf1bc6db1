"""Every /v1 route of the spec (except pods) answers bodies that validate against the spec's
schemas (closed: no unknown fields), and accepts every documented request shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runplane.catalog.spec import runpod_spec
from tests.api.spec_check import response_schema, sample_body, validate
from tests.conftest import Server

OWN_PREFIXES = ("/templates", "/endpoints", "/networkvolumes", "/containerregistryauth", "/billing")


async def _ok(r: httpx.Response, path: str, method: str) -> Any:
    assert r.status_code in (200, 204), f"{method} {path}: {r.status_code} {r.text}"
    name = response_schema(path, method)
    if r.status_code == 204:
        assert name is None and r.content == b""
        return None
    body = r.json()
    assert name is not None
    validate(body, name)
    return body


async def test_every_route_answers_the_spec_shape(client: httpx.AsyncClient, server: Server) -> None:
    seen: set[tuple[str, str]] = set()

    async def call(method: str, spec_path: str, url: str, **kw: Any) -> Any:
        seen.add((spec_path, method))
        return await _ok(await client.request(method.upper(), "/v1" + url, **kw), spec_path, method)

    auth = await call("post", "/containerregistryauth", "/containerregistryauth",
                      json=sample_body("ContainerRegistryAuthCreateInput", {}))
    await call("get", "/containerregistryauth", "/containerregistryauth")
    await call("get", "/containerregistryauth/{containerRegistryAuthId}",
               f"/containerregistryauth/{auth['id']}")

    tpl_body = sample_body("TemplateCreateInput", {"containerRegistryAuthId": auth["id"]})
    pod_tpl = await call("post", "/templates", "/templates", json=tpl_body)
    tpl = await call("post", "/templates", "/templates",
                     json={**tpl_body, "name": "serverless", "isServerless": True})
    await call("get", "/templates", "/templates",
               params={"includeEndpointBoundTemplates": "true", "includePublicTemplates": "true",
                       "includeRunpodTemplates": "true"})
    await call("get", "/templates/{templateId}", f"/templates/{tpl['id']}")
    update = sample_body("TemplateUpdateInput", {"containerRegistryAuthId": auth["id"]})
    await call("patch", "/templates/{templateId}", f"/templates/{tpl['id']}",
               json={**update, "name": "serverless-2"})
    await call("post", "/templates/{templateId}/update", f"/templates/{tpl['id']}/update",
               json={**update, "name": "serverless-3"})

    vol = await call("post", "/networkvolumes", "/networkvolumes",
                     json=sample_body("NetworkVolumeCreateInput", {}))
    await call("get", "/networkvolumes", "/networkvolumes")
    await call("get", "/networkvolumes/{networkVolumeId}", f"/networkvolumes/{vol['id']}")
    await call("patch", "/networkvolumes/{networkVolumeId}", f"/networkvolumes/{vol['id']}",
               json=sample_body("NetworkVolumeUpdateInput", {}) | {"size": 60})
    await call("post", "/networkvolumes/{networkVolumeId}/update",
               f"/networkvolumes/{vol['id']}/update", json={"name": "renamed", "size": 70})

    refs = {"templateId": tpl["id"], "networkVolumeId": vol["id"], "networkVolumeIds": [vol["id"]]}
    ep = await call("post", "/endpoints", "/endpoints", json=sample_body("EndpointCreateInput", refs))
    flags = {"includeTemplate": "true", "includeWorkers": "true"}
    listed = await call("get", "/endpoints", "/endpoints", params=flags)
    assert listed[0]["template"]["id"] == tpl["id"] and listed[0]["workers"] == []
    got = await call("get", "/endpoints/{endpointId}", f"/endpoints/{ep['id']}", params=flags)
    assert got["template"]["name"] == "serverless-3"
    await call("patch", "/endpoints/{endpointId}", f"/endpoints/{ep['id']}",
               json=sample_body("EndpointUpdateInput", refs) | {"workersMax": 4})
    await call("post", "/endpoints/{endpointId}/update", f"/endpoints/{ep['id']}/update",
               json={"name": "renamed"})

    server.services.billing.record_usage(
        user_id=ep["userId"], kind="endpoint", resource_id=ep["id"], pod_id="w1",
        gpu_type_id="NVIDIA A40", start_at=server.services.clock.now() - 60,
        end_at=server.services.clock.now(), usd_per_hr=0.5,
    )
    for path in ("/billing/endpoints", "/billing/pods", "/billing/networkvolumes"):
        await call("get", path, path, params={"bucketSize": "hour"})
    for grouping in ("endpointId", "podId", "gpuTypeId"):
        await call("get", "/billing/endpoints", "/billing/endpoints", params={"grouping": grouping})

    await call("delete", "/endpoints/{endpointId}", f"/endpoints/{ep['id']}")
    await call("delete", "/networkvolumes/{networkVolumeId}", f"/networkvolumes/{vol['id']}")
    await call("delete", "/templates/{templateId}", f"/templates/{tpl['id']}")
    await call("delete", "/templates/{templateId}", f"/templates/{pod_tpl['id']}")
    await call("delete", "/containerregistryauth/{containerRegistryAuthId}",
               f"/containerregistryauth/{auth['id']}")

    wanted = {
        (path, method)
        for path, ops in runpod_spec()["paths"].items() if path.startswith(OWN_PREFIXES)
        for method in ops
    }
    assert wanted - seen == set(), "routes of the spec not exercised"


@pytest.mark.parametrize("schema", ["Endpoint", "Template", "NetworkVolume", "ContainerRegistryAuth"])
def test_validator_rejects_wrong_shapes(schema: str) -> None:
    """The checker itself must fail on a wrong type and on an unknown field."""
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate({"id": 5}, schema)
    with pytest.raises(jsonschema.ValidationError):
        validate({"id": "x", "surprise": 1}, schema)


async def test_openapi_and_docs_are_served(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    for path in ("/v1/templates", "/v1/endpoints/{endpointId}", "/v1/endpoints/{endpointId}/update",
                 "/v1/networkvolumes/{networkVolumeId}", "/v1/containerregistryauth",
                 "/v1/billing/endpoints", "/v1/billing/networkvolumes"):
        assert path in doc["paths"], path
    create = doc["paths"]["/v1/endpoints"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "EndpointCreate")
    assert "200" in create["responses"]
    assert "ApiKey" in doc["components"]["securitySchemes"]
    docs = await anon.get("/v1/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    # Its files all served from here (Swagger UI's from the installed package), none from a CDN.
    assert 'src="/v1/docs/swagger-ui-bundle.js"' in docs.text and "https://" not in docs.text
    assert "script-src 'self';" in docs.headers["content-security-policy"]
    assert (await anon.get("/v1/docs/swagger-ui-bundle.js")).status_code == 200
    start = await anon.get("/v1/docs/start.js")
    assert start.status_code == 200 and "/v1/openapi.json" in start.text
