"""What this installation offers of each GPU type: on which kind of cloud, how many on one
machine, and at what price, from the machines the providers report.

RunPod's catalog queries (GraphQL ``gpuTypes``) answer these per GPU type. On a self-hosted
installation they are facts about the operator's machines: a type no machine has is offered
nowhere (counts 0, prices null); there is no spot market and no commitment pricing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runplane.catalog.machines import Machine


@dataclass(frozen=True)
class GpuOffer:
    """One GPU type across the machines."""

    secure_cloud: bool
    community_cloud: bool
    secure_price: float | None  # lowest price per GPU-hour on a secure-cloud machine
    community_price: float | None
    max_count: int  # the most GPUs of the type on one machine
    max_count_secure: int
    max_count_community: int


def gpu_offer(gpu_type_id: str, machines: Iterable[Machine]) -> GpuOffer:
    """The offer of ``gpu_type_id`` on ``machines``."""
    secure = [(m.cost_per_gpu_hr, m.gpu_types()[gpu_type_id])
              for m in machines if m.secure_cloud and gpu_type_id in m.gpu_types()]
    community = [(m.cost_per_gpu_hr, m.gpu_types()[gpu_type_id])
                 for m in machines if not m.secure_cloud and gpu_type_id in m.gpu_types()]
    return GpuOffer(
        secure_cloud=bool(secure),
        community_cloud=bool(community),
        secure_price=min(price for price, _ in secure) if secure else None,
        community_price=min(price for price, _ in community) if community else None,
        max_count=max((n for _, n in secure + community), default=0),
        max_count_secure=max((n for _, n in secure), default=0),
        max_count_community=max((n for _, n in community), default=0),
    )


def lowest_price(gpu_type_id: str, machines: Iterable[Machine], gpu_count: int = 1,
                 secure_cloud: bool | None = None, data_center_id: str | None = None,
                 ) -> float | None:
    """The lowest price per GPU-hour of a machine with at least ``gpu_count`` GPUs of the type
    (of that cloud kind and data center when given); None when no machine qualifies."""
    prices = [
        m.cost_per_gpu_hr for m in machines
        if m.gpu_types().get(gpu_type_id, 0) >= gpu_count
        and (secure_cloud is None or m.secure_cloud == secure_cloud)
        and (data_center_id is None or m.data_center_id == data_center_id)
    ]
    return min(prices) if prices else None
