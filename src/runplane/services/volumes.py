"""Network volumes: a directory per volume under the operator's volume root.

Layout: ``<volume_root>/<dataCenterId>/<volumeId>`` (the root is local on one box, a shared
filesystem such as NFS across a cluster). ``size`` is what is billed and what workers are
told; runplane does not enforce it as a quota (that is the filesystem's job). Deleting a
volume deletes its directory and data, as on RunPod. Billing: an open usage record per
size, closed on resize and on delete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select, update

from runplane.catalog.catalog import Catalog
from runplane.clock import Clock
from runplane.errors import Conflict, Invalid, NotFound
from runplane.ids import new_template_id
from runplane.schemas.volumes import NetworkVolume, NetworkVolumeCreate, NetworkVolumeUpdate
from runplane.services.access import can_see, owned_by
from runplane.services.billing.records import BillingService
from runplane.services.users import Principal
from runplane.store.tables import endpoint_volumes, network_volumes

# RunPod bills storage per GB-month; a month is 730 hours (8760 / 12).
HOURS_PER_MONTH = 730.0


def volume_dir(root: Path, data_center_id: str, volume_id: str) -> Path:
    """The one place that says where a volume lives: ``<root>/<dataCenterId>/<id>``."""
    return root / data_center_id / volume_id


class NetworkVolumeService:
    """CRUD for network volumes, their directories and their storage billing."""

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        clock: Clock,
        root: Path,
        billing: BillingService,
        usd_per_gb_month: float,
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._clock = clock
        self._root = root
        self._billing = billing
        self._usd_per_gb_month = usd_per_gb_month

    def path_of(self, volume: NetworkVolume) -> Path:
        """Where a volume's data lives on the server's filesystem."""
        return volume_dir(self._root, volume.dataCenterId, volume.id)

    def get(self, volume_id: str) -> NetworkVolume | None:
        """Internal lookup, no ownership check."""
        with self._engine.connect() as conn:
            row = conn.execute(select(network_volumes).where(network_volumes.c.id == volume_id)).first()
        return _from_row(row) if row else None

    def get_for(self, principal: Principal, volume_id: str) -> NetworkVolume:
        """The caller's volume; 404 for missing and others' alike."""
        volume = self.get(volume_id)
        if volume is None or not can_see(principal, volume.userId):
            raise NotFound("network volume", volume_id)
        return volume

    def list_for(self, principal: Principal) -> list[NetworkVolume]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(network_volumes).where(owned_by(principal, network_volumes))
                .order_by(network_volumes.c.created_at, network_volumes.c.id)
            ).all()
        return [_from_row(r) for r in rows]

    def create(self, principal: Principal, body: NetworkVolumeCreate) -> NetworkVolume:
        """Create the directory and the row; billing starts now."""
        if body.dataCenterId not in self._catalog.data_centers:
            raise Invalid(f"dataCenterId: unknown data center {body.dataCenterId!r}", "dataCenterId")
        now = self._clock.now()
        volume = NetworkVolume(
            id=new_template_id(), userId=principal.user_id, name=body.name, size=body.size,
            dataCenterId=body.dataCenterId, createdAt=now,
        )
        path = self.path_of(volume)
        path.mkdir(parents=True, exist_ok=False)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(network_volumes).values(
                    id=volume.id, user_id=volume.userId, name=volume.name,
                    data_center_id=volume.dataCenterId, size=volume.size, created_at=now,
                ))
                self._open_billing(volume, now, conn)
        except Exception:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return volume

    def update(self, principal: Principal, volume_id: str, body: NetworkVolumeUpdate) -> NetworkVolume:
        """Rename and/or grow; a smaller size is refused (data could not fit)."""
        current = self.get_for(principal, volume_id)
        changes = body.given()
        if "size" in changes and changes["size"] < current.size:
            raise Invalid(
                f"size: a network volume can only grow; it is {current.size} GB now", "size"
            )
        updated = current.model_copy(update=changes)
        if updated == current:
            return current
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(update(network_volumes).where(network_volumes.c.id == volume_id)
                         .values(name=updated.name, size=updated.size))
            if updated.size != current.size:
                # Bill the old size up to now, the new size from now.
                self._billing.close_open("networkvolume", volume_id, now, conn)
                self._open_billing(updated, now, conn)
        return updated

    def delete(self, principal: Principal, volume_id: str) -> None:
        """Delete row, billing and data; refused (409) while an endpoint mounts it."""
        volume = self.get_for(principal, volume_id)
        with self._engine.begin() as conn:
            users_of = conn.execute(
                select(func.count()).select_from(endpoint_volumes)
                .where(endpoint_volumes.c.network_volume_id == volume_id)
            ).scalar_one()
            if users_of:
                raise Conflict(
                    f"network volume {volume_id} is attached to {users_of} endpoint(s); "
                    "detach it first"
                )
            conn.execute(delete(network_volumes).where(network_volumes.c.id == volume_id))
            self._billing.close_open("networkvolume", volume_id, self._clock.now(), conn)
        shutil.rmtree(self.path_of(volume), ignore_errors=True)

    def _open_billing(self, volume: NetworkVolume, start: float, conn) -> None:  # type: ignore[no-untyped-def]
        self._billing.record_usage(
            user_id=volume.userId, kind="networkvolume", resource_id=volume.id,
            start_at=start, usd_per_hr=volume.size * self._usd_per_gb_month / HOURS_PER_MONTH,
            data_center_id=volume.dataCenterId, disk_gb=volume.size, conn=conn,
        )


def _from_row(row) -> NetworkVolume:  # type: ignore[no-untyped-def]
    return NetworkVolume(
        id=row.id, userId=row.user_id, name=row.name, size=row.size,
        dataCenterId=row.data_center_id, createdAt=row.created_at,
    )
