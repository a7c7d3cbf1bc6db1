"""REST v2's endpoint bodies are validated once, by their v2 models, and the services' typed
inputs are constructed from them without a second validation. These tests keep the two
models in step: whatever a valid v2 body becomes is exactly what v1's models would accept,
and what v1's models would refuse the v2 models refuse first, under v2's names."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runplane.api.rest_v2.serverless_wire import (
    container_settings,
    create_settings,
    update_changes,
    v2_name,
)
from runplane.catalog.catalog import build_catalog
from runplane.catalog.pools import GpuPools
from runplane.schemas.endpoints import Endpoint, EndpointCreate, EndpointUpdate
from runplane.schemas.rest_v2 import EndpointCreateV2, EndpointUpdateV2
from runplane.schemas.templates import TemplateCreate, TemplateUpdate

POOLS = GpuPools(build_catalog())
QUEUE = {"type": "QUEUE_DELAY", "queueDelay": 100_000}
GPU = {"pools": ["ADA_24", "AMPERE_48"], "excludedTypes": ["NVIDIA A40"], "count": 16,
       "allowedCudaVersions": ["12.4", "12.8"]}
# Valid bodies at the edges of every range the v1 models also bound.
CREATES: list[dict[str, Any]] = [
    {"name": "e", "type": "QUEUE", "scaling": QUEUE, "templateId": "t1", "gpu": {"pools": ["ADA_24"]}},
    {"name": "n" * 191, "type": "QUEUE", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.5},
     "image": "i" * 1024, "args": " ".join(["a"] * 256), "disk": 4000,
     "ports": ["8000/http", "22/tcp"], "registry": "r1", "env": {"A": "1"}, "gpu": GPU,
     "workers": {"min": 1000, "max": 1000, "idleTimeout": 3600},
     "dataCenterIds": ["US-TX-3", "EU-RO-1"], "networkVolumes": ["v1", "v2"],
     "flashboot": "PRIORITY_FLASHBOOT", "timeout": 7 * 24 * 3600 * 1000},
    {"name": "c", "type": "LOAD_BALANCER", "image": "i", "args": "",
     "scaling": {"type": "REQUEST_COUNT", "requestCount": 100_000},
     "cpu": [{"id": "cpu3c", "vcpuCount": 256}, {"id": "cpu5c", "vcpuCount": 256}],
     "timeout": 5_000, "registry": None},
    {"name": "m", "type": "QUEUE", "scaling": QUEUE, "image": "i",
     "gpu": {"pools": ["ADA_24"], "minCudaVersion": "12.1", "allowedCudaVersions": []}},
]
UPDATES: list[dict[str, Any]] = [
    {}, {"name": "x"}, {"templateId": "t2", "disk": 1, "ports": []},
    {"gpu": {"pools": ["ADA_24"], "minCudaVersion": ""}, "workers": {"max": 0}},
    {"scaling": QUEUE, "dataCenterIds": [], "networkVolumes": [], "timeout": 5_000,
     "flashboot": "OFF", "env": {}},
]
CURRENT = Endpoint(id="e1", userId="u", name="e", templateId="t1", version=0, createdAt="")


def _revalidated(model: Any) -> Any:
    """What v1's model of the same class makes of ``model``'s fields."""
    return type(model).model_validate(model.model_dump(exclude_unset=True))


@pytest.mark.parametrize("body", CREATES)
def test_a_valid_v2_create_is_a_valid_v1_create(body: dict[str, Any]) -> None:
    v2 = EndpointCreateV2.model_validate(body)
    settings = create_settings(v2, POOLS)
    as_v1 = EndpointCreate.model_validate(
        {**settings.model_dump(exclude_unset=True), "templateId": "t1"})
    assert as_v1.model_dump(exclude={"templateId"}) == settings.model_dump(exclude={"templateId"})
    container = container_settings(v2)
    assert _revalidated(container) == container
    made = TemplateCreate.model_validate({"imageName": "i", **container.given(),
                                          "name": "n" * 191})
    assert made.model_dump(include=set(container.given())) == container.given()


@pytest.mark.parametrize("body", UPDATES)
def test_a_valid_v2_update_is_a_valid_v1_update(body: dict[str, Any]) -> None:
    v2 = EndpointUpdateV2.model_validate(body)
    changes = update_changes(v2, CURRENT, POOLS)
    assert isinstance(changes, EndpointUpdate) and _revalidated(changes) == changes
    assert changes.given() == _revalidated(changes).given()
    container = container_settings(v2)
    assert isinstance(container, TemplateUpdate) and _revalidated(container) == container


BASE = {"name": "e", "type": "QUEUE", "scaling": QUEUE, "image": "i", "gpu": {"pools": ["ADA_24"]}}


@pytest.mark.parametrize(("change", "field"), [
    ({"ports": ["80/udp"]}, "ports"),
    ({"ports": ["80/http", "80/tcp"]}, "ports"),
    ({"dataCenterIds": ["US-TX-3", "US-TX-3"]}, "dataCenterIds"),
    ({"networkVolumes": ["v1", "v1"]}, "networkVolumes"),
    ({"gpu": {"pools": ["ADA_24"], "allowedCudaVersions": ["12.4", "12.4"]}},
     "gpu.allowedCudaVersions"),
    ({"gpu": {"pools": ["ADA_24"], "allowedCudaVersions": ["1" * 201 + ".0"]}},
     "gpu.allowedCudaVersions.0"),
])
def test_what_v1_would_refuse_v2_refuses_first_under_its_names(change: dict[str, Any],
                                                              field: str) -> None:
    """These passed v2's models and failed v1's afterwards: an internal error (500)."""
    for model, body in ((EndpointCreateV2, {**BASE, **change}), (EndpointUpdateV2, change)):
        with pytest.raises(ValidationError) as err:
            model.model_validate(body)
        assert [".".join(map(str, e["loc"])) for e in err.value.errors()] == [field]


@pytest.mark.parametrize(("v1", "v2"), [
    ("networkVolumeIds[1]", "networkVolumes[1]"), ("networkVolumeId", "networkVolumes"),
    ("cpuFlavorIds[1]", "cpu[1].id"), ("cpuFlavorIds", "cpu"), ("vcpuCount", "cpu[0].vcpuCount"),
    ("gpuTypeIds[3]", "gpu.pools"), ("allowedCudaVersions[0]", "gpu.allowedCudaVersions[0]"),
    ("minCudaVersion", "gpu.minCudaVersion"), ("workersMin", "workers.min"),
    ("scalerType", "scaling.type"), ("executionTimeoutMs", "timeout"),
    ("imageName", "image"), ("containerRegistryAuthId", "registry"),
    ("dataCenterIds[0]", "dataCenterIds[0]"), ("templateId", "templateId"), ("gpu", "gpu"),
])
def test_service_fields_in_v2_names(v1: str, v2: str) -> None:
    assert v2_name(v1) == v2
