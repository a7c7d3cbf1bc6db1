"""Network volumes: ``NetworkVolumeCreateInput``, ``NetworkVolumeUpdateInput``, ``NetworkVolume``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from runplane.schemas.common import InputModel, Name

VolumeSizeGb = Annotated[int, Field(ge=0, le=4000)]


class NetworkVolumeCreate(InputModel):
    """POST /v1/networkvolumes."""

    name: Name
    size: VolumeSizeGb
    dataCenterId: Annotated[str, Field(min_length=1, max_length=200)]


class NetworkVolumeUpdate(InputModel):
    """PATCH /v1/networkvolumes/{id}: rename and/or grow (never shrink)."""

    name: Name = None  # type: ignore[assignment]
    size: VolumeSizeGb = None  # type: ignore[assignment]


class NetworkVolume(BaseModel):
    """A network volume as stored; ``wire()`` is the spec's NetworkVolume."""

    model_config = ConfigDict(frozen=True)

    id: str
    userId: str
    name: str
    size: int
    dataCenterId: str
    createdAt: float

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "dataCenterId": self.dataCenterId}
