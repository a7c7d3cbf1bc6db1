"""The /v2 job API's wire format: what a run request may contain, and the objects clients see.

Request body (``/run``, ``/runsync``): a JSON object with ``input`` (a JSON object, required)
and optionally ``webhook`` (http(s) URL), ``policy`` (``executionTimeout`` ms 5 s..7 d,
``ttl`` ms 10 s..7 d, default 24 h, ``lowPriority`` bool; other keys are refused) and
``s3Config`` (an object). Every top-level field is handed to the worker unchanged.

Refusals here are the route's own 400s and 404s, so they are ``ApiError``s (HTTP-only);
nothing below ``runplane.api`` imports this module (a webhook's body is rendered in the api
layer too: ``api/v2/webhooks.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from runplane.api.http.errors import ApiError, bad_request
from runplane.broker.models import (
    COMPLETED,
    IN_PROGRESS,
    IN_QUEUE,
    TIMED_OUT,
    Job,
    QueueMetrics,
    WorkerView,
)
from runplane.worker_state import WorkerState

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
DEFAULT_TTL_MS = 24 * 3600 * 1000
POLICY_KEYS = {"executionTimeout", "ttl", "lowPriority"}
# How long /stream holds an empty stream when no ``wait`` is given: RunPod's 10 s. The runpod
# SDK's sync client reads /stream with a 10 s timeout, and retries a GET that timed out
# (urllib3 Retry), so a held answer that arrives as it gives up costs it a retry, no chunk.
DEFAULT_STREAM_WAIT_MS = 10_000


@dataclass(frozen=True)
class RunRequest:
    """A validated /run or /runsync body: the payload as sent, and its policy resolved."""

    payload: dict[str, Any]
    ttl_ms: int
    execution_timeout_ms: int | None
    low_priority: bool
    webhook: str | None
    # runplane's extension: the body's requestId, for clients that cannot set the
    # Idempotency-Key header.
    request_id: str | None = None


# An Idempotency-Key (or requestId) is 1 to this many characters.
MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(header: str | None, request_id: str | None) -> str | None:
    """The key of an idempotent /run or /runsync: the ``Idempotency-Key`` header, else the
    body's ``requestId``; ApiError(400) for one that is empty or too long."""
    key = header if header is not None else request_id
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        field = "Idempotency-Key" if header is not None else "requestId"
        raise bad_request(f"{field}: must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field)
    return key


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
    request_id = body.get("requestId")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("requestId: must be a string", "requestId")
    return RunRequest(
        payload=body, ttl_ms=ttl, execution_timeout_ms=timeout, low_priority=low,
        webhook=webhook, request_id=request_id,
    )


def parse_wait_ms(raw: str | None, default: int = 90_000) -> int:
    """``?wait=`` of /runsync and /status-sync (default 90 s) or /stream
    (``DEFAULT_STREAM_WAIT_MS``), in milliseconds: 1,000..300,000."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request("wait: must be an integer number of milliseconds", "wait") from None
    if not 1_000 <= value <= 300_000:
        raise bad_request("wait: must be between 1000 and 300000 milliseconds", "wait")
    return value


def shown_status(job: Job) -> str:
    """The status clients are told: a final state only once it is stored (``settled``);
    until then the state the store still has (IN_PROGRESS once it ran, else IN_QUEUE)."""
    if job.settled or not job.final:
        return job.status
    return IN_PROGRESS if job.started_at is not None else IN_QUEUE


def job_view(job: Job) -> dict[str, Any]:
    """The job object of /status, /runsync and webhooks (a final state once stored)."""
    if job.final and not job.settled:
        out: dict[str, Any] = {"id": job.id, "status": shown_status(job)}
        if job.worker_id:
            out["workerId"] = job.worker_id
        out["retries"] = job.retries
        return out
    out = {"id": job.id, "status": job.status}
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


def worker_counts(
    workers: Iterable[WorkerView], controller_status: Mapping[str, Any]
) -> tuple[dict[str, int], list[str]]:
    """Workers by state as /health and /metrics count them, and the ids of the *ready*
    ones: IDLE or RUNNING, i.e. started, healthy, not parked, taking jobs (``ready``
    overlaps ``idle`` and ``running``; it is not a state of its own)."""
    counts = {"idle": 0, "running": 0, "initializing": 0, "unhealthy": 0,
              "throttled": controller_status.get("throttled", 0), "parked": 0, "ready": 0}
    ready: list[str] = []
    for w in workers:
        key = _WORKER_COUNT_KEYS.get(w.status)
        if key:
            counts[key] += 1
            if key in ("idle", "running"):
                ready.append(w.id)
    counts["ready"] = len(ready)
    return counts, ready


def health_view(
    queue: QueueMetrics, workers: Iterable[WorkerView], controller_status: Mapping[str, Any]
) -> dict[str, Any]:
    """``/health``: job counters and workers by state (``worker_counts``), plus the
    controller's ``reason`` why jobs wait when it has one (runplane extension). RunPod's keys
    are kept; ``parked`` (FlashBoot: frozen, resumed by the next job) is runplane's own and not
    counted as idle.

    ``queue`` is the broker's ``queue_metrics``, ``workers`` its registry's ``snapshot`` and
    ``controller_status`` the controller's ``endpoint_status`` (``reason``, ``throttled``).
    """
    counts, _ = worker_counts(workers, controller_status)
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


def metrics_view(workers: list[WorkerView], controller_status: Mapping[str, Any]) -> dict[str, Any]:
    """``/metrics`` of an endpoint: ``readyWorkers`` (the ids of the ready workers, as
    RunPod's Flash reads them) and ``workers`` (the counts of /health, and ``total``: every
    worker the endpoint has, whatever its state)."""
    counts, ready = worker_counts(workers, controller_status)
    return {"readyWorkers": ready, "workers": {**counts, "total": len(workers)}}


def job_not_found(job_id: str) -> ApiError:
    """The 404 of a job that is gone, or not on this endpoint (the two are not told apart)."""
    return ApiError(404, f"job {job_id} not found")


# -- the OpenAI-compatible passthrough (/v2/{endpointId}/openai/v1/...) ------------------

OPENAI_DONE = b"data: [DONE]\n\n"


def openai_sse(chunk: Any) -> bytes:
    """One chunk a worker streamed, as OpenAI Server-Sent Events: a string that already is
    SSE (worker-vllm streams raw ``data: {...}`` lines, several per chunk) is passed as it
    is, a list (a batch of chunks) item by item, anything else as one ``data:`` JSON event."""
    if isinstance(chunk, str):
        if chunk.lstrip().startswith("data:"):
            return (chunk if chunk.endswith("\n\n") else chunk.rstrip("\n") + "\n\n").encode()
        return b"data: " + chunk.encode() + b"\n\n"
    if isinstance(chunk, list):
        return b"".join(openai_sse(c) for c in chunk)
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def openai_error(message: str, kind: str = "server_error") -> dict[str, Any]:
    """OpenAI's error object, which its clients raise as ``APIError`` with this message."""
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def openai_status(body: Any) -> int:
    """The HTTP status of a worker's OpenAI answer: 200, or the code of the error object it
    is (vLLM's ``{"object": "error", "code": 400}``; a bare ``{"error": ...}`` is a 500)."""
    if not isinstance(body, dict):
        return 200
    if body.get("object") == "error":
        code = body.get("code")
        return code if isinstance(code, int) and 400 <= code < 600 else 400
    error = body.get("error")
    if error is not None and not ({"choices", "data", "object"} & body.keys()):
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, int) and 400 <= code < 600 else 500
    return 200


def openai_response(job: Job, chunks: list[Any] | None = None) -> tuple[int, Any]:
    """A final job as the passthrough's non-streamed answer: ``(status, body)``. The body is
    the worker's output; a generator handler's aggregated output of one item (worker-vllm
    yields the whole response once, ``return_aggregate_stream``) is that item, and without
    aggregation (an output of ``[]``) its streamed ``chunks`` stand for it."""
    if job.status == COMPLETED:
        out = job.output
        if out == [] and chunks:
            out = chunks
        body = out[0] if isinstance(out, list) and len(out) == 1 else out
        return openai_status(body), body
    if job.status == TIMED_OUT:
        return 504, openai_error(job.error or "the request timed out", "timeout")
    return 500, openai_error(job.error or f"the request ended {job.status}")
