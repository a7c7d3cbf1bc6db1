"""/v2/<resource> is REST v2's control plane, /v2/<endpointId>/... the job API: no endpoint id
can be a resource name, and each path reaches its app."""

from __future__ import annotations

import re

import pytest

from runplane.api.rest_v2 import RESOURCES
from runplane.api.v2 import ROUTES
from runplane.catalog.spec import runpod_spec_v2
from runplane.ids import new_id

ENDPOINT_ID = re.compile(r"^[a-z0-9]{14}$")


def test_resources_are_the_specs_first_segments() -> None:
    firsts = {p.split("/")[2] for p in runpod_spec_v2()["paths"]}
    assert firsts == RESOURCES


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_no_endpoint_id_can_be_a_resource_name(name: str) -> None:
    assert ENDPOINT_ID.match(new_id()) and not ENDPOINT_ID.match(name)


def test_endpoint_ids_have_the_shape_the_rule_relies_on() -> None:
    assert all(ENDPOINT_ID.match(new_id()) for _ in range(1000))


def test_job_operations_are_not_resources() -> None:
    assert not {op for _, op in ROUTES} & RESOURCES
