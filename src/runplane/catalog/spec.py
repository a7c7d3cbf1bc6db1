"""Access to RunPod's OpenAPI description shipped with the package."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "runpod-openapi-v1.json"
SPEC_V2_PATH = SPEC_PATH.with_name("runpod-openapi-v2.json")


@cache
def runpod_spec() -> dict[str, Any]:
    """RunPod's REST v1 OpenAPI document (read once)."""
    return json.loads(SPEC_PATH.read_text())


@cache
def runpod_spec_v2() -> dict[str, Any]:
    """RunPod's REST v2 OpenAPI 3.1 document (read once)."""
    return json.loads(SPEC_V2_PATH.read_text())


def schema(name: str) -> dict[str, Any]:
    return runpod_spec()["components"]["schemas"][name]


def enum_of(schema_name: str, prop: str) -> list[str]:
    """The enum of a property (or of its array items) in one of the spec's schemas."""
    node = schema(schema_name)["properties"][prop]
    node = node.get("items", node)
    return list(node["enum"])
