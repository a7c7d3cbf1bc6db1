"""The /v2 job API's wire format: what a run request may contain, and the objects clients see.

Request body (``/run``, ``/runsync``): a JSON object with ``input`` (a JSON object, required)
and optionally ``webhook`` (http(s) URL), ``policy`` (``executionTimeout`` ms 5 s..7 d,
``ttl`` ms 10 s..7 d, default 24 h, ``lowPriority`` bool; other keys are refused) and
``s3Config`` (an object). Every top-level field is handed to the worker unchanged.

Refusals here are the route's own 400s and 404s, so they are ``ApiError``s (HTTP-only);
nothing below ``runplane.api`` imports this module except, for now, the broker's webhooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runplane.api.errors import ApiError, bad_request
from runplane.broker.models import COMPLETED, Job, QueueMetrics, WorkerView
from runplane.worker_state import WorkerState

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
DEFAULT_TTL_MS = 24 * 3600 * 1000
POLICY_KEYS = {"executionTimeout", "ttl", "lowPriority"}


@dataclass(frozen=True)
class RunRequest:
    """A validated /run or /runsync body: the payload as sent, and its policy resolved."""

    payload: dict[str, Any]
    ttl_ms: int
    execution_timeout_ms: int | None
    low_priority: bool
    webhook: str | None


def _ms(policy: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = policy.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise bad_request(f"policy.{key}: must be an integer number of milliseconds", f"policy.{key}")
    value = int(value)
    if not low <= value <= high:
        raise bad_request(
            f"policy.{key}: must be between {low} and {high} milliseconds", f"policy.{key}"
        )
    return value


def parse_run_request(body: Any) -> RunRequest:
    """Validate a /run or /runsync body; raises ApiError(400) with the field to blame."""
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object with an 'input' field")
    if "input" not in body:
        raise bad_request("input: field required", "input")
    if not isinstance(body["input"], dict):
        raise bad_request("input: must be a JSON object", "input")
    policy = body.get("policy")
    ttl = DEFAULT_TTL_MS
    timeout = None
    low = False
    if policy is not None:
        if not isinstance(policy, dict):
            raise bad_request("policy: must be a JSON object", "policy")
        unknown = sorted(set(policy) - POLICY_KEYS)
        if unknown:
            raise bad_request(f"policy.{unknown[0]}: unknown field", f"policy.{unknown[0]}")
        timeout = _ms(policy, "executionTimeout", 5_000, SEVEN_DAYS_MS)
        ttl = _ms(policy, "ttl", 10_000, SEVEN_DAYS_MS) or DEFAULT_TTL_MS
        low_value = policy.get("lowPriority", False)
        if not isinstance(low_value, bool):
            raise bad_request("policy.lowPriority: must be true or false", "policy.lowPriority")
        low = low_value
    webhook = body.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise bad_request("webhook: must be an http(s) URL", "webhook")
    s3 = body.get("s3Config")
    if s3 is not None and not isinstance(s3, dict):
        raise bad_request("s3Config: must be a JSON object", "s3Config")
    return RunRequest(
        payload=body, ttl_ms=ttl, execution_timeout_ms=timeout, low_priority=low, webhook=webhook
    )


def parse_wait_ms(raw: str | None) -> int:
    """``/runsync?wait=`` in milliseconds: default 90 s, 1,000..300,000."""
    if raw is None or raw == "":
        return 90_000
    try:
        value = int(raw)
    except ValueError:
        raise bad_request("wait: must be an integer number of milliseconds", "wait") from None
    if not 1_000 <= value <= 300_000:
        raise bad_request("wait: must be between 1000 and 300000 milliseconds", "wait")
    return value


def job_view(job: Job) -> dict[str, Any]:
    """The job object of /status, /runsync and webhooks."""
    out: dict[str, Any] = {"id": job.id, "status": job.status}
    delay = job.delay_ms()
    if delay is not None:
        out["delayTime"] = delay
    execution = job.execution_ms()
    if execution is not None:
        out["executionTime"] = execution
    if job.worker_id:
        out["workerId"] = job.worker_id
    if job.status == COMPLETED or job.output is not None:
        out["output"] = job.output
    if job.error is not None:
        out["error"] = job.error
    out["retries"] = job.retries
    return out


# The worker states /health counts, and their key there; other states (OUTDATED, ...) are not
# counted. THROTTLED is no worker's own state: its count comes from the controller.
_WORKER_COUNT_KEYS: dict[str, str] = {
    WorkerState.IDLE: "idle",
    WorkerState.RUNNING: "running",
    WorkerState.INITIALIZING: "initializing",
    WorkerState.UNHEALTHY: "unhealthy",
    WorkerState.PARKED: "parked",
}


def health_view(
    queue: QueueMetrics, workers: Iterable[WorkerView], controller_status: Mapping[str, Any]
) -> dict[str, Any]:
    """``/health``: job counters and workers by state, plus the controller's ``reason`` why
    jobs wait when it has one (runplane extension). RunPod's keys are kept; ``parked``
    (FlashBoot: frozen, resumed by the next job) is runplane's own and not counted as idle.

    ``queue`` is the broker's ``queue_metrics``, ``workers`` its registry's ``snapshot`` and
    ``controller_status`` the controller's ``endpoint_status`` (``reason``, ``throttled``).
    """
    counts = {"idle": 0, "running": 0, "initializing": 0, "unhealthy": 0,
              "throttled": controller_status.get("throttled", 0), "parked": 0}
    for w in workers:
        key = _WORKER_COUNT_KEYS.get(w.status)
        if key:
            counts[key] += 1
    body: dict[str, Any] = {
        "jobs": {
            "completed": queue.completed,
            "failed": queue.failed,
            "inProgress": queue.in_progress,
            "inQueue": queue.in_queue,
            "retried": queue.retried,
        },
        "workers": counts,
    }
    if controller_status.get("reason"):
        body["reason"] = controller_status["reason"]
    return body


def job_not_found(job_id: str) -> ApiError:
    """The 404 of a job that is gone, or not on this endpoint (the two are not told apart)."""
    return ApiError(404, f"job {job_id} not found")
