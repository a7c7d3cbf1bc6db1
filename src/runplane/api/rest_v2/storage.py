"""/v2/network-volumes and /v2/registries: the same volumes and registry credentials as
/v1/networkvolumes and /v1/containerregistryauth.

runplane has one storage class: volumes are STANDARD, and HIGH_PERFORMANCE is refused
(400) rather than silently given the standard tier.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, created, no_content, ok, services
from runplane.errors import Invalid
from runplane.schemas.registry import RegistryAuthCreate
from runplane.schemas.rest_v2 import NetworkVolumeCreateV2, NetworkVolumeUpdateV2, RegistryCreateV2
from runplane.schemas.volumes import NetworkVolume, NetworkVolumeCreate, NetworkVolumeUpdate

volumes = APIRouter(prefix="/v2/network-volumes", tags=["network-volumes"], route_class=V2Route)
registries = APIRouter(prefix="/v2/registries", tags=["registries"], route_class=V2Route)


def volume_view(v: NetworkVolume) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "size": v.size, "dataCenter": v.dataCenterId,
            "type": "STANDARD"}


@volumes.get("")
async def list_volumes(request: Request, user: User) -> Response:
    found = services(request).volumes.list_for(user)
    return ok({"networkVolumes": [volume_view(v) for v in found]})


@volumes.post("")
async def create_volume(request: Request, body: NetworkVolumeCreateV2, user: User) -> Response:
    if body.type != "STANDARD":
        raise Invalid("type: this server has one storage class, STANDARD", "type")
    made = services(request).volumes.create(user, NetworkVolumeCreate.model_validate(
        {"name": body.name, "size": body.size, "dataCenterId": body.dataCenter}))
    return created(volume_view(made))


@volumes.get("/{id}")
async def get_volume(request: Request, id: str, user: User) -> Response:
    return ok(volume_view(services(request).volumes.get_for(user, id)))


@volumes.patch("/{id}")
async def update_volume(request: Request, id: str, body: NetworkVolumeUpdateV2,
                        user: User) -> Response:
    changes = NetworkVolumeUpdate.model_validate(body.model_dump(exclude_unset=True))
    return ok(volume_view(services(request).volumes.update(user, id, changes)))


@volumes.delete("/{id}")
async def delete_volume(request: Request, id: str, user: User) -> Response:
    services(request).volumes.delete(user, id)
    return no_content()


@registries.get("")
async def list_registries(request: Request, user: User) -> Response:
    found = services(request).registry_auths.list_for(user)
    return ok({"registries": [{"id": a.id, "name": a.name} for a in found]})


@registries.post("")
async def create_registry(request: Request, body: RegistryCreateV2, user: User) -> Response:
    made = services(request).registry_auths.create(
        user, RegistryAuthCreate.model_validate(body.model_dump()))
    return created({"id": made.id, "name": made.name})


@registries.get("/{id}")
async def get_registry(request: Request, id: str, user: User) -> Response:
    found = services(request).registry_auths.get_for(user, id)
    return ok({"id": found.id, "name": found.name})


@registries.delete("/{id}")
async def delete_registry(request: Request, id: str, user: User) -> Response:
    services(request).registry_auths.delete(user, id)
    return no_content()
