"""Webhooks' bodies: a settled job's object of /status, rendered here and handed to the
broker's sender (``broker/webhooks.py``: the SSRF guard, retries and delivery).

The broker announces a job once its final state is committed (``Broker.add_settled_listener``,
as it announces job events to observability); this listener renders the body in the job API's
wire format and hands the bytes down. So the wire format stays in the api layer, and the
broker neither imports it nor is handed a renderer to call for it.
"""

from __future__ import annotations

from runplane.api.http.responses import dumps
from runplane.api.v2.wire import job_view
from runplane.broker.models import Job
from runplane.broker.webhooks import WebhookSender


class WebhookBodies:
    """``Broker.add_settled_listener(WebhookBodies(broker.webhooks))`` (``server.py``)."""

    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    def __call__(self, job: Job) -> None:
        # Every final job passes here: only those with a webhook are rendered.
        if job.webhook:
            self._sender.send(job, dumps(job_view(job)))
