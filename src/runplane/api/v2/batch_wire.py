"""The wire format of batch jobs (``/v2/{endpointId}/batch...``), as RunPod documents it.

Requests: a batch is created from a JSON array of ``/run`` bodies (or ``{"requests": [...],
"name": ...}``, the earlier documented shape), appended to with ``{"requests": [...]}`` (or a
bare array); each body follows the ``/run`` rules (``wire.parse_run_request``), and a
request's job lives 7 days unless its ``policy.ttl`` says otherwise. ``PUT`` takes
``{"name": ...}``; other fields are left alone. Lists page with ``offset`` (0..) and
``limit`` (1..1000, default 50).

Objects: a batch is ``{"id", "endpointId", "name", "status", "requestTotal",
"requestInProgress", "requestCompleted", "requestFailed", "createdAt"}`` (epoch ms) plus
runplane's ``requestCancelled`` and ``finalizedAt``; a request is ``{"id", "status",
"output" | "error", "startedAt", "completedAt"}`` (ISO 8601, UTC). A request's id is its
job's: ``/status/{id}`` answers for it while the job is retained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runplane.api.http.errors import ApiError, bad_request
from runplane.api.v2.wire import parse_run_request
from runplane.broker.models import COMPLETED
from runplane.services.batches import BATCH_REQUEST_TTL_MS, Batch, NewRequest, Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def parse_requests(body: Any, *, creating: bool) -> tuple[list[NewRequest], str | None]:
    """The requests (and, when creating, the name) of a create or append body."""
    name = None
    items = body
    if isinstance(body, dict):
        # {"requests": [...]}; when creating, {"name": ...} alone is an empty batch (but a
        # lone /run body is a mistake, not an empty batch).
        items = body.get("requests", [] if creating and "input" not in body else None)
        if creating:
            name = parse_name(body)
    if not isinstance(items, list):
        raise bad_request("expected a JSON array of /run request bodies"
                          + ("" if creating else ", or {\"requests\": [...]}"), "requests")
    return [_request(item, i) for i, item in enumerate(items)], name


def _request(item: Any, i: int) -> NewRequest:
    try:
        spec = parse_run_request(item)
    except ApiError as exc:
        field = f"requests[{i}]" + (f".{exc.field}" if exc.field else "")
        raise ApiError(exc.status, f"requests[{i}]: {exc.message}", field) from None
    policy = item.get("policy") or {}
    ttl = spec.ttl_ms if policy.get("ttl") is not None else BATCH_REQUEST_TTL_MS
    return NewRequest(spec.payload, ttl, spec.execution_timeout_ms, spec.webhook)


def parse_name(body: Any) -> str | None:
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 256):
        raise bad_request("name: must be a string of at most 256 characters", "name")
    return name


def parse_page(offset: str | None, limit: str | None) -> tuple[int, int]:
    """``?offset=&limit=``: 0.., 1..1000 (default 50)."""
    try:
        first = int(offset) if offset else 0
        count = int(limit) if limit else DEFAULT_LIMIT
    except ValueError:
        raise bad_request("offset and limit: must be integers", "offset") from None
    if first < 0:
        raise bad_request("offset: must be 0 or more", "offset")
    if not 1 <= count <= MAX_LIMIT:
        raise bad_request(f"limit: must be between 1 and {MAX_LIMIT}", "limit")
    return first, count


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def batch_view(b: Batch) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": b.id, "endpointId": b.endpoint_id, "status": b.status,
        "requestTotal": b.total, "requestInProgress": b.in_progress,
        "requestCompleted": b.completed, "requestFailed": b.failed,
        "requestCancelled": b.cancelled, "createdAt": _ms(b.created_at),
    }
    if b.name is not None:
        out["name"] = b.name
    if b.finalized_at is not None:
        out["finalizedAt"] = _ms(b.finalized_at)
    return out


def request_view(r: Request) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "status": r.status}
    if r.status == COMPLETED or r.output is not None:
        out["output"] = r.output
    if r.error is not None:
        out["error"] = r.error
    if r.started_at is not None:
        out["startedAt"] = _iso(r.started_at)
    if r.completed_at is not None:
        out["completedAt"] = _iso(r.completed_at)
    return out


def page_view(key: str, items: list[dict[str, Any]], total: int, offset: int,
              limit: int) -> dict[str, Any]:
    return {key: items, "total": total, "offset": offset, "limit": limit,
            "hasMore": offset + len(items) < total}
