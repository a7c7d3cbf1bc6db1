"""The owners of the ids a pod names, for ``PodService`` (``services.pods.PodReferences``)."""

from __future__ import annotations

from runplane.services.host_access import LocalImagePolicy
from runplane.services.registry_auths import RegistryAuthService
from runplane.services.users import Principal
from runplane.services.volumes import NetworkVolumeService


class References:
    """Answers ``PodReferences`` from the volume and registry-auth services and the
    host-access policy."""

    def __init__(self, volumes: NetworkVolumeService, registry_auths: RegistryAuthService,
                 host_access: LocalImagePolicy) -> None:
        self._volumes = volumes
        self._registry_auths = registry_auths
        self._host_access = host_access

    def check_image(self, principal: Principal, image: str | None) -> None:
        self._host_access.check(principal, image)

    def volume_owner(self, volume_id: str) -> str | None:
        volume = self._volumes.get(volume_id)
        return volume.userId if volume else None

    def auth_owner(self, auth_id: str) -> str | None:
        auth = self._registry_auths.get(auth_id)
        return auth.userId if auth else None

    def bind_auth(self, auth_id: str, image: str) -> None:
        self._registry_auths.bind(auth_id, image)
