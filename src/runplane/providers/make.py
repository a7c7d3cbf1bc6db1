"""The provider the settings name: this host (``local``), or the nodes of a Ray cluster."""

from __future__ import annotations

from runplane.catalog.catalog import Catalog
from runplane.config import Settings
from runplane.providers.base import Provider
from runplane.providers.local import LocalProvider


def make_provider(settings: Settings, catalog: Catalog) -> Provider:
    """``settings.provider``'s provider, configured from its settings group."""
    if settings.provider == "ray":
        return _ray_provider(settings, catalog)
    return LocalProvider(settings.machine, settings.data_dir, catalog,
                         container=settings.container,
                         worker_user=settings.security.worker_user,
                         server_url=settings.resolved_public_url)


def _ray_provider(settings: Settings, catalog: Catalog) -> Provider:
    """The Ray provider (docs/ray.md), imported only when chosen: ray is an optional extra."""
    try:
        from runplane.providers.ray.provider import RayProvider
    except ImportError as err:
        raise RuntimeError("provider = \"ray\" needs Ray: pip install 'runplane[ray]' "
                           f"({err})") from err
    return RayProvider(settings.machine, settings.data_dir, catalog,
                       address=settings.ray.address, namespace=settings.ray.namespace,
                       worker_user=settings.security.worker_user)
