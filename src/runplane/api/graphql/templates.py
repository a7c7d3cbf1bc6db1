"""``saveTemplate``, ``deleteTemplate`` and ``myself.podTemplates`` over TemplateService."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from runplane.api.graphql import wire
from runplane.api.graphql.context import Json, context, parts
from runplane.errors import Invalid, NotFound
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate

# GraphQL input field -> (REST field, converter). startSsh, startJupyter, startScript and
# advancedStart are accepted and not kept: runplane's pods run no SSH or Jupyter service.
_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("name", wire.same),
    "imageName": ("imageName", wire.same),
    "dockerArgs": ("dockerStartCmd", wire.argv_in),
    "containerDiskInGb": ("containerDiskInGb", wire.same),
    "volumeInGb": ("volumeInGb", wire.same),
    "volumeMountPath": ("volumeMountPath", wire.same),
    "ports": ("ports", wire.split),
    "env": ("env", wire.env_in),
    "isServerless": ("isServerless", wire.same),
    "isPublic": ("isPublic", wire.same),
    "readme": ("readme", wire.same),
    "category": ("category", wire.same),
    "containerRegistryAuthId": ("containerRegistryAuthId", lambda v: v or None),
}
RENAMES = {"dockerStartCmd": "dockerArgs"}


def template_out(t: Template) -> Json:
    """A template in RunPod's GraphQL ``PodTemplate`` shape."""
    return {
        "id": t.id,
        "name": t.name,
        "imageName": t.imageName,
        "dockerArgs": wire.argv_out(t.dockerStartCmd),
        "containerDiskInGb": t.containerDiskInGb,
        "volumeInGb": t.volumeInGb,
        "volumeMountPath": t.volumeMountPath,
        "ports": wire.commas(t.ports),
        "env": wire.env_out(t.env),
        "isServerless": t.isServerless,
        "isPublic": t.isPublic,
        "isRunpod": t.isRunpod,
        "readme": t.readme,
        "category": t.category,
        "containerRegistryAuthId": t.containerRegistryAuthId or None,
    }


def save_template(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """Create a template, or update the one ``input.id`` names (only the fields sent)."""
    services, principal = parts(info)
    values = {k: v for k, v in input.items() if v is not None or k == "containerRegistryAuthId"}
    fields = wire.convert(values, _FIELDS)
    template_id = input.get("id")
    if not template_id:
        body = wire.validated(TemplateCreate, fields, RENAMES)
        context(info).count_create()
        return template_out(services.templates.create(principal, body))
    current = services.templates.get_for(principal, template_id)
    for name in list(fields):
        # Only create sets these; sending the current value again is not a change.
        if name not in TemplateUpdate.model_fields and fields.pop(name) != getattr(current, name):
            raise Invalid(f"{name}: cannot be changed after the template is created", name)
    update = wire.validated(TemplateUpdate, fields, RENAMES)
    return template_out(services.templates.update(principal, template_id, update))


def delete_template(_: Any, info: GraphQLResolveInfo, templateName: str) -> None:
    """Delete the caller's template of that name (RunPod deletes templates by name)."""
    services, principal = parts(info)
    own = [t for t in services.templates.list_for(principal, include_endpoint_bound=True)
           if t.userId == principal.user_id and t.name == templateName]
    if not own:
        raise NotFound("template", templateName)
    services.templates.delete(principal, own[0].id)


def my_templates(_: Any, info: GraphQLResolveInfo) -> list[Json]:
    """The caller's own templates, endpoint-bound ones included."""
    services, principal = parts(info)
    return [template_out(t) for t in services.templates.list_for(principal, True)
            if t.userId == principal.user_id]


RESOLVERS = {
    "Mutation": {"saveTemplate": save_template, "deleteTemplate": delete_template},
    "User": {"podTemplates": my_templates},
}
