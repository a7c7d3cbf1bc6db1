"""/v2/account/ssh-keys: the caller's SSH public keys, read and replaced as a whole."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, ok, services
from runplane.schemas.rest_v2 import SshKeysV2

router = APIRouter(prefix="/v2/account", tags=["account"], route_class=V2Route)


@router.get("/ssh-keys")
async def get_ssh_keys(request: Request, user: User) -> Response:
    return ok({"keys": services(request).ssh_keys.keys_of(user)})


@router.put("/ssh-keys")
async def put_ssh_keys(request: Request, body: SshKeysV2, user: User) -> Response:
    return ok({"keys": services(request).ssh_keys.replace(user, body.keys)})
