"""The template behind an endpoint whose container settings come inline (REST v2).

v1 endpoints always run a template the user made; v2 lets a client send ``image``, ``args``,
``disk``, ``ports`` and ``registry`` on the endpoint itself, with or without a ``templateId``
(body fields override the template's). runplane keeps one model: those settings live in a
serverless template of the endpoint's owner, so v1 reads the same endpoint with a
``templateId`` and every rule of templates applies.

- On create, inline settings make a new template (the given template's settings, if any,
  with the body's on top) named after the endpoint.
- On update, they change the endpoint's template in place when nothing else uses it (the
  template's change is the endpoint's next release, as a v1 template update is), or else a
  copy with the changes that the endpoint then points at, so other endpoints do not change.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from runplane.errors import DomainError, Invalid
from runplane.ids import new_id
from runplane.schemas.endpoints import QUEUE, Endpoint, EndpointCreate, EndpointKind, EndpointUpdate
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate
from runplane.services.access import can_see
from runplane.services.endpoints import EndpointService
from runplane.services.templates import TemplateService
from runplane.services.users import Principal

# The template fields inline container settings map to (v1 names).
CONTAINER_FIELDS = ("imageName", "dockerStartCmd", "containerDiskInGb", "ports",
                    "containerRegistryAuthId")
_COPIED = (*CONTAINER_FIELDS, "dockerEntrypoint", "env", "volumeInGb", "volumeMountPath",
           "category", "readme")


class EndpointTemplates:
    """Creates and updates endpoints whose container settings may come inline (see the
    module docstring); everything else is ``EndpointService``'s."""

    def __init__(self, templates: TemplateService, endpoints: EndpointService) -> None:
        self._templates = templates
        self._endpoints = endpoints

    def create(self, principal: Principal, template_id: str | None, container: dict[str, Any],
               fields: dict[str, Any], kind: EndpointKind = QUEUE) -> Endpoint:
        """Create an endpoint from ``fields`` (``EndpointCreate``'s) running ``template_id``,
        or a new template of it and the inline ``container`` settings."""
        made: Template | None = None
        if container:
            base = self._base(principal, template_id, principal.user_id) if template_id else None
            made = self._copy(principal, base, str(fields.get("name") or "endpoint"), container)
            template_id = made.id
        elif template_id is None:
            raise Invalid("image: required unless templateId is set", "image")
        try:
            return self._endpoints.create(
                principal, EndpointCreate.model_validate({**fields, "templateId": template_id}),
                kind)
        except (DomainError, ValidationError):
            if made is not None:  # the endpoint was refused: its template goes too
                self._templates.delete(principal, made.id)
            raise

    def update(self, principal: Principal, endpoint_id: str, template_id: str | None,
               container: dict[str, Any], fields: dict[str, Any]) -> Endpoint:
        """Apply ``fields`` (``EndpointUpdate``'s), ``template_id`` and inline ``container``
        settings to the caller's endpoint."""
        current = self._endpoints.get_for(principal, endpoint_id)
        if template_id is not None:
            fields = {**fields, "templateId": template_id}
        if container:
            base_id = template_id or current.templateId
            base = self._base(principal, base_id, current.userId)
            if base_id == current.templateId and self._templates.endpoint_count(base_id) <= 1:
                changes = {k: v for k, v in container.items() if getattr(base, k) != v}
                if changes:  # in place: the template's change is the endpoint's release
                    self._templates.update(principal, base_id,
                                           TemplateUpdate.model_validate(changes))
                fields.pop("templateId", None)
            else:
                made = self._copy(principal, base, fields.get("name") or current.name,
                                  container, current.userId)
                fields = {**fields, "templateId": made.id}
        return self._endpoints.update(principal, endpoint_id,
                                      EndpointUpdate.model_validate(fields))

    def _base(self, principal: Principal, template_id: str, owner_id: str) -> Template:
        template = self._templates.get(template_id)
        if template is None or not (template.userId == owner_id or can_see(principal, template.userId)):
            raise Invalid(f"templateId: no template {template_id!r}", "templateId")
        return template

    def _copy(self, principal: Principal, base: Template | None, endpoint_name: str,
              container: dict[str, Any], owner_id: str | None = None) -> Template:
        fields: dict[str, Any] = base.model_dump(include=set(_COPIED)) if base else {}
        fields.update(container)
        if not fields.get("containerRegistryAuthId"):
            fields.pop("containerRegistryAuthId", None)
        # Unique per user: the endpoint's name and a short random tail.
        name = f"{endpoint_name[:170]} (endpoint template {new_id(6)})"
        body = TemplateCreate.model_validate({**fields, "name": name, "isServerless": True})
        owner = principal if owner_id in (None, principal.user_id) else Principal(owner_id)
        return self._templates.create(owner, body)
