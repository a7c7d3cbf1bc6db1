"""REST v2 request bodies (RunPod's ``runpod-openapi-v2.json``: ``Create*Request`` and
``Update*Request``).

The spec closes every request object (``additionalProperties`` / ``unevaluatedProperties``
false), so unknown fields are refused here, as in v1's strict models; the API answers them
with a 422 naming the field. Ranges are the spec's; catalog names (GPU pools and types, data
centers, CPU flavors) are checked by the services against the server's catalog. Response
bodies are built from the services' models by ``runplane.api.rest_v2``.

A body is validated once, here, under its v2 names: these models also hold what v1's models
would refuse in the fields they become (ports as ``<port>/http|tcp``, no name listed twice,
CUDA versions v1's length), so the typed v1 inputs ``api.rest_v2.serverless_wire`` builds
from a valid body are valid as they are and are not validated again
(``tests/unit/test_rest_v2_inputs.py`` keeps the two in step).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from runplane.schemas.common import Env, ImageName, InputModel, Name, no_duplicates
from runplane.schemas.templates import check_ports

Cuda = Annotated[str, Field(pattern=r"^\d+\.\d+$")]
Ident = Annotated[str, Field(min_length=1, max_length=200)]
Names = Annotated[list[Ident], Field(max_length=200), AfterValidator(no_duplicates)]
# An endpoint's or a pod's CUDA set (v1's allowedCudaVersions: names of 200 at most, no repeats).
CudaList = Annotated[list[Annotated[Cuda, Field(max_length=200)]], Field(max_length=64),
                     AfterValidator(no_duplicates)]
# Ports of an endpoint's inline settings, which become its template's: v1's rule.
TemplatePorts = Annotated[list[str], Field(max_length=64), AfterValidator(check_ports)]
EndpointType = Literal["QUEUE", "LOAD_BALANCER"]
FlashBoot = Literal["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"]


class ContainerFields(InputModel):
    """``ContainerConfig``: what runs, inline (or taken from ``templateId``)."""

    image: ImageName = None  # type: ignore[assignment]
    args: Annotated[str, Field(max_length=32_768)] = None  # type: ignore[assignment]
    disk: Annotated[int, Field(ge=1, le=4000)] = None  # type: ignore[assignment]
    env: Env = None  # type: ignore[assignment]
    ports: Annotated[list[str], Field(max_length=64),
                     AfterValidator(check_ports)] = None  # type: ignore[assignment]
    registry: str | None = None

    def container(self) -> dict[str, Any]:
        """The container fields the client sent (PATCH semantics)."""
        return self.model_dump(include=set(ContainerFields.model_fields), exclude_unset=True)


class EndpointGpu(InputModel):
    """``CreateEndpointGpuConfig`` / ``UpdateEndpointGpuConfig``."""

    pools: Annotated[list[Ident], Field(min_length=1, max_length=64)] = None  # type: ignore[assignment]
    excludedTypes: Annotated[list[Annotated[str, Field(pattern=r"^\s*[^-\s]")]],
                             Field(max_length=200)] = None  # type: ignore[assignment]
    count: Annotated[int, Field(ge=1, le=16)] = None  # type: ignore[assignment]
    allowedCudaVersions: CudaList = None  # type: ignore[assignment]
    minCudaVersion: Annotated[str, Field(pattern=r"^$|^\d+\.\d+$")] = None  # type: ignore[assignment]


class CpuConfig(InputModel):
    """``CreateCpuConfig``: a CPU flavor and the vCPUs of each worker (a power of two)."""

    id: Ident
    vcpuCount: Annotated[int, Field(ge=2, le=256)]


class Workers(InputModel):
    """``EndpointWorkers``."""

    min: Annotated[int, Field(ge=0, le=1000)] = None  # type: ignore[assignment]
    max: Annotated[int, Field(ge=0, le=1000)] = None  # type: ignore[assignment]
    idleTimeout: Annotated[int, Field(ge=1, le=3600)] = None  # type: ignore[assignment]


class QueueDelayScaling(InputModel):
    type: Literal["QUEUE_DELAY"]
    queueDelay: Annotated[float, Field(ge=0.5, le=100_000)]


class RequestCountScaling(InputModel):
    type: Literal["REQUEST_COUNT"]
    requestCount: Annotated[int, Field(ge=1, le=100_000)]


Scaling = Annotated[QueueDelayScaling | RequestCountScaling, Field(discriminator="type")]


class EndpointCreateV2(ContainerFields):
    """``CreateEndpointRequest``."""

    name: Name
    type: EndpointType
    scaling: Scaling
    ports: TemplatePorts = None  # type: ignore[assignment]
    templateId: Ident | None = None
    gpu: EndpointGpu | None = None
    cpu: Annotated[list[CpuConfig], Field(min_length=1, max_length=32)] | None = None
    workers: Workers | None = None
    dataCenterIds: Names | None = None
    networkVolumes: Names | None = None
    flashboot: FlashBoot = "OFF"
    timeout: Annotated[int, Field(ge=5_000, le=7 * 24 * 3600 * 1000)] = 300_000

    @model_validator(mode="after")
    def _image_or_template(self) -> EndpointCreateV2:
        if self.templateId is None and self.image is None:
            raise ValueError("image: required unless templateId is set")
        return self


class EndpointUpdateV2(ContainerFields):
    """``UpdateEndpointRequest``: only the fields sent change."""

    ports: TemplatePorts = None  # type: ignore[assignment]
    name: Name = None  # type: ignore[assignment]
    templateId: Ident = None  # type: ignore[assignment]
    gpu: EndpointGpu = None  # type: ignore[assignment]
    cpu: Annotated[list[CpuConfig], Field(min_length=1, max_length=32)] = None  # type: ignore[assignment]
    workers: Workers = None  # type: ignore[assignment]
    scaling: Scaling = None  # type: ignore[assignment]
    dataCenterIds: Names = None  # type: ignore[assignment]
    networkVolumes: Names = None  # type: ignore[assignment]
    flashboot: FlashBoot = None  # type: ignore[assignment]
    timeout: Annotated[int, Field(ge=5_000, le=7 * 24 * 3600 * 1000)] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _excluded_needs_pools(self) -> EndpointUpdateV2:
        gpu = self.gpu
        if gpu is not None and gpu.excludedTypes is not None and gpu.pools is None:
            raise ValueError("gpu.excludedTypes: needs gpu.pools (the two are one selection)")
        return self


class TemplateMounts(InputModel):
    persistent: PersistentMount = None  # type: ignore[assignment]


class PersistentMount(InputModel):
    size: Annotated[int, Field(ge=10, le=4000)]
    path: Annotated[str, Field(min_length=1, max_length=1024)]


class NetworkMount(InputModel):
    volumeId: Ident
    path: Annotated[str, Field(min_length=1, max_length=1024)]


class Mounts(TemplateMounts):
    network: Annotated[list[NetworkMount], Field(max_length=1)] = None  # type: ignore[assignment]


class TemplateCreateV2(ContainerFields):
    """``CreateTemplateRequest``."""

    name: Name
    image: ImageName
    allowedCudaVersions: Annotated[list[Cuda], Field(max_length=64)] = Field(default_factory=list)
    category: Literal["CPU", "NVIDIA", "AMD"] = "NVIDIA"
    mounts: TemplateMounts | None = None
    public: bool = False
    serverless: bool = False
    startJupyter: bool = True
    startSsh: bool = True


class TemplateUpdateV2(ContainerFields):
    """``UpdateTemplateRequest``."""

    name: Name = None  # type: ignore[assignment]
    allowedCudaVersions: Annotated[list[Cuda], Field(max_length=64)] = None  # type: ignore[assignment]
    category: Literal["CPU", "NVIDIA", "AMD"] = None  # type: ignore[assignment]
    mounts: TemplateMounts = None  # type: ignore[assignment]
    public: bool = None  # type: ignore[assignment]
    serverless: bool = None  # type: ignore[assignment]
    startJupyter: bool = None  # type: ignore[assignment]
    startSsh: bool = None  # type: ignore[assignment]


class PodGpu(InputModel):
    """``CreateGpuConfig``: one GPU type, a count, CUDA constraints."""

    id: Ident
    count: Annotated[int, Field(ge=1, le=16)] = 1
    allowedCudaVersions: CudaList = None  # type: ignore[assignment]
    minCudaVersion: Cuda = None  # type: ignore[assignment]


class PodCreateV2(ContainerFields):
    """``CreatePodRequest``."""

    name: Name
    cloud: Literal["SECURE", "COMMUNITY"] = "SECURE"
    cpu: CpuConfig | None = None
    gpu: PodGpu | None = None
    dataCenterIds: Names | None = None
    globalNetworking: bool = False
    mounts: Mounts | None = None
    startJupyter: bool = False
    startSsh: bool = False
    templateId: Ident | None = None

    @model_validator(mode="after")
    def _image_or_template(self) -> PodCreateV2:
        if self.templateId is None and self.image is None:
            raise ValueError("image: required unless templateId is set")
        return self


class PodUpdateV2(ContainerFields):
    """``UpdatePodRequest``."""

    name: Name = None  # type: ignore[assignment]
    globalNetworking: bool = None  # type: ignore[assignment]
    locked: bool = None  # type: ignore[assignment]
    mounts: Mounts = None  # type: ignore[assignment]
    templateId: Ident = None  # type: ignore[assignment]


class PodActionV2(InputModel):
    """``PodActionRequest``."""

    action: Literal["start", "stop", "restart", "terminate"]


class SshKeysV2(InputModel):
    """``UpdateSshKeysRequest``: the whole set of keys."""

    keys: Annotated[list[Annotated[str, Field(
        pattern=r"^(ssh|ecdsa|sk)-[^\s]+ [^\s]+([ \t][^\n\r]*)?$", max_length=16_384)]],
        Field(max_length=100)]


class NetworkVolumeCreateV2(InputModel):
    """``CreateNetworkVolumeRequest``."""

    name: Name
    size: Annotated[int, Field(ge=10, le=4096)]
    dataCenter: Ident
    type: Literal["STANDARD", "HIGH_PERFORMANCE"] = "STANDARD"


class NetworkVolumeUpdateV2(InputModel):
    """``UpdateNetworkVolumeRequest`` (at least one field)."""

    name: Name = None  # type: ignore[assignment]
    size: Annotated[int, Field(ge=10, le=4096)] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something(self) -> NetworkVolumeUpdateV2:
        if not self.model_fields_set:
            raise ValueError("send name or size")
        return self


class RegistryCreateV2(InputModel):
    """``CreateRegistryRequest``."""

    name: Name
    username: Annotated[str, Field(min_length=1, max_length=1024)]
    password: Annotated[str, Field(min_length=1, max_length=16_384)]


TemplateMounts.model_rebuild()
Mounts.model_rebuild()
