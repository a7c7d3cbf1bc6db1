"""Validation errors name the field and the reason; domain errors map onto one status table."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import orjson
import pytest
from fastapi import FastAPI

from runplane import errors as domain
from runplane.api import v2
from runplane.api.http.errors import (
    DOMAIN_STATUS,
    ApiError,
    describe_validation_error,
    domain_status,
    install_error_handlers,
)
from runplane.api.http.runpod_json import RUNPOD_JSON, error_body
from runplane.api.rest_v2.problems import PROBLEMS
from runplane.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized


@pytest.mark.parametrize(
    ("err", "message", "field"),
    [
        ({"type": "missing", "loc": ("body", "templateId"), "msg": "Field required"},
         "templateId: field required", "templateId"),
        ({"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra inputs"},
         "colour: unknown field", "colour"),
        ({"type": "greater_than_equal", "loc": ("body", "workersMax"),
          "msg": "Input should be greater than or equal to 0"},
         "workersMax: Input should be greater than or equal to 0", "workersMax"),
        ({"type": "literal_error", "loc": ("body", "gpuTypeIds", 1), "msg": "Input should be 'A'"},
         "gpuTypeIds[1]: Input should be 'A'", "gpuTypeIds[1]"),
        ({"type": "value_error", "loc": ("body", "env"), "msg": "Value error, bad env"},
         "env: bad env", "env"),
        ({"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error",
          "ctx": {"error": "Expecting value"}},
         "malformed JSON body: Expecting value", None),
    ],
)
def test_describe(err: dict, message: str, field: str | None) -> None:
    assert describe_validation_error(err) == (message, field)


def test_error_body_shape() -> None:
    assert error_body(404, "endpoint x not found") == {
        "error": "endpoint x not found", "message": "endpoint x not found", "status": 404,
    }
    assert error_body(400, "bad", "name")["field"] == "name"


# -- domain errors -> HTTP statuses: one table for every surface's handlers and the /v2 app ----

DOMAIN_CASES = [
    (Invalid("name: too long", "name"), 400, "name"),
    (Unauthorized("invalid or revoked API key"), 401, None),
    (Forbidden("this worker credential belongs to another worker"), 403, None),
    (NotFound("endpoint", "ep1"), 404, None),
    (Conflict("template t1 is used by 2 endpoint(s)"), 409, None),
    (DomainError("a refusal of no finer kind"), 400, None),
]


def _expected(exc: DomainError, status: int, field: str | None) -> dict:
    return error_body(status, exc.message, field)


def test_every_domain_error_has_a_status() -> None:
    # A new class in runplane.errors must be given its status here, not fall back silently.
    named = {cls for cls in vars(domain).values()
             if isinstance(cls, type) and issubclass(cls, DomainError) and cls is not DomainError}
    assert named == set(DOMAIN_STATUS)


@pytest.mark.parametrize(("exc", "status", "field"), DOMAIN_CASES)
def test_domain_status(exc: DomainError, status: int, field: str | None) -> None:
    assert domain_status(exc) == status


def test_subclass_inherits_its_parents_status() -> None:
    class Gone(NotFound):
        pass

    assert domain_status(Gone("job", "j1")) == 404


@pytest.mark.parametrize(("exc", "status", "field"), DOMAIN_CASES)
async def test_fastapi_handler(exc: DomainError, status: int, field: str | None) -> None:
    app = FastAPI()
    install_error_handlers(app, RUNPOD_JSON)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/boom")
    assert r.status_code == status
    assert r.json() == _expected(exc, status, field)


@pytest.mark.parametrize(("exc", "status", "field"), DOMAIN_CASES)
async def test_rest_v2_handler_same_table(exc: DomainError, status: int,
                                          field: str | None) -> None:
    app = FastAPI()
    install_error_handlers(app, PROBLEMS)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/boom")
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json")
    assert r.json()["status"] == status and r.json()["detail"] == exc.message


@pytest.mark.parametrize(("exc", "status", "field"), DOMAIN_CASES)
async def test_v2_app(
    monkeypatch: pytest.MonkeyPatch, exc: DomainError, status: int, field: str | None
) -> None:
    async def boom(_req: object) -> None:
        raise exc

    monkeypatch.setitem(v2.ROUTES, ("GET", "ping"), boom)
    # Only what V2App touches before dispatching: a broker it can start.
    services = SimpleNamespace(broker=SimpleNamespace(start=lambda: None))
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v2/ep1/ping", "headers": [],
             "query_string": b""}
    await v2.V2App(services, lambda _path: 1 << 20)(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == status
    assert orjson.loads(sent[1]["body"]) == _expected(exc, status, field)


async def test_api_error_keeps_its_own_status() -> None:
    app = FastAPI()
    install_error_handlers(app, RUNPOD_JSON)

    @app.get("/big")
    async def big() -> None:
        raise ApiError(413, "too large")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/big")
    assert (r.status_code, r.json()) == (413, error_body(413, "too large"))
