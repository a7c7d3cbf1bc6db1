"""Names and values that reach a container engine's command line, on a real server (issue
23, finding 9): an env name or a port with a final newline (Python's ``$`` matches before
one), and an ``imageName`` starting with '-' (the engine reads it as one of its options).
Each surface refuses them in its own shape (v1 400, REST v2 422 problem+json, GraphQL
``errors``) and nothing changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import snapshot

@pytest.fixture(scope="module")
def server(generous_server: LiveServer) -> LiveServer:
    return generous_server


@pytest.fixture(scope="module")
def c(generous: httpx.Client) -> httpx.Client:
    return generous


@pytest.fixture(scope="module")
def template(c: httpx.Client) -> str:
    r = c.post("/v1/templates", json={"name": "base", "imageName": "ubuntu:22.04"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def v1(c: httpx.Client, method: str, path: str, body: dict[str, Any], field: str) -> None:
    r = c.request(method, path, json=body)
    assert r.status_code == 400, (path, r.text)
    assert r.json()["field"].startswith(field), r.text


def v2(c: httpx.Client, method: str, path: str, body: dict[str, Any], field: str) -> None:
    r = c.request(method, path, json=body)
    assert r.status_code == 422, (path, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e.startswith(field) for e in r.json()["errors"]), r.text


def graphql(c: httpx.Client, query: str, variables: dict[str, Any]) -> None:
    r = c.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    assert r.json().get("errors") and not (r.json().get("data") or {}).get("saveTemplate"), r.text


SAVE = "mutation($i: SaveTemplateInput!) { saveTemplate(input: $i) { id } }"


@pytest.mark.parametrize("name", ["A\n", "PATH\n", "A\r"])
def test_env_name_with_a_final_newline(c: httpx.Client, template: str, name: str) -> None:
    before = snapshot(c)
    v1(c, "POST", "/v1/templates", {"name": "t", "imageName": "ubuntu:22.04", "env": {name: "x"}},
       "env")
    v1(c, "PATCH", f"/v1/templates/{template}", {"env": {name: "x"}}, "env")
    v2(c, "POST", "/v2/templates", {"name": "t", "image": "ubuntu:22.04", "env": {name: "x"}},
       "env")
    graphql(c, SAVE, {"i": {"name": "t", "imageName": "ubuntu:22.04",
                            "env": [{"key": name, "value": "x"}]}})
    assert snapshot(c) == before


@pytest.mark.parametrize("port", ["8080/http\n", "22/tcp\n"])
def test_port_with_a_final_newline(c: httpx.Client, template: str, port: str) -> None:
    before = snapshot(c)
    v1(c, "POST", "/v1/templates", {"name": "t", "imageName": "ubuntu:22.04", "ports": [port]},
       "ports")
    v1(c, "PATCH", f"/v1/templates/{template}", {"ports": [port]}, "ports")
    v2(c, "POST", "/v2/templates", {"name": "t", "image": "ubuntu:22.04", "ports": [port]},
       "ports")
    v2(c, "PATCH", f"/v2/templates/{template}", {"ports": [port]}, "ports")
    assert snapshot(c) == before


@pytest.mark.parametrize("image", ["-v", "--privileged", "--volume=/:/host", "ubuntu\n"])
def test_image_name_the_engine_would_read_as_an_option(c: httpx.Client, template: str,
                                                       image: str) -> None:
    before = snapshot(c)
    v1(c, "POST", "/v1/templates", {"name": "t", "imageName": image}, "imageName")
    v1(c, "PATCH", f"/v1/templates/{template}", {"imageName": image}, "imageName")
    v1(c, "POST", "/v1/pods", {"name": "p", "imageName": image, "computeType": "CPU"},
       "imageName")
    v2(c, "POST", "/v2/templates", {"name": "t", "image": image}, "image")
    v2(c, "PATCH", f"/v2/templates/{template}", {"image": image}, "image")
    v2(c, "POST", "/v2/serverless", {"name": "e", "image": image, "gpu": {"pools": ["ADA_24"]}},
       "image")
    v2(c, "POST", "/v2/pods", {"name": "p", "image": image,
                               "cpu": {"id": "cpu3c", "vcpuCount": 2}}, "image")
    graphql(c, SAVE, {"i": {"name": "t", "imageName": image}})
    assert snapshot(c) == before
