"""Pods: ``PodCreateInput`` and ``PodUpdateInput`` (RunPod REST v1)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from runplane.schemas.common import Env, ImageName, InputModel, Name, NameList
from runplane.schemas.templates import MountPath

Argv = Annotated[list[Annotated[str, Field(max_length=32_768)]], Field(max_length=256)]
SmallInt = Annotated[int, Field(ge=0, le=100_000)]


class PodCreate(InputModel):
    """POST /v1/pods. Either ``templateId`` or ``imageName`` says what to run."""

    name: Name = "my pod"
    templateId: str | None = None
    imageName: ImageName | None = None
    dockerEntrypoint: Argv = Field(default_factory=list)
    dockerStartCmd: Argv = Field(default_factory=list)
    env: Env = Field(default_factory=dict)
    computeType: Literal["GPU", "CPU"] = "GPU"
    gpuTypeIds: NameList | None = None
    gpuCount: Annotated[int, Field(ge=1, le=16)] = 1
    gpuTypePriority: str = "availability"
    allowedCudaVersions: NameList = Field(default_factory=list)
    cpuFlavorIds: NameList | None = None
    cpuFlavorPriority: str = "availability"
    vcpuCount: Annotated[int, Field(ge=1, le=256)] = 2
    dataCenterIds: NameList | None = None
    dataCenterPriority: str = "availability"
    countryCodes: NameList | None = None
    networkVolumeId: str | None = None
    volumeMountPath: MountPath = "/workspace"
    volumeInGb: SmallInt = 20
    containerDiskInGb: SmallInt = 50
    containerRegistryAuthId: str | None = None
    ports: NameList | None = None
    cloudType: Literal["SECURE", "COMMUNITY"] = "SECURE"
    interruptible: bool = False
    locked: bool = False
    globalNetworking: bool = False
    supportPublicIp: bool | None = None
    minRAMPerGPU: SmallInt = 8
    minVCPUPerGPU: SmallInt = 2
    minDiskBandwidthMBps: float | None = None
    minDownloadMbps: float | None = None
    minUploadMbps: float | None = None


class PodUpdate(InputModel):
    """PATCH /v1/pods/{id} (and POST .../update): a running pod restarts with the change."""

    name: Name = None  # type: ignore[assignment]
    imageName: ImageName = None  # type: ignore[assignment]
    dockerEntrypoint: Argv = None  # type: ignore[assignment]
    dockerStartCmd: Argv = None  # type: ignore[assignment]
    env: Env = None  # type: ignore[assignment]
    ports: NameList = None  # type: ignore[assignment]
    volumeMountPath: MountPath = None  # type: ignore[assignment]
    volumeInGb: SmallInt = None  # type: ignore[assignment]
    containerDiskInGb: SmallInt = None  # type: ignore[assignment]
    containerRegistryAuthId: str = None  # type: ignore[assignment]
    locked: bool = None  # type: ignore[assignment]
    globalNetworking: bool = None  # type: ignore[assignment]
