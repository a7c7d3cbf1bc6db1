"""The caller and the catalog: ``myself`` (its scalar fields, network volumes, registry
credentials), ``updateUserSettings``, ``gpuTypes``, and the container-registry-auth mutations."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from runplane.api.graphql import wire
from runplane.api.graphql.context import Json, context, parts
from runplane.catalog.catalog import GpuType
from runplane.catalog.machines import Machine
from runplane.catalog.offers import gpu_offer, lowest_price
from runplane.schemas.registry import RegistryAuthCreate, RegistryAuthUpdate


def myself(_: Any, info: GraphQLResolveInfo) -> Json:
    """The caller; their lists are resolved by the ``User`` fields, when selected."""
    return {"id": context(info).principal.user_id}


def pub_key(_: Json, info: GraphQLResolveInfo) -> str:
    """The caller's SSH public keys, one per line (REST v2's ``/v2/account/ssh-keys``)."""
    services, principal = parts(info)
    return "\n".join(services.ssh_keys.keys_of(principal))


def update_user_settings(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """``pubKey``: the whole set of SSH keys, one per line (the SDK's ``runpod ssh`` appends
    a key to what ``myself.pubKey`` gave it and sends the lot back)."""
    services, principal = parts(info)
    if input.get("pubKey") is not None:
        services.ssh_keys.replace(principal, [k for k in input["pubKey"].splitlines() if k.strip()])
    return {"id": principal.user_id}


def my_volumes(_: Json, info: GraphQLResolveInfo) -> list[Json]:
    services, principal = parts(info)
    return [v.wire() for v in services.volumes.list_for(principal) if v.userId == principal.user_id]


def my_registry_auths(_: Json, info: GraphQLResolveInfo) -> list[Json]:
    services, principal = parts(info)
    return [a.wire() for a in services.registry_auths.list_for(principal)
            if a.userId == principal.user_id]


# -- GPU types -------------------------------------------------------------------------------


def gpu_types(_: Any, info: GraphQLResolveInfo, input: Json | None = None) -> list[Json]:
    """The catalog's GPU types (``input.id`` / ``input.ids``: only those; an unknown id gives
    an empty list, which the SDK's ``get_gpu`` reports itself)."""
    services, _principal = parts(info)
    wanted = set((input or {}).get("ids") or [])
    if (input or {}).get("id"):
        wanted.add(input["id"])  # type: ignore[index]
    machines = services.provider.machines()
    return [_gpu_type(t, machines) for t in services.catalog.gpu_types.values()
            if not wanted or t.id in wanted]


def _gpu_type(t: GpuType, machines: list[Machine]) -> Json:
    offer = gpu_offer(t.id, machines)
    return {
        "id": t.id,
        "displayName": t.display_name,
        "manufacturer": "AMD" if t.id.startswith("AMD") else "Nvidia",
        "memoryInGb": t.memory_in_gb,
        "cudaCores": None,
        "secureCloud": offer.secure_cloud,
        "communityCloud": offer.community_cloud,
        "securePrice": offer.secure_price,
        "communityPrice": offer.community_price,
        "oneWeekPrice": None,
        "oneMonthPrice": None,
        "threeMonthPrice": None,
        "secureSpotPrice": None,
        "communitySpotPrice": None,
        "maxGpuCount": offer.max_count,
        "maxGpuCountSecureCloud": offer.max_count_secure,
        "maxGpuCountCommunityCloud": offer.max_count_community,
    }


def gpu_lowest_price(gpu: Json, info: GraphQLResolveInfo, input: Json | None = None) -> Json:
    """The lowest on-demand price per GPU-hour for ``input.gpuCount`` GPUs on one machine."""
    services, _principal = parts(info)
    want = input or {}
    price = lowest_price(gpu["id"], services.provider.machines(),
                         max(1, want.get("gpuCount") or 1),
                         want.get("secureCloud"), want.get("dataCenterId"))
    return {
        "gpuName": gpu["displayName"],
        "gpuTypeId": gpu["id"],
        "minimumBidPrice": None,
        "uninterruptablePrice": price,
        "minVcpu": None,
        "minMemory": None,
        "stockStatus": None,
    }


# -- container registry credentials ---------------------------------------------------------


def save_registry_auth(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    services, principal = parts(info)
    body = wire.validated(RegistryAuthCreate, dict(input))
    context(info).count_create()
    return services.registry_auths.create(principal, body).wire()


def update_registry_auth(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """New username and password for the caller's credentials (the name stays)."""
    services, principal = parts(info)
    body = wire.validated(RegistryAuthUpdate, wire.given(input, ("username", "password")))
    return services.registry_auths.update(principal, input["id"], body).wire()


def delete_registry_auth(_: Any, info: GraphQLResolveInfo, registryAuthId: str) -> None:
    services, principal = parts(info)
    services.registry_auths.delete(principal, registryAuthId)


RESOLVERS = {
    "Query": {"myself": myself, "gpuTypes": gpu_types},
    "Mutation": {
        "updateUserSettings": update_user_settings,
        "saveRegistryAuth": save_registry_auth,
        "updateRegistryAuth": update_registry_auth,
        "deleteRegistryAuth": delete_registry_auth,
    },
    "User": {
        "pubKey": pub_key,
        "networkVolumes": my_volumes,
        "containerRegistryCreds": my_registry_auths,
    },
    "GpuType": {"lowestPrice": gpu_lowest_price},
}
