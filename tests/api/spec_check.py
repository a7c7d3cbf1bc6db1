"""Validate answers against RunPod's OpenAPI 3.0 schemas with jsonschema.

OpenAPI 3.0 is not JSON Schema: ``nullable: true`` becomes a ``"null"`` type, ``$ref``s to
``#/components/schemas/X`` are resolved against the spec document, and ``example`` is
ignored. The spec never closes its objects; ``closed=True`` does (``additionalProperties:
false``) so a misspelt field in an answer fails instead of passing silently; fields
runplane answers on top of the spec are listed in ``EXTRAS``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from runplane.catalog.spec import runpod_spec

# Fields runplane adds to a spec object (documented in docs/control-plane.md).
EXTRAS: dict[str, dict[str, Any]] = {
    "Endpoint": {
        "flashboot": {"type": "boolean"},
        "vcpuCount": {"type": "integer"},
        "cpuFlavorIds": {"type": "array", "items": {"type": "string"}},
        # Why the endpoint's jobs wait (no machine fits, crash-loop breaker open), when they do.
        "reason": {"type": "string"},
    },
}


def _convert(node: Any, closed: bool) -> Any:
    if isinstance(node, list):
        return [_convert(n, closed) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v, closed) for k, v in node.items() if k not in ("example", "nullable")}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if closed and node.get("type") == "object" and "properties" in node:
        out.setdefault("additionalProperties", False)
    return out


@cache
def _document(closed: bool) -> dict[str, Any]:
    spec = copy.deepcopy(runpod_spec())
    schemas = spec["components"]["schemas"]
    for name, extra in EXTRAS.items():
        schemas[name]["properties"].update(extra)
    # The Pod objects of includeWorkers come from the controller; keep them open here.
    converted = _convert(spec, closed)
    converted["components"]["schemas"]["Pod"] = _convert(schemas["Pod"], False)
    return converted


def validate(instance: Any, schema_name: str, closed: bool = True) -> None:
    """Raise jsonschema.ValidationError unless ``instance`` fits components/schemas/<name>."""
    document = _document(closed)
    registry = Registry().with_resource("urn:runpod", Resource(document, DRAFT7))
    schema = {"$ref": f"urn:runpod#/components/schemas/{schema_name}"}
    jsonschema.Draft7Validator(
        schema, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    ).validate(instance)


def response_schema(path: str, method: str) -> str | None:
    """The component name of a route's 200 answer in the spec (None when it has no body)."""
    op = runpod_spec()["paths"][path][method]
    content = op["responses"].get("200", {}).get("content", {}).get("application/json")
    if not content:
        return None
    return content["schema"]["$ref"].rsplit("/", 1)[-1]


def sample_body(schema_name: str, ids: dict[str, str]) -> dict[str, Any]:
    """A request body with every property of an input schema, from the spec's own examples,
    defaults or first enum value; reference fields take real ids from ``ids``."""
    props = runpod_spec()["components"]["schemas"][schema_name]["properties"]
    body: dict[str, Any] = {}
    for name, prop in props.items():
        if name in ids:
            body[name] = ids[name]
        elif "example" in prop and not (prop.get("type") == "array" and isinstance(prop["example"], str)):
            body[name] = prop["example"]
        elif "default" in prop:
            body[name] = prop["default"]
        elif prop.get("type") == "array" and "enum" in prop.get("items", {}):
            body[name] = [prop["items"]["enum"][0]]
        elif "enum" in prop:
            body[name] = prop["enum"][0]
        else:
            body[name] = {"string": "x", "integer": 1, "boolean": True, "array": [],
                          "object": {}}[prop["type"]]
    return body
