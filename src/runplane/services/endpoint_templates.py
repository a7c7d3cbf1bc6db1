"""The template behind an endpoint whose container settings come inline (REST v2).

v1 endpoints always run a template the user made; v2 lets a client send ``image``, ``args``,
``disk``, ``ports`` and ``registry`` on the endpoint itself, with or without a ``templateId``
(body fields override the template's). runplane keeps one model: those settings live in a
serverless template of the endpoint's owner, so v1 reads the same endpoint with a
``templateId`` and every rule of templates applies: a field's own by REST v2's model, which
holds v1's too (the settings arrive valid), the rest (registry credentials, local images)
by ``TemplateService``. A given ``templateId`` obeys the one rule of every surface
(``EndpointService.usable_template``).

- On create, inline settings make a new template (the given template's settings, if any,
  with the body's on top) named after the endpoint.
- On update, they change the endpoint's template in place when nothing else uses it (the
  template's change is the endpoint's next release, as a v1 template update is), or else a
  copy with the changes that the endpoint then points at, so other endpoints do not change.
"""

from __future__ import annotations

from typing import Any

from runplane.errors import DomainError, Invalid
from runplane.ids import new_id
from runplane.schemas.common import NAME_MAX
from runplane.schemas.endpoints import (
    QUEUE,
    Endpoint,
    EndpointCreate,
    EndpointKind,
    EndpointSettings,
    EndpointUpdate,
)
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate
from runplane.services.endpoints import EndpointService
from runplane.services.templates import TemplateService
from runplane.services.users import Principal

# The template fields inline container settings map to (v1 names).
CONTAINER_FIELDS = ("imageName", "dockerStartCmd", "containerDiskInGb", "ports",
                    "containerRegistryAuthId")
_COPIED = (*CONTAINER_FIELDS, "dockerEntrypoint", "env", "volumeInGb", "volumeMountPath",
           "category", "readme")
# A made template's name: the endpoint's, cut to leave room for this tail.
_TAIL = " (endpoint template {})"
_TAIL_LEN = len(_TAIL.format("x" * 6))  # new_id(6)


class EndpointTemplates:
    """Creates and updates endpoints whose container settings may come inline (see the
    module docstring); everything else is ``EndpointService``'s.

    Its inputs are typed and valid as they come (the surface validated them once, REST v2
    under its own names): they are passed on and combined, not validated again.
    """

    def __init__(self, templates: TemplateService, endpoints: EndpointService) -> None:
        self._templates = templates
        self._endpoints = endpoints

    def create(self, principal: Principal, settings: EndpointSettings,
               container: TemplateUpdate, kind: EndpointKind = QUEUE) -> Endpoint:
        """Create an endpoint of ``settings`` running their ``templateId``, or a new template
        of it (if any) and the inline ``container`` settings (the fields sent)."""
        made: Template | None = None
        template_id = settings.templateId
        inline = container.given()
        if inline:
            base = (self._endpoints.usable_template(template_id, principal.user_id)
                    if template_id else None)
            made = self._copy(principal, base, settings.name or "endpoint", inline)
            template_id = made.id
        elif template_id is None:
            raise Invalid("image: required unless templateId is set", "image")
        body = EndpointCreate.model_construct(
            _fields_set=settings.model_fields_set | {"templateId"},
            **{**dict(settings), "templateId": template_id})
        try:
            return self._endpoints.create(principal, body, kind)
        except DomainError:
            if made is not None:  # the endpoint was refused: its template goes too
                self._templates.delete(principal, made.id)
            raise

    def update(self, principal: Principal, endpoint_id: str, changes: EndpointUpdate,
               container: TemplateUpdate) -> Endpoint:
        """Apply ``changes`` (their ``templateId`` included) and the inline ``container``
        settings (the fields sent) to the caller's endpoint."""
        current = self._endpoints.get_for(principal, endpoint_id)
        inline = container.given()
        if inline:
            base_id = changes.templateId or current.templateId
            base = self._endpoints.usable_template(base_id, current.userId)
            if base_id == current.templateId and self._templates.endpoint_count(base_id) <= 1:
                differ = {k: v for k, v in inline.items() if getattr(base, k) != v}
                if differ:  # in place: the template's change is the endpoint's release
                    self._templates.update(principal, base_id, TemplateUpdate.model_construct(
                        _fields_set=set(differ), **differ))
            else:
                made = self._copy(principal, base, changes.name or current.name, inline,
                                  current.userId)
                changes = changes.model_copy(update={"templateId": made.id})
        return self._endpoints.update(principal, endpoint_id, changes)

    def _copy(self, principal: Principal, base: Template | None, endpoint_name: str,
              container: dict[str, Any], owner_id: str | None = None) -> Template:
        fields: dict[str, Any] = base.model_dump(include=set(_COPIED)) if base else {}
        fields.update(container)
        if not fields.get("containerRegistryAuthId"):
            fields.pop("containerRegistryAuthId", None)
        # Unique per user: the endpoint's name and a short random tail, within a name's length.
        fields["name"] = endpoint_name[:NAME_MAX - _TAIL_LEN] + _TAIL.format(new_id(6))
        fields["isServerless"] = True
        body = TemplateCreate.model_construct(_fields_set=set(fields), **fields)
        owner = principal if owner_id in (None, principal.user_id) else Principal(owner_id)
        return self._templates.create(owner, body)
