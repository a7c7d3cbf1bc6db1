"""Webhook delivery: POST the final job object (as /status shows it) to ``webhook``.

RunPod expects a 200 and retries twice more, 10 s apart (``webhook_retry_delay_s``). Any 2xx
counts as delivered. Delivery is best-effort and in memory: a server restart between the
job's end and a successful delivery loses the remaining attempts (docs/jobs.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx
import orjson

from runplane.broker.models import Job
from runplane.services.jobs import job_view

if TYPE_CHECKING:
    from runplane.broker.broker import Broker

log = logging.getLogger("runplane.broker.webhooks")

ATTEMPTS = 3


async def deliver(broker: Broker, job: Job) -> bool:
    if broker._webhooks is None:
        broker._webhooks = httpx.AsyncClient(timeout=10.0)
    client: httpx.AsyncClient = broker._webhooks
    body = orjson.dumps(job_view(job))
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(broker.settings.webhook_retry_delay_s)
        try:
            r = await client.post(
                job.webhook or "", content=body, headers={"Content-Type": "application/json"}
            )
            if 200 <= r.status_code < 300:
                return True
            log.info("webhook for job %s answered %s (attempt %d)", job.id, r.status_code, attempt + 1,
                     extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        except httpx.HTTPError as exc:
            log.info("webhook for job %s failed: %s (attempt %d)", job.id, exc, attempt + 1,
                     extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
    return False
