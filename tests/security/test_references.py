"""Containers get only what the server computes, and every id is checked against the caller:
platform environment names are refused, pods name only their owner's volumes and registry
credentials, public templates lend neither credentials nor environment, and credentials go
only to the registry they were first used with."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import refused, snapshot

PLATFORM_NAMES = ["RUNPLANE_VOLUME_PATH", "RUNPLANE_VOLUME_MOUNT_PATH", "RUNPLANE_ANYTHING",
                  "RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_AI_API_KEY",
                  "RUNPOD_ENDPOINT_ID", "RUNPOD_POD_ID", "CUDA_VISIBLE_DEVICES", "runplane_volume_path"]


def _routes(bob: httpx.Client) -> list[tuple[str, str, dict]]:
    tmpl = bob.post("/v1/templates", json={"name": "env-base", "imageName": "ubuntu:22.04",
                                           "isServerless": True})
    tid = tmpl.json()["id"] if tmpl.status_code == 200 else \
        next(t["id"] for t in bob.get("/v1/templates").json() if t["name"] == "env-base")
    return [
        ("POST", "/v1/templates", {"name": "e", "imageName": "ubuntu:22.04"}),
        ("PATCH", f"/v1/templates/{tid}", {}),
        ("POST", "/v1/endpoints", {"templateId": tid, "name": "e"}),
        ("POST", "/v1/pods", {"name": "e", "imageName": "ubuntu:22.04", "computeType": "CPU",
                              "vcpuCount": 1}),
    ]


@pytest.mark.parametrize("name", PLATFORM_NAMES)
def test_platform_environment_is_refused_everywhere(name: str, bob: httpx.Client) -> None:
    for method, path, body in _routes(bob):
        before = snapshot(bob)
        r = bob.request(method, path, json={**body, "env": {name: "/"}})
        refused(r, 400, "env", f"{name} is set by the platform")
        assert snapshot(bob) == before, (method, path)


@pytest.fixture(scope="module")
def alices(alice: httpx.Client, live: LiveServer) -> dict[str, str]:
    """alice's volume (with a file in it), her registry credentials (used with one registry)
    and her public template that uses both."""
    vol = alice.post("/v1/networkvolumes", json={"name": "private", "size": 1,
                                                 "dataCenterId": "LOCAL-1"}).json()
    auth = alice.post("/v1/containerregistryauth", json={
        "name": "mine", "username": "alice", "password": "alice-pw"}).json()
    t = alice.post("/v1/templates", json={
        "name": "shared", "imageName": "registry.alice.example/app:1", "isPublic": True,
        "containerRegistryAuthId": auth["id"], "env": {"HF_TOKEN": "alice-token"}})
    assert t.status_code == 200, t.text
    volume_dir = next((live.data_dir / "volumes").glob(f"*/{vol['id']}"), None)
    if volume_dir is None:
        volume_dir = live.data_dir / "volumes" / "LOCAL-1" / vol["id"]
        volume_dir.mkdir(parents=True, exist_ok=True)
    (volume_dir / "data.txt").write_text("alice's data")
    return {"volume": vol["id"], "auth": auth["id"], "template": t.json()["id"],
            "volume_dir": str(volume_dir)}


POD = {"name": "thief", "imageName": "ubuntu:22.04", "computeType": "CPU", "vcpuCount": 1,
       "dockerStartCmd": ["sleep", "1"]}
REFERENCE_CASES = [
    ("another user's network volume", lambda a: {**POD, "networkVolumeId": a["volume"]},
     "networkVolumeId"),
    ("another user's registry auth", lambda a: {**POD, "containerRegistryAuthId": a["auth"]},
     "containerRegistryAuthId"),
    ("an unknown network volume", lambda a: {**POD, "networkVolumeId": "nosuchvol1"},
     "networkVolumeId"),
    ("an unknown registry auth", lambda a: {**POD, "containerRegistryAuthId": "nosuchauth"},
     "containerRegistryAuthId"),
    ("a relative mount path", lambda a: {**POD, "volumeMountPath": "workspace"},
     "volumeMountPath"),
    ("a mount path with a colon", lambda a: {**POD, "volumeMountPath": "/w:/host"},
     "volumeMountPath"),
    ("a name holding NUL", lambda a: {**POD, "name": "a\u0000b"}, "name"),
]


@pytest.mark.parametrize(("case", "make", "field"), REFERENCE_CASES,
                         ids=[c[0] for c in REFERENCE_CASES])
def test_pods_name_only_their_owners_ids(case: str, make: object, field: str,
                                         bob: httpx.Client, alice: httpx.Client,
                                         alices: dict[str, str], live: LiveServer) -> None:
    before, theirs = snapshot(bob), snapshot(alice)
    r = bob.post("/v1/pods", json=make(alices))  # type: ignore[operator]
    refused(r, 400, field)
    assert snapshot(bob) == before and snapshot(alice) == theirs
    assert (Path(alices["volume_dir"]) / "data.txt").read_text() == "alice's data"
    assert live_credentials(live, alices["auth"]) == ("alice", "alice-pw")


def test_a_public_template_lends_neither_credentials_nor_environment(
        bob: httpx.Client, alices: dict[str, str], live: LiveServer) -> None:
    seen = bob.get(f"/v1/templates/{alices['template']}?includePublicTemplates=true").json()
    assert seen["containerRegistryAuthId"] == "" and seen["env"] == {"HF_TOKEN": ""}
    listed = [t for t in bob.get("/v1/templates?includePublicTemplates=true").json()
              if t["id"] == alices["template"]]
    assert listed == [seen]
    assert "alice-token" not in bob.get("/v1/templates?includePublicTemplates=true").text
    # A pod from it gets its image, not alice's credentials or env (and it may point the image
    # at bob's own registry without taking alice's password there).
    r = bob.post("/v1/pods", json={"templateId": alices["template"], "computeType": "CPU",
                                   "vcpuCount": 1, "imageName": "registry.bob.example/x:1"})
    if r.status_code == 201:
        pod = r.json()
        assert not pod.get("containerRegistryAuthId") and "HF_TOKEN" not in (pod.get("env") or {})
        bob.delete(f"/v1/pods/{pod['id']}")
    else:  # no engine to start it here: refused for that, never for using alice's auth
        assert "containerRegistryAuthId" not in r.text, r.text
    assert live_credentials(live, alices["auth"]) == ("alice", "alice-pw")


def test_credentials_go_only_to_the_registry_they_were_first_used_with(
        alice: httpx.Client, alices: dict[str, str]) -> None:
    before = snapshot(alice)
    r = alice.post("/v1/templates", json={"name": "elsewhere", "imageName": "evil.example/x:1",
                                          "containerRegistryAuthId": alices["auth"]})
    refused(r, 400, "containerRegistryAuthId", "for the registry registry.alice.example")
    assert snapshot(alice) == before
    ok = alice.post("/v1/templates", json={"name": "same-registry",
                                           "imageName": "registry.alice.example/other:2",
                                           "containerRegistryAuthId": alices["auth"]})
    assert ok.status_code == 200, ok.text


def live_credentials(live: LiveServer, auth_id: str) -> tuple[str, str] | None:
    """The stored credentials, read from the server's store (what a pull would send)."""
    from sqlalchemy import select

    from runplane.store.db import make_engine
    from runplane.store.tables import registry_auths

    engine = make_engine(f"sqlite:///{live.data_dir / 'runplane.db'}")
    try:
        with engine.connect() as conn:
            row = conn.execute(select(registry_auths.c.username, registry_auths.c.password)
                               .where(registry_auths.c.id == auth_id)).first()
    finally:
        engine.dispose()
    return (row.username, row.password) if row else None
