"""User input that used to answer 500 (issue 23, finding 8), on a real server: each is now a
4xx in the surface's own error shape, and the refused request changed nothing.

- JSON nested past what the server can store and hand back (orjson writes 254 levels; a
  job's payload, the OpenAI envelope and a take's list add levels of their own) on every job
  API body: /run, /runsync, batches, the OpenAI passthrough;
- an unknown /v1 field whose name no header can carry (it is named in
  ``X-Runplane-Ignored-Fields``): the template used to be created, then the answer failed;
- a REST v2 body that passes the v2 model but not the v1 model a service maps it onto.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import snapshot

MAX_DEPTH = 128  # runplane.api.v2.http.MAX_DEPTH (docs/security.md)
@pytest.fixture(scope="module")
def server(generous_server: LiveServer) -> LiveServer:
    return generous_server


@pytest.fixture(scope="module")
def c(generous: httpx.Client) -> httpx.Client:
    return generous


@pytest.fixture(scope="module")
def ep(c: httpx.Client) -> str:
    t = c.post("/v1/templates", json={"name": "deep", "imageName": "ubuntu:22.04",
                                      "isServerless": True})
    assert t.status_code == 200, t.text
    e = c.post("/v1/endpoints", json={"templateId": t.json()["id"], "name": "deep",
                                      "workersMax": 0})
    assert e.status_code == 200, e.text
    return str(e.json()["id"])


def nested(depth: int, kind: str) -> str:
    """A JSON value of ``depth`` containers, one inside the other."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _bodies(ep: str, value: str) -> list[tuple[str, str]]:
    """(path, body) for each job API body that carries a user's JSON; the value nested
    one level inside, as a client would send it."""
    job = '{"input":{"x":' + value + "}}"
    return [(f"/v2/{ep}/run", job), (f"/v2/{ep}/runsync?wait=1000", job),
            (f"/v2/{ep}/batch", '{"requests":[' + job + "]}"),
            (f"/v2/{ep}/openai/v1/chat/completions",
             '{"model":"m","messages":[{"role":"user","content":' + value + "}]}")]


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, 254, 255, 300, 1021, 5000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_json_on_every_job_route(c: httpx.Client, ep: str, depth: int, kind: str) -> None:
    """Nested 255 to 1,024 levels these were 500s (taken, then unwritable); anything past
    MAX_DEPTH is now refused up front with the job API's JSON error."""
    for path, body in _bodies(ep, nested(depth, kind)):
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert f"nested deeper than {MAX_DEPTH} levels" in r.json()["error"], r.text
    health = c.get(f"/v2/{ep}/health").json()
    assert health["jobs"]["inQueue"] == 0 and health["jobs"]["inProgress"] == 0
    assert c.get(f"/v2/{ep}/batch").json()["batches"] == []


def test_as_deep_as_allowed_is_taken_and_handed_to_a_worker(server: LiveServer, c: httpx.Client,
                                                            ep: str) -> None:
    """At the limit the job is stored and reaches a worker whole (a take wraps it in a
    list: the limit leaves room for that)."""
    value = nested(MAX_DEPTH - 3, "dict")  # the body: {"input": {"x": value}} is MAX_DEPTH deep
    r = c.post(f"/v2/{ep}/run", content='{"input":{"x":' + value + "}}")
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    reg = c.post(f"/v2/{ep}/workers", json={})
    assert reg.status_code == 201, reg.text
    w = reg.json()
    url = w["env"]["RUNPOD_WEBHOOK_GET_JOB"].replace("$ID", w["id"])
    url = url.replace("/job-take/", "/job-take-batch/") + "&batch_size=2&job_in_progress=0"
    with httpx.Client(timeout=30, headers={"Authorization": w["token"]}) as worker:
        taken = worker.get(url)
        assert taken.status_code == 200, taken.text
        jobs = taken.json()
        assert [j["id"] for j in jobs] == [job_id]
        assert jobs[0]["input"] == {"x": json.loads(value)}
    c.post(f"/v2/{ep}/cancel/{job_id}")
    c.delete(f"/v2/{ep}/workers/{w['id']}")


@pytest.mark.parametrize("name", ["💥", "a\r\nb", "tags\n", "x" * 201, ""])
@pytest.mark.parametrize("route", ["/v1/templates", "/v1/endpoints", "/v1/networkvolumes"])
def test_unknown_v1_field_no_header_can_carry(c: httpx.Client, ep: str, name: str,
                                              route: str) -> None:
    """Such a name was dropped and named in X-Runplane-Ignored-Fields: the resource was
    created, then writing the answer's header failed (500). Now a 400 before anything."""
    template = c.get(f"/v1/endpoints/{ep}").json()["templateId"]
    body = {"/v1/templates": {"name": "odd", "imageName": "ubuntu:22.04"},
            "/v1/endpoints": {"templateId": template, "name": "odd", "workersMax": 0},
            "/v1/networkvolumes": {"name": "odd", "size": 10, "dataCenterId": "LOCAL-1"},
            }[route]
    before = snapshot(c)
    r = c.post(route, json={**body, name: 1})
    assert r.status_code == 400, r.text
    assert "unknown field" in r.json()["error"] and r.json()["status"] == 400
    assert snapshot(c) == before


def test_unknown_v1_field_a_header_carries_is_still_ignored(c: httpx.Client) -> None:
    r = c.post("/v1/templates", json={"name": "fine", "imageName": "ubuntu:22.04",
                                      "volumeType": "x", "café": 1})
    assert r.status_code == 400  # "café" is latin-1, but not ASCII
    r = c.post("/v1/templates", json={"name": "fine", "imageName": "ubuntu:22.04",
                                      "volumeType": "x", "tags": ["a"]})
    assert r.status_code == 200, r.text
    assert r.headers["x-runplane-ignored-fields"] == "tags, volumeType"
    c.delete(f"/v1/templates/{r.json()['id']}")


@pytest.mark.parametrize("ports", [["x"], ["80/http\n"], ["\n"], ["99999/tcp"],
                                   ["80/http", "80/tcp"]])
def test_rest_v2_ports_the_v1_model_refuses(c: httpx.Client, ports: list[str]) -> None:
    """REST v2 bodies are mapped onto v1's template model in the service; a port v1 refuses
    passed the v2 model and raised there (500). Now a 422 problem naming the field, and
    nothing created or changed."""
    made = c.post("/v2/templates", json={"name": "v2ports", "image": "ubuntu:22.04"})
    assert made.status_code == 201, made.text
    tid = made.json()["id"]
    before = snapshot(c)
    for method, path, body in (
            ("POST", "/v2/templates", {"name": "v2p", "image": "ubuntu:22.04", "ports": ports}),
            ("PATCH", f"/v2/templates/{tid}", {"ports": ports}),
            ("POST", "/v2/serverless", {"name": "v2p", "image": "ubuntu:22.04", "ports": ports,
                                        "gpu": {"pools": ["ADA_24"]}})):
        r = c.request(method, path, json=body)
        assert r.status_code == 422, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert any(e.startswith("ports") for e in r.json()["errors"]), r.text
    assert snapshot(c) == before
    c.delete(f"/v2/templates/{tid}")


def test_no_500_in_the_server_log(server: LiveServer) -> None:
    """(Last in this module.) Nothing above reached the unhandled-error path."""
    log = Path(server.data_dir / "server.log").read_text()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
