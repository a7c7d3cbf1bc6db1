"""Building blocks shared by the request models.

Request models are strict (no "2" for 2, no "true" for true) and forbid unknown fields, so a
typo such as ``workerMax`` is a 400 naming the field instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# Every integer a client sends is bounded: JSON allows arbitrarily large numbers, SQLite and
# orjson do not (64 bits), and no setting means anything near 2**31.
MAX_INT = 2**31 - 1


class InputModel(BaseModel):
    """Base of every request body: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def given(self) -> dict[str, Any]:
        """The fields the client actually sent (PATCH semantics)."""
        return self.model_dump(exclude_unset=True)


def split_commas(value: Any) -> Any:
    """RunPod's examples write some arrays as "a,b,c"; accept that spelling on input."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def no_duplicates(values: list[str]) -> list[str]:
    """Refuse a list naming something twice (v1's ``NameList``, REST v2's name lists)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


# A list of names given as a JSON array or a comma-separated string; no repeats.
NameList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    BeforeValidator(split_commas),
    AfterValidator(no_duplicates),
    Field(max_length=200),
]

# fullmatch, not ``$``: ``$`` also matches before a final newline ("A\n" would pass).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Variables the platform sets in workers and pods (the worker protocol's, PROTOCOL.md 5, and
# every RUNPLANE_*: mounts, credentials, runplane's own switches): a user's env may not name
# them, or a worker could be pointed at another endpoint or a host path mounted.
# tests/unit/test_guards.py checks that every name runplane sets is refused.
PLATFORM_ENV_NAMES = frozenset({
    "RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_WEBHOOK_POST_STREAM",
    "RUNPOD_WEBHOOK_PING", "RUNPOD_POD_ID", "RUNPOD_POD_HOSTNAME", "RUNPOD_AI_API_KEY",
    "RUNPOD_ENDPOINT_ID", "RUNPOD_PING_INTERVAL", "RUNPOD_GPU_COUNT", "RUNPOD_SKIP_GPU_CHECK",
    "RUNPOD_API_KEY", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
})
PLATFORM_ENV_PREFIXES = ("RUNPLANE_", "RUNPOD_WEBHOOK_")
# RUNPLANE_* switches a user may set for their own workers: the accelerator's off switch
# (docs/workers.md) changes nothing but how their own worker waits.
USER_SETTABLE_RUNPLANE = frozenset({"RUNPLANE_ACCELERATOR"})


def is_platform_env(name: str) -> bool:
    """Whether ``name`` is set by the platform, never by a user's env."""
    upper = name.upper()
    if upper in USER_SETTABLE_RUNPLANE:
        return False
    return upper in PLATFORM_ENV_NAMES or upper.startswith(PLATFORM_ENV_PREFIXES)


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if is_platform_env(key):
            raise ValueError(f"{key} is set by the platform and cannot be set in env")
        if "\0" in value:
            raise ValueError(f"{key}: the value may not contain NUL")
    return env


Env = Annotated[
    dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=32_768)]],
    AfterValidator(_check_env),
    Field(max_length=500),
]

def _printable(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("may not contain control characters (NUL, newlines...)")
    return text


# Free text a user names something with.
NAME_MAX = 191
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(_printable)]


def _check_image(image: str) -> str:
    # The container engine reads an argument that starts with '-' as one of its options.
    if image.startswith("-"):
        raise ValueError("may not start with '-'")
    return _printable(image)


# What a template or pod runs: a container image reference or a ``local:`` directory.
ImageName = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_check_image)]
