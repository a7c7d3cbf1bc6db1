"""Webhook delivery: POST the final job object (as /status shows it) to ``webhook``.

RunPod expects a 200 and retries twice more, 10 s apart (``webhook_retry_delay_s``). Any 2xx
counts as delivered. Delivery is best-effort and in memory: a server restart between the
job's end and a successful delivery loses the remaining attempts (docs/jobs.md).

Each attempt resolves the host again and POSTs to the checked address only
(``webhook_guard.resolve``: public addresses, or the operator's allowed ranges), with the
original Host header and TLS server name; redirects are never followed (a 3xx is a failed
attempt), so a webhook cannot be bounced to an internal address either.

Between attempts only the job's id is held; each attempt renders the job again (read back
from the store once it left memory), and its body counts against the job's held-bytes
budgets (:mod:`.budget`) while it is posted: an attempt that does not fit is not made (a
failed attempt, logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import httpx

from runplane.broker.budget import HeldBytes
from runplane.broker.models import Job
from runplane.broker.webhook_guard import Network, resolve
from runplane.errors import Invalid

log = logging.getLogger("runplane.broker.webhooks")

ATTEMPTS = 3


class WebhookSender:
    """Sends each settled job's webhook in the background; ``render(job)`` is the body (the
    job object of the job API's wire format, which the broker does not know); ``find(id)``
    reads a job again for a later attempt (the broker's: memory, else the store); ``held``
    counts the bodies being posted."""

    def __init__(self, render: Callable[[Job], bytes], retry_delay_s: float,
                 allow: Sequence[Network] = (), held: HeldBytes | None = None,
                 find: Callable[[str], Job | None] = lambda _: None) -> None:
        self._render = render
        self._find = find
        self._held = held if held is not None else HeldBytes()
        self._allow = tuple(allow)
        self._retry_delay_s = retry_delay_s
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[bool]] = set()
        self._closed = False

    def send(self, job: Job) -> None:
        """Deliver ``job``'s webhook, if it has one, in the background (unless closed)."""
        if not job.webhook or self._closed:
            return
        task = asyncio.get_running_loop().create_task(self.deliver(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, job: Job) -> bool:
        """Up to :data:`ATTEMPTS` POSTs; True once one was answered 2xx. Between attempts
        only the job's id is held: a later attempt reads the job again (it may have left
        memory), and one whose body does not fit its budgets now is a failed attempt."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, follow_redirects=False,
                                             trust_env=False)
        job_id, ep, user, webhook = job.id, job.endpoint_id, job.user_id, job.webhook or ""
        found: Job | None = job
        del job
        extra = {"job_id": job_id, "endpoint_id": ep}
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._retry_delay_s)
                found = self._find(job_id)
                if found is None:  # gone (its retention, or its TTL)
                    return False
            assert found is not None
            body = self._render(found)
            found = None
            if not self._held.fits(ep, user, len(body)):
                log.info("webhook for job %s not sent: its %d bytes are over the endpoint's or "
                         "user's budget of bytes held (attempt %d)", job_id, len(body),
                         attempt + 1, extra=extra)
                continue
            self._held.hold(ep, user, len(body))
            try:
                url, headers, extensions = await self._target(webhook)
                r = await self._client.post(url, content=body, headers=headers,
                                            extensions=extensions)
                if 200 <= r.status_code < 300:
                    return True
                log.info("webhook for job %s answered %s (attempt %d)", job_id, r.status_code,
                         attempt + 1, extra=extra)
            except Invalid as exc:
                log.warning("webhook for job %s refused: %s", job_id, exc.message, extra=extra)
                return False
            except (httpx.HTTPError, OSError) as exc:
                log.info("webhook for job %s failed: %s (attempt %d)", job_id, exc, attempt + 1,
                         extra=extra)
            finally:
                self._held.unhold(ep, user, len(body))
                del body
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
