"""REST v2 routes that need infrastructure runplane does not have: a 501 saying what.

- ``/v2/clusters``: several pods started together on one fast interconnect (InfiniBand or
  RoCE between machines, a private VXLAN, SLURM or Ray bootstrapped across them). runplane
  places each pod on its own and has no such network between machines.
- ``/v2/registries/delegations``: ECR delegations let RunPod's AWS account pull from a
  user's private Amazon ECR repository through an IAM role it assumes. runplane has no AWS
  identity to be trusted; registry credentials (``/v2/registries``) pull from ECR instead.

docs/migration.md lists both. Every caller is still authenticated and counted first, so a
missing key is a 401 here as everywhere.
"""

from __future__ import annotations

from fastapi import APIRouter

from runplane.api.rest_v2.common import User, V2Route
from runplane.api.rest_v2.problems import Problem

router = APIRouter(tags=["not available"], route_class=V2Route)

CLUSTERS = ("clusters need several pods started together on a fast interconnect between "
            "machines (InfiniBand/RoCE, a private VXLAN, SLURM or Ray set up across them); "
            "this runplane server places pods one by one and has no such network. Create pods "
            "(POST /v2/pods) instead.")
DELEGATIONS = ("ECR delegations need an AWS identity that your IAM role trusts; this runplane "
               "server has none. Store registry credentials (POST /v2/registries, e.g. an ECR "
               "token as the password) instead.")


@router.get("/v2/clusters")
@router.post("/v2/clusters")
@router.get("/v2/clusters/{id}")
@router.patch("/v2/clusters/{id}")
@router.delete("/v2/clusters/{id}")
@router.get("/v2/clusters/{id}/pods")
async def clusters(user: User) -> None:
    raise Problem(501, CLUSTERS)


@router.get("/v2/registries/delegations")
@router.post("/v2/registries/delegations")
@router.delete("/v2/registries/delegations/{id}")
async def delegations(user: User) -> None:
    raise Problem(501, DELEGATIONS)
