"""Validate REST v2 answers against RunPod's OpenAPI 3.1 description (JSON Schema 2020-12).

OpenAPI 3.1 schemas are JSON Schema, so the spec's components are used as they are, with
``$ref``s resolved against the document. The spec leaves most answer objects open;
``closed=True`` closes every component (``unevaluatedProperties: false``, which sees through
``allOf``) so a misspelt field in an answer fails instead of passing; components only used as
an ``allOf`` base stay open (their users close them). Fields runplane answers on top of the
spec are listed in ``EXTRAS``. ``check(response, path, method)`` validates one answer:
its status is documented, its media type and body fit that status's schema, and the
RateLimit headers are there where the spec gives them.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from runplane.catalog.spec import runpod_spec_v2

# Fields runplane adds to a spec object (documented in docs/control-plane.md).
EXTRAS: dict[str, dict[str, Any]] = {
    # The template behind the endpoint's container settings (what v1 answers too).
    "Endpoint": {"templateId": {"type": "string"}},
}


def _allof_bases(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for item in node.get("allOf", []):
            if "$ref" in item:
                out.add(item["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            _allof_bases(value, out)
    elif isinstance(node, list):
        for value in node:
            _allof_bases(value, out)
    return out


def _close(node: Any, in_allof: bool = False) -> Any:
    if isinstance(node, list):
        return [_close(n, in_allof) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "allOf":
            out[key] = [_close(v, True) for v in value]
        elif key == "properties":
            out[key] = {k: _close(v) for k, v in value.items()}
        else:
            out[key] = _close(value)
    objectish = "properties" in node or "allOf" in node
    if objectish and not in_allof and "additionalProperties" not in node \
            and "unevaluatedProperties" not in node:
        out["unevaluatedProperties"] = False
    return out


@cache
def document(closed: bool) -> dict[str, Any]:
    spec = copy.deepcopy(runpod_spec_v2())
    schemas = spec["components"]["schemas"]
    for name, extra in EXTRAS.items():
        target = schemas[name]
        part = next(p for p in target["allOf"] if "properties" in p) if "allOf" in target else target
        part["properties"].update(extra)
    if closed:
        bases = _allof_bases(schemas, set())
        for name, schema in list(schemas.items()):
            if name not in bases:
                schemas[name] = _close(schema)
    return spec


def validate_schema(instance: Any, schema: dict[str, Any], closed: bool = True) -> None:
    """Raise jsonschema.ValidationError unless ``instance`` fits ``schema`` (spec refs)."""
    registry = Registry().with_resource("urn:runpod-v2", Resource(document(closed), DRAFT202012))
    wrapped = _rebase(schema)
    jsonschema.Draft202012Validator(
        wrapped, registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(instance)


def validate(instance: Any, component: str, closed: bool = True) -> None:
    validate_schema(instance, {"$ref": f"#/components/schemas/{component}"}, closed)


def _rebase(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (f"urn:runpod-v2{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#")
                    else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(n) for n in node]
    return node


def operation(path: str, method: str) -> dict[str, Any]:
    return runpod_spec_v2()["paths"][path][method]


def response_spec(path: str, method: str, status: int) -> dict[str, Any]:
    """The documented response of a status (the ``default`` one when it is not listed),
    ``$ref``s to components/responses resolved."""
    responses = operation(path, method)["responses"]
    found = responses.get(str(status), responses.get("default"))
    assert found is not None, f"{method.upper()} {path}: {status} is not documented"
    if "$ref" in found:
        found = runpod_spec_v2()["components"]["responses"][found["$ref"].rsplit("/", 1)[-1]]
    return found


def check(r: httpx.Response, path: str, method: str, closed: bool = True) -> Any:
    """Validate one answer of ``method path`` (a spec path such as /v2/serverless/{id});
    returns its JSON body (None for none or an event stream)."""
    spec = response_spec(path, method, r.status_code)
    content = spec.get("content", {})
    headers = {k.lower() for k in spec.get("headers", {})}
    if r.status_code >= 400 and r.status_code != 401 or r.status_code < 300:
        # Authenticated answers carry the quota headers wherever the spec lists them.
        for name in ("ratelimit", "ratelimit-policy"):
            if name in headers:
                assert name in r.headers, f"{method.upper()} {path} {r.status_code}: no {name}"
    if r.status_code == 429:
        assert int(r.headers["retry-after"]) >= 1
    if not content:
        assert r.content == b"", f"{method.upper()} {path} {r.status_code}: body {r.text!r}"
        return None
    media = r.headers["content-type"].split(";")[0]
    assert media in content, f"{method.upper()} {path} {r.status_code}: {media} not in {list(content)}"
    if media == "text/event-stream":
        return None
    body = r.json()
    validate_schema(body, content[media]["schema"], closed)
    return body
