"""/v2/templates and /v2/catalog/templates: the same templates as /v1/templates.

v2 names: ``image`` is ``imageName``, ``args`` the shell-quoted ``dockerStartCmd``, ``disk``
``containerDiskInGb``, ``registry`` ``containerRegistryAuthId``, ``public`` ``isPublic``,
``serverless`` ``isServerless``, ``mounts.persistent`` the pod volume (``volumeInGb`` at
``volumeMountPath``). ``startSsh``, ``startJupyter`` and ``allowedCudaVersions`` have no v1
field: they are answered as RunPod's defaults (runplane's pods run no SSH or Jupyter server).
The catalog's public templates are the operator's (public templates of an admin).
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, created, no_content, ok, services
from runplane.api.rest_v2.serverless_wire import container_fields
from runplane.errors import Invalid
from runplane.schemas.rest_v2 import TemplateCreateV2, TemplateUpdateV2
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate

router = APIRouter(prefix="/v2/templates", tags=["templates"], route_class=V2Route)
catalog_router = APIRouter(prefix="/v2/catalog/templates", tags=["catalog"],
                           route_class=V2Route)


def template_view(t: Template) -> dict[str, Any]:
    """The spec's ``Template`` of a stored template."""
    body: dict[str, Any] = {
        "id": t.id, "name": t.name, "image": t.imageName, "args": shlex.join(t.dockerStartCmd),
        "disk": t.containerDiskInGb, "env": dict(t.env), "ports": list(t.ports),
        "registry": t.containerRegistryAuthId or None, "serverless": t.isServerless,
        "public": t.isPublic, "category": t.category, "startSsh": not t.isServerless,
        "startJupyter": not t.isServerless, "allowedCudaVersions": [],
        "mounts": ({"persistent": {"size": t.volumeInGb, "path": t.volumeMountPath}}
                   if t.volumeInGb >= 10 else {}),
    }
    return body


def _fields(body: TemplateCreateV2 | TemplateUpdateV2) -> dict[str, Any]:
    out = container_fields(body)
    given = body.model_fields_set
    if body.env is not None:
        out["env"] = body.env
    for v2, v1 in (("name", "name"), ("category", "category"), ("public", "isPublic")):
        if v2 in given and getattr(body, v2) is not None:
            out[v1] = getattr(body, v2)
    if body.mounts is not None:
        persistent = body.mounts.persistent
        out["volumeInGb"] = persistent.size if persistent else 0
        if persistent:
            out["volumeMountPath"] = persistent.path
    return out


@router.get("")
async def list_templates(request: Request, user: User) -> Response:
    found = services(request).templates.list_for(user, include_endpoint_bound=True)
    return ok({"templates": [template_view(t) for t in found]})


@router.post("")
async def create_template(request: Request, body: TemplateCreateV2, user: User) -> Response:
    fields = _fields(body) | {"isServerless": body.serverless}
    made = services(request).templates.create(user, TemplateCreate.model_validate(fields))
    return created(template_view(made))


@router.get("/{id}")
async def get_template(request: Request, id: str, user: User) -> Response:
    found = services(request).templates.get_for(user, id, include_public=True, include_runpod=True)
    return ok(template_view(found))


@router.patch("/{id}")
async def update_template(request: Request, id: str, body: TemplateUpdateV2,
                          user: User) -> Response:
    parts = services(request)
    current = parts.templates.get_for(user, id)
    fields = _fields(body)
    # Kinds v1 fixes at creation: refused when they would change, accepted when restated.
    for v2, value, now in (("serverless", body.serverless, current.isServerless),
                           ("category", fields.pop("category", None), current.category)):
        if value is not None and value != now:
            raise Invalid(f"{v2}: fixed when a template is created; create a new one", v2)
    updated = parts.templates.update(user, id, TemplateUpdate.model_validate(fields))
    return ok(template_view(updated))


@router.delete("/{id}")
async def delete_template(request: Request, id: str, user: User) -> Response:
    services(request).templates.delete(user, id)
    return no_content()


@catalog_router.get("")
async def list_public_templates(
    request: Request, user: User,
    source: Annotated[str, Query(pattern="^(official|verified|community)$")] = "official",
) -> Response:
    """official: the operator's public templates; community: other users'; verified: none
    (runplane verifies no one's templates)."""
    parts = services(request)
    if source == "verified":
        return ok({"templates": []})
    official = source == "official"
    found = parts.templates.list_for(user, include_public=not official, include_runpod=official)
    picked = [t for t in found if t.isPublic and t.isRunpod == official]
    return ok({"templates": [template_view(t) for t in picked]})
