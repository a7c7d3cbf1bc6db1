"""RunPod's GraphQL spellings of values REST v1 writes otherwise, both ways.

Comma strings for lists (``gpuIds``, ``locations``, ``ports``, endpoint
``allowedCudaVersions``), ``[{key, value}]`` for environments, one shell-quoted string for a
start command (REST's ``dockerStartCmd`` argv), ``KEY=value`` strings for a pod's env.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runplane.api.http.errors import describe_validation_error
from runplane.errors import Invalid

M = TypeVar("M", bound=BaseModel)


def same(value: Any) -> Any:
    """A value GraphQL's types already checked, kept as it is."""
    return value


def commas(values: Iterable[str]) -> str:
    """``["a", "b"]`` -> ``"a,b"``."""
    return ",".join(values)


def split(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (empty parts dropped)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def env_in(pairs: list[Mapping[str, str]], field: str = "env") -> dict[str, str]:
    """``[{key, value}]`` -> ``{key: value}``; a key given twice is refused."""
    out: dict[str, str] = {}
    for i, pair in enumerate(pairs):
        key = pair["key"]
        if key in out:
            raise Invalid(f"{field}[{i}]: {key!r} is listed twice", f"{field}[{i}]")
        out[key] = pair["value"]
    return out


def env_out(env: Mapping[str, str]) -> list[dict[str, str]]:
    """``{key: value}`` -> ``[{key, value}]``."""
    return [{"key": k, "value": v} for k, v in env.items()]


def argv_in(command: str, field: str = "dockerArgs") -> list[str]:
    """A start command as one string -> argv, split the way a POSIX shell would."""
    try:
        return shlex.split(command)
    except ValueError as err:  # unbalanced quotes
        raise Invalid(f"{field}: {err}", field) from None


def argv_out(argv: Iterable[str]) -> str:
    """argv -> one string that ``argv_in`` splits back into the same argv."""
    return shlex.join(argv)


def validated(model: type[M], data: dict[str, Any], renames: Mapping[str, str] | None = None,
              ) -> M:
    """``model`` built from ``data``; a validation error becomes ``Invalid`` naming the field
    the way the GraphQL caller spelled it (``renames``: REST name -> GraphQL name)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        message, field = describe_validation_error(dict(errors[0]))
        for rest_name, gql_name in (renames or {}).items():
            if field and (field == rest_name or field.startswith((rest_name + "[", rest_name + "."))):
                renamed = gql_name + field[len(rest_name):]
                if message.startswith(field):
                    message = renamed + message[len(field):]
                field = renamed
                break
        raise Invalid(message, field) from None


def given(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The entries of ``values`` among ``names`` (GraphQL leaves absent input fields out)."""
    return {k: values[k] for k in names if k in values}


def convert(values: Mapping[str, Any], table: Mapping[str, tuple[str, Callable[[Any], Any]]]
            ) -> dict[str, Any]:
    """Rename and convert the given input fields: ``table`` maps a GraphQL field to the REST
    field and a converter; fields not in ``table`` are left out."""
    out: dict[str, Any] = {}
    for name, (rest_name, fn) in table.items():
        if name in values:
            out[rest_name] = fn(values[name])
    return out
