"""Helpers for the observability tests: a server on a ManualClock and a lean worker that
speaks the worker protocol as the runpod SDK does (raw credential, ``$ID`` URLs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from runplane.clock import ManualClock
from runplane.config import load_settings
from runplane.server import build_services, create_app
from tests.conftest import Server

# Divisible by 300: buckets of every width start here.
T0 = 1_700_000_100.0


def clocked_server(data_dir: Path, clock: ManualClock, **overrides: Any) -> Server:
    """Like tests.conftest.make_server, with ``clock`` injected into every service."""
    settings = load_settings(data_dir=data_dir, job_take_hold_s=0.05, **overrides)
    services = build_services(settings, clock)
    admin = services.users.bootstrap_admin()
    assert admin is not None
    alice = services.users.create_user("alice")
    bob = services.users.create_user("bob")
    return Server(settings, services, create_app(services), admin.secret,
                  services.users.create_key(alice).secret, services.users.create_key(bob).secret)


class LeanWorker:
    """A manual worker registered through ``POST /v2/{endpoint}/workers``."""

    def __init__(self, app: Any, endpoint_id: str, body: dict[str, Any]) -> None:
        self.id = body["id"]
        self.endpoint_id = endpoint_id
        self.env = body["env"]
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://runplane.test",
                                      headers={"Authorization": body["token"]})

    @classmethod
    async def register(cls, app: Any, user: httpx.AsyncClient, endpoint_id: str) -> LeanWorker:
        r = await user.post(f"/v2/{endpoint_id}/workers", json={})
        assert r.status_code == 201, r.text
        return cls(app, endpoint_id, r.json())

    def _url(self, var: str, job_id: str = "") -> str:
        url = self.env[var].split("/v2/", 1)[1]
        return "/v2/" + url.replace("$RUNPOD_POD_ID", self.id).replace("$ID", job_id or self.id)

    async def take(self) -> dict[str, Any] | None:
        r = await self.http.get(self._url("RUNPOD_WEBHOOK_GET_JOB") + "&job_in_progress=0")
        assert r.status_code in (200, 204), r.text
        return r.json() if r.status_code == 200 else None

    async def done(self, job_id: str, body: dict[str, Any]) -> None:
        r = await self.http.post(self._url("RUNPOD_WEBHOOK_POST_OUTPUT", job_id) + "&isStream=false",
                                 content=orjson.dumps(body))
        assert r.status_code == 200, r.text

    async def chunk(self, job_id: str, output: Any) -> None:
        r = await self.http.post(self._url("RUNPOD_WEBHOOK_POST_STREAM", job_id) + "&isStream=true",
                                 content=orjson.dumps({"output": output}))
        assert r.status_code == 200, r.text

    async def aclose(self) -> None:
        await self.http.aclose()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))
