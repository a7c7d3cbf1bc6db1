"""Templates: ``TemplateCreateInput``, ``TemplateUpdateInput`` and the ``Template`` answer."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from runplane.schemas.common import Env, ImageName, InputModel, Name, split_commas

# fullmatch, not ``$`` (which also matches before a final newline: "80/http\n" would pass).
_PORT = re.compile(r"([0-9]{1,5})/(http|tcp)")


def check_ports(ports: list[str]) -> list[str]:
    """``<1-65535>/http|tcp`` each, no port twice (templates and pods, v1 and REST v2)."""
    seen: set[str] = set()
    for port in ports:
        match = _PORT.fullmatch(port)
        if not match or not 1 <= int(match.group(1)) <= 65535:
            raise ValueError(f"{port!r} is not '<1-65535>/http' or '<1-65535>/tcp'")
        if match.group(1) in seen:
            raise ValueError(f"port {match.group(1)} is listed twice")
        seen.add(match.group(1))
    return ports


def _check_mount_path(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise ValueError("must be an absolute path")
    # ':' and ',' separate a container engine's --volume fields; '..' climbs out.
    if ":" in path or "," in path or ".." in path.split("/"):
        raise ValueError("may not contain ':', ',' or '..'")
    return path


Ports = Annotated[
    list[str], BeforeValidator(split_commas), AfterValidator(check_ports), Field(max_length=64)
]
MountPath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_check_mount_path)]
# A command's words; REST v2's ``args`` string is split into these (``MAX_ARGV`` at most).
MAX_ARGV = 256
Argv = Annotated[list[Annotated[str, Field(max_length=32_768)]], Field(max_length=MAX_ARGV)]
# Container disk: the spec gives no range; 1 GB to 4 TB, the network volume's bounds.
ContainerDisk = Annotated[int, Field(ge=1, le=4000)]
VolumeSize = Annotated[int, Field(ge=0, le=4000)]
Readme = Annotated[str, Field(max_length=100_000)]

DEFAULT_PORTS = ["8888/http", "22/tcp"]


class TemplateCreate(InputModel):
    """POST /v1/templates (spec: TemplateCreateInput)."""

    name: Name
    imageName: ImageName
    category: Literal["NVIDIA", "AMD", "CPU"] = "NVIDIA"
    containerDiskInGb: ContainerDisk = 50
    containerRegistryAuthId: str | None = None
    dockerEntrypoint: Argv = Field(default_factory=list)
    dockerStartCmd: Argv = Field(default_factory=list)
    env: Env = Field(default_factory=dict)
    isPublic: bool = False
    isServerless: bool = False
    ports: Ports = Field(default_factory=lambda: list(DEFAULT_PORTS))
    readme: Readme = ""
    volumeInGb: VolumeSize = 20
    volumeMountPath: MountPath = "/workspace"


class TemplateUpdate(InputModel):
    """PATCH /v1/templates/{id} (spec: TemplateUpdateInput); only the fields sent change.

    The ``None`` defaults are never validated, so "not sent" is told apart from an explicit
    null, which is refused by the field's type; only ``containerRegistryAuthId`` may be null
    (or "") to stop using registry credentials.
    """

    # Create-only settings: refused on an update (400), not ignored like unknown fields.
    FIXED_AT_CREATE: ClassVar[frozenset[str]] = frozenset({"isServerless", "category"})

    name: Name = None  # type: ignore[assignment]
    imageName: ImageName = None  # type: ignore[assignment]
    containerDiskInGb: ContainerDisk = None  # type: ignore[assignment]
    containerRegistryAuthId: str | None = None
    dockerEntrypoint: Argv = None  # type: ignore[assignment]
    dockerStartCmd: Argv = None  # type: ignore[assignment]
    env: Env = None  # type: ignore[assignment]
    isPublic: bool = None  # type: ignore[assignment]
    ports: Ports = None  # type: ignore[assignment]
    readme: Readme = None  # type: ignore[assignment]
    volumeInGb: VolumeSize = None  # type: ignore[assignment]
    volumeMountPath: MountPath = None  # type: ignore[assignment]


class Template(BaseModel):
    """A template as answered (spec: Template), plus ``userId`` for admins and the store."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    imageName: str
    category: str = "NVIDIA"
    containerDiskInGb: int = 50
    containerRegistryAuthId: str = ""
    dockerEntrypoint: list[str] = Field(default_factory=list)
    dockerStartCmd: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    isPublic: bool = False
    isRunpod: bool = False
    isServerless: bool = False
    ports: list[str] = Field(default_factory=list)
    readme: str = ""
    volumeInGb: int = 20
    volumeMountPath: str = "/workspace"
    earned: float = 0
    runtimeInMin: int = 0
    userId: str = ""

    def wire(self) -> dict[str, Any]:
        """The JSON body (spec field names); ``userId`` is internal and left out."""
        body = self.model_dump()
        del body["userId"]
        return body
