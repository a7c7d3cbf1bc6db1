"""Fixtures shared by every test layer.

``server`` builds a real app over a fresh SQLite store in a temporary data dir; API tests talk
to it in-process through httpx's ASGI transport. End-to-end tests start ``runplane serve`` as a
real process instead (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runplane.clock import Clock
from runplane.config import Settings, load_settings
from runplane.server import Services, build_services, create_app


@dataclass
class Server:
    settings: Settings
    services: Services
    app: object
    admin_key: str
    user_key: str  # a second, non-admin user ("alice")
    other_key: str  # a third, non-admin user ("bob")


# The suite's servers (in-process, and every `runplane serve` a test starts, which inherits
# this environment) let every user run local: images as the server's own user: the tests'
# workers are directories under pytest's private tmp. tests/security runs the defaults.
TEST_SECURITY = {"local_image_users": ["*"], "worker_user": "",
                 "webhook_allow_cidrs": ["127.0.0.0/8"]}
os.environ.setdefault("RUNPLANE_SECURITY", json.dumps(TEST_SECURITY))


def make_server(data_dir: Path, clock: Clock | None = None, **overrides: object) -> Server:
    settings = load_settings(data_dir=data_dir, **overrides)
    services = build_services(settings, clock)
    admin = services.users.bootstrap_admin()
    if admin is None:  # restarted on an existing store: make fresh keys
        admin = services.users.create_key(services.users.find_user("admin")["id"])
    alice = services.users.find_user("alice") or {"id": services.users.create_user("alice")}
    bob = services.users.find_user("bob") or {"id": services.users.create_user("bob")}
    return Server(
        settings=settings,
        services=services,
        app=create_app(services),
        admin_key=admin.secret,
        user_key=services.users.create_key(alice["id"]).secret,
        other_key=services.users.create_key(bob["id"]).secret,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[Server]:
    srv = make_server(data_dir)
    yield srv
    srv.services.engine.dispose()


def client_for(srv: Server, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=srv.app), base_url="http://runplane.test", headers=headers
    )


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """alice's client (a plain user)."""
    async with client_for(server, server.user_key) as c:
        yield c


@pytest.fixture
async def bob(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server, server.other_key) as c:
        yield c


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server, server.admin_key) as c:
        yield c


@pytest.fixture
async def anon(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server, None) as c:
        yield c


# -- control plane helpers (append-only) ---------------------------------------------------

_template_seq = iter(range(1, 1_000_000))


async def create_endpoint(client: httpx.AsyncClient, **overrides: object) -> dict:
    """Create a serverless template and an endpoint on it as ``client``'s user; return the
    endpoint JSON (spec shape).

    ``overrides`` are endpoint fields (``workersMax=1``, ``gpuTypeIds=[...]``...); the
    special key ``template`` is a dict of template fields (``{"env": {...}}``).
    """
    template_body: dict[str, object] = {
        "name": f"test-template-{next(_template_seq)}",
        "imageName": "runplane/local:.",
        "isServerless": True,
    }
    template_body.update(overrides.pop("template", None) or {})  # type: ignore[arg-type]
    r = await client.post("/v1/templates", json=template_body)
    assert r.status_code == 200, r.text
    body: dict[str, object] = {"templateId": r.json()["id"], "name": "test-endpoint"}
    body.update(overrides)
    r = await client.post("/v1/endpoints", json=body)
    assert r.status_code == 200, r.text
    return r.json()
