"""Serverless endpoints: ``EndpointCreateInput``, ``EndpointUpdateInput``, ``Endpoint``.

Catalog names (GPU types, data centers, CUDA versions, CPU flavors) are plain strings here
and checked against the server's catalog by the service, because operators extend it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from runplane.schemas.common import Env, InputModel, Name, NameList
from runplane.schemas.templates import Template

# Ranges: the spec's where it gives them; otherwise RunPod's documented limits (execution
# timeout 5 s to 7 days) or a generous cap so every number fits 32 bits (docs/control-plane.md).
GpuCount = Annotated[int, Field(ge=1, le=16)]
VcpuCount = Annotated[int, Field(ge=1, le=256)]
ExecutionTimeoutMs = Annotated[int, Field(ge=5_000, le=7 * 24 * 3600 * 1000)]
IdleTimeout = Annotated[int, Field(ge=1, le=3600)]
ScalerValue = Annotated[int, Field(ge=1, le=100_000)]
Workers = Annotated[int, Field(ge=0, le=1000)]
ResourceId = Annotated[str, Field(min_length=1, max_length=200)]
ComputeType = Literal["GPU", "CPU"]
# ADAPTIVE is runplane's own scaler (controller/policies/adaptive.py; scalerValue: the queue
# delay target in seconds), beside RunPod's two.
ScalerType = Literal["QUEUE_DELAY", "REQUEST_COUNT", "ADAPTIVE"]
# RunPod's two kinds of endpoint: jobs through the queue, or HTTP straight to the workers
# (docs/load-balancing.md). Fixed at create; REST v2's ``type``, GraphQL's QB/LB.
EndpointKind = Literal["QUEUE", "LOAD_BALANCER"]
QUEUE: Final = "QUEUE"
LOAD_BALANCER: Final = "LOAD_BALANCER"


class EndpointSettings(InputModel):
    """An endpoint create's settings, ``templateId`` optional: what REST v2 sends when the
    container comes inline and the template is made from it (``EndpointTemplates``)."""

    templateId: ResourceId | None = None
    name: Name | None = None
    computeType: ComputeType = "GPU"
    gpuTypeIds: NameList | None = None
    gpuCount: GpuCount = 1
    allowedCudaVersions: NameList = Field(default_factory=list)
    minCudaVersion: str | None = None
    cpuFlavorIds: NameList | None = None
    vcpuCount: VcpuCount = 2
    dataCenterIds: NameList | None = None
    # The endpoint's own environment, on top of its template's (RunPod's Endpoint carries
    # ``env``; real v1 clients send it). A change moves ``version`` like any other setting.
    env: Env = Field(default_factory=dict)
    executionTimeoutMs: ExecutionTimeoutMs = 600_000
    flashboot: bool = True
    idleTimeout: IdleTimeout = 5
    networkVolumeId: str | None = None
    networkVolumeIds: NameList | None = None
    scalerType: ScalerType = "QUEUE_DELAY"
    scalerValue: ScalerValue = 4
    workersMax: Workers = 3
    workersMin: Workers = 0


class EndpointCreate(EndpointSettings):
    """POST /v1/endpoints (spec: EndpointCreateInput)."""

    templateId: ResourceId  # first, as the spec lists it (a redeclared field keeps its place)


class EndpointUpdate(InputModel):
    """PATCH /v1/endpoints/{id} (spec: EndpointUpdateInput); only the fields sent change.

    As in TemplateUpdate, the ``None`` defaults only mark "not sent"; an explicit null is
    refused except for ``networkVolumeId`` (null or "" detaches the volumes) and
    ``minCudaVersion`` (null clears it).
    """

    # Create-only settings: sent on an update they are refused (400), not ignored as
    # fields no schema knows are (api/v1: X-Runplane-Ignored-Fields).
    FIXED_AT_CREATE: ClassVar[frozenset[str]] = frozenset({"computeType"})

    templateId: ResourceId = None  # type: ignore[assignment]
    name: Name = None  # type: ignore[assignment]
    gpuTypeIds: NameList = None  # type: ignore[assignment]
    gpuCount: GpuCount = None  # type: ignore[assignment]
    allowedCudaVersions: NameList = None  # type: ignore[assignment]
    minCudaVersion: str | None = None
    cpuFlavorIds: NameList = None  # type: ignore[assignment]
    vcpuCount: VcpuCount = None  # type: ignore[assignment]
    dataCenterIds: NameList = None  # type: ignore[assignment]
    env: Env = None  # type: ignore[assignment]
    executionTimeoutMs: ExecutionTimeoutMs = None  # type: ignore[assignment]
    flashboot: bool = None  # type: ignore[assignment]
    idleTimeout: IdleTimeout = None  # type: ignore[assignment]
    networkVolumeId: str | None = None
    networkVolumeIds: NameList = None  # type: ignore[assignment]
    scalerType: ScalerType = None  # type: ignore[assignment]
    scalerValue: ScalerValue = None  # type: ignore[assignment]
    workersMax: Workers = None  # type: ignore[assignment]
    workersMin: Workers = None  # type: ignore[assignment]


# Settings kept in the endpoints table's JSON ``spec`` column (everything but the columns).
SPEC_FIELDS = (
    "computeType", "gpuTypeIds", "gpuCount", "allowedCudaVersions", "minCudaVersion",
    "cpuFlavorIds", "vcpuCount", "instanceIds", "dataCenterIds", "env", "executionTimeoutMs",
    "flashboot", "idleTimeout", "networkVolumeIds", "scalerType", "scalerValue",
    "workersMax", "workersMin", "type",
)


class Endpoint(BaseModel):
    """An endpoint as stored and answered (spec: Endpoint), with its template loaded.

    Beyond the spec's fields it carries ``flashboot``, ``vcpuCount`` and ``cpuFlavorIds``
    (inputs RunPod accepts; answered too so clients can read back what they set).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    userId: str
    name: str
    templateId: str
    version: int
    createdAt: str
    computeType: ComputeType = "GPU"
    gpuTypeIds: list[str] = Field(default_factory=list)
    gpuCount: int = 1
    allowedCudaVersions: list[str] = Field(default_factory=list)
    minCudaVersion: str | None = None
    cpuFlavorIds: list[str] = Field(default_factory=list)
    vcpuCount: int = 2
    instanceIds: list[str] = Field(default_factory=list)
    dataCenterIds: list[str] = Field(default_factory=list)
    # Its own variables; workers get the template's with these on top (``worker_env``).
    env: dict[str, str] = Field(default_factory=dict)
    executionTimeoutMs: int = 600_000
    flashboot: bool = True
    idleTimeout: int = 5
    networkVolumeIds: list[str] = Field(default_factory=list)
    scalerType: ScalerType = "QUEUE_DELAY"
    scalerValue: int = 4
    workersMax: int = 3
    workersMin: int = 0
    type: EndpointKind = QUEUE
    template: Template | None = None

    @property
    def networkVolumeId(self) -> str:
        """The first attached volume ("" for none), the spec's single-volume field."""
        return self.networkVolumeIds[0] if self.networkVolumeIds else ""

    @property
    def load_balancer(self) -> bool:
        """Its clients call the workers' HTTP servers through runplane's proxy (no queue)."""
        return self.type == LOAD_BALANCER

    @property
    def worker_env(self) -> dict[str, str]:
        """What workers get: the template's environment with the endpoint's own on top."""
        base = dict(self.template.env) if self.template else {}
        return {**base, **self.env} if self.env else base

    def wire(
        self, include_template: bool = False, workers: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The JSON body: every spec field; ``template``/``workers`` only when asked for."""
        template = self.template
        body: dict[str, Any] = {
            "id": self.id,
            "userId": self.userId,
            "name": self.name,
            "templateId": self.templateId,
            "version": self.version,
            "createdAt": self.createdAt,
            "computeType": self.computeType,
            "gpuTypeIds": list(self.gpuTypeIds),
            "gpuCount": self.gpuCount,
            "allowedCudaVersions": list(self.allowedCudaVersions),
            "cpuFlavorIds": list(self.cpuFlavorIds),
            "vcpuCount": self.vcpuCount,
            "instanceIds": list(self.instanceIds),
            "dataCenterIds": list(self.dataCenterIds),
            "env": self.worker_env,
            "executionTimeoutMs": self.executionTimeoutMs,
            "flashboot": self.flashboot,
            "idleTimeout": self.idleTimeout,
            "networkVolumeId": self.networkVolumeId,
            "networkVolumeIds": list(self.networkVolumeIds),
            "scalerType": self.scalerType,
            "scalerValue": self.scalerValue,
            "workersMax": self.workersMax,
            "workersMin": self.workersMin,
        }
        if self.minCudaVersion:
            body["minCudaVersion"] = self.minCudaVersion
        if include_template and template is not None:
            body["template"] = template.wire()
        if workers is not None:
            body["workers"] = workers
        return body
