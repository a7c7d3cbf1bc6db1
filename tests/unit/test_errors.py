"""Validation errors name the field and the reason."""

from __future__ import annotations

import pytest

from runplane.api.errors import describe_validation_error, error_body


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
