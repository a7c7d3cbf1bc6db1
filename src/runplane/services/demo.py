"""``runplane serve --demo``: a CPU template and endpoint from ``examples/hello``, ready for a job.

Idempotent: on a store that has the demo already, it is reused (and its template pointed at
this checkout's example again, in case the checkout moved).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Engine, select, update

from runplane.schemas.endpoints import EndpointCreate
from runplane.schemas.templates import TemplateCreate
from runplane.services.endpoints import EndpointService
from runplane.services.templates import TemplateService
from runplane.services.users import Principal
from runplane.store.tables import endpoints, templates

DEMO_NAME = "runplane-demo"
EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "hello"


def ensure_demo(engine: Engine, template_service: TemplateService,
                endpoint_service: EndpointService, user_id: str) -> str:
    """Create (or find) the demo template and endpoint for ``user_id``; return the endpoint id."""
    image = f"local:{EXAMPLE_DIR}"
    command = [sys.executable, "-u", "handler.py"]
    principal = Principal(user_id=user_id, is_admin=True)
    with engine.begin() as conn:
        tid = conn.execute(select(templates.c.id).where(
            templates.c.user_id == user_id, templates.c.name == DEMO_NAME)).scalar()
        if tid is not None:
            spec = conn.execute(select(templates.c.spec).where(templates.c.id == tid)).scalar()
            conn.execute(update(templates).where(templates.c.id == tid).values(
                spec={**(spec or {}), "imageName": image, "dockerStartCmd": command}))
        eid = conn.execute(select(endpoints.c.id).where(
            endpoints.c.user_id == user_id, endpoints.c.name == DEMO_NAME)).scalar()
    if tid is None:
        tid = template_service.create(principal, TemplateCreate.model_validate({
            "name": DEMO_NAME, "imageName": image, "dockerStartCmd": command,
            "isServerless": True, "env": {"RUNPOD_LOG_LEVEL": "INFO"},
        })).id
    if eid is None:
        eid = endpoint_service.create(principal, EndpointCreate.model_validate({
            "name": DEMO_NAME, "templateId": tid, "computeType": "CPU", "vcpuCount": 1,
            "workersMin": 0, "workersMax": 2, "idleTimeout": 30,
            "scalerType": "REQUEST_COUNT", "scalerValue": 1,
        })).id
    return eid


def curl_line(public_url: str, endpoint_id: str, key: str | None) -> str:
    """The command that sends the demo a job and waits for its answer."""
    auth = key or "$RUNPLANE_API_KEY"
    return (f"curl -s -X POST {public_url}/v2/{endpoint_id}/runsync "
            f"-H 'Authorization: Bearer {auth}' -H 'Content-Type: application/json' "
            "-d '{\"input\": {\"name\": \"runplane\"}}'")
