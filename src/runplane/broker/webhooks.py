"""Webhook delivery: POST a settled job's body to its ``webhook``.

The body is the final job object as /status shows it, rendered by the api layer (which hears
of settled jobs, ``api/v2/webhooks.py``) and handed here as bytes: the broker knows no wire
format.

RunPod expects a 200 and retries twice more, 10 s apart (``webhook_retry_delay_s``). Any 2xx
counts as delivered. Delivery is best-effort and in memory: a server restart between the
job's end and a successful delivery loses the remaining attempts (docs/jobs.md).

Each attempt resolves the host again and POSTs to the checked address only
(``webhook_guard.resolve``: public addresses, or the operator's allowed ranges), with the
original Host header and TLS server name; redirects are never followed (a 3xx is a failed
attempt), so a webhook cannot be bounced to an internal address either.

A body counts against its job's held-bytes budgets (:mod:`.budget`) for as long as it is held
(its attempts and the waits between them): one that does not fit is not sent (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from runplane.broker.budget import HeldBytes
from runplane.broker.models import Job
from runplane.broker.webhook_guard import Network, resolve
from runplane.errors import Invalid

log = logging.getLogger("runplane.broker.webhooks")

ATTEMPTS = 3


class WebhookSender:
    """Sends each settled job's webhook in the background, with the body it is given;
    ``held`` counts the bodies while they are held."""

    def __init__(self, retry_delay_s: float, allow: Sequence[Network] = (),
                 held: HeldBytes | None = None) -> None:
        self._held = held if held is not None else HeldBytes()
        self._allow = tuple(allow)
        self._retry_delay_s = retry_delay_s
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[bool]] = set()
        self._closed = False

    def send(self, job: Job, body: bytes) -> None:
        """Deliver ``body`` to ``job``'s webhook, if it has one, in the background (unless
        closed)."""
        if not job.webhook or self._closed:
            return
        ep, user, size = job.endpoint_id, job.user_id, len(body)
        if not self._held.fits(ep, user, size):
            log.info("webhook for job %s not sent: its %d bytes are over the endpoint's or "
                     "user's budget of bytes held", job.id, size,
                     extra={"job_id": job.id, "endpoint_id": ep})
            return
        self._held.hold(ep, user, size)
        task = asyncio.get_running_loop().create_task(self.deliver(job, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._held.unhold(ep, user, size))

    async def deliver(self, job: Job, body: bytes) -> bool:
        """Up to :data:`ATTEMPTS` POSTs of ``body``; True once one was answered 2xx."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, follow_redirects=False,
                                             trust_env=False)
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._retry_delay_s)
            try:
                url, headers, extensions = await self._target(job.webhook or "")
                r = await self._client.post(url, content=body, headers=headers,
                                            extensions=extensions)
                if 200 <= r.status_code < 300:
                    return True
                log.info("webhook for job %s answered %s (attempt %d)", job.id, r.status_code,
                         attempt + 1, extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
            except Invalid as exc:
                log.warning("webhook for job %s refused: %s", job.id, exc.message,
                            extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
                return False
            except (httpx.HTTPError, OSError) as exc:
                log.info("webhook for job %s failed: %s (attempt %d)", job.id, exc, attempt + 1,
                         extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        return False

    async def _target(self, webhook: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """The URL with the checked address as its host, and the Host header and TLS name
        of the original."""
        address = await resolve(webhook, self._allow)
        original = httpx.URL(webhook)
        url = original.copy_with(host=str(address))
        host = original.host + (f":{original.port}" if original.port else "")
        headers = {"Content-Type": "application/json", "Host": host}
        extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
        return url, headers, extensions

    async def aclose(self) -> None:
        """Cancel the deliveries under way and close the HTTP client."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
