"""Client routes of the job API: ``/v2/{endpointId}/run`` ... (PROTOCOL.md section 2).

Authenticated by a user API key (``Bearer`` or raw); an endpoint or job of another user is a
404, like on /v1. Every reply is JSON, errors included.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runplane.api.http.auth import bearer, client_address
from runplane.api.http.errors import ApiError, not_found
from runplane.api.http.responses import dumps
from runplane.api.v2.http import Req, parse_json, send_json
from runplane.api.v2.wire import (
    DEFAULT_STREAM_WAIT_MS,
    health_view,
    idempotency_key,
    job_not_found,
    job_view,
    metrics_view,
    parse_run_request,
    parse_wait_ms,
    shown_status,
)
from runplane.broker.broker import Broker
from runplane.broker.models import FAILED, IN_QUEUE, TIMED_OUT, Job, WorkerView
from runplane.errors import RateLimited, Unauthorized
from runplane.lb.prober import health_path
from runplane.services.users import Principal
from runplane.worker_state import WorkerState


def _principal(req: Req) -> Principal:
    header = req.header(b"authorization")
    if not header:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    key = bearer(header)
    principal = req.services.users.authenticate(key, client_address(req.scope)) if key else None
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    return principal


def _endpoint(req: Req) -> tuple[Principal, str]:
    """The caller and the endpoint id of the path, checked: 404 unless the caller's own;
    then the route's rate limit per key and endpoint (429)."""
    principal = _principal(req)
    endpoint_id = req.parts[0]
    owner = req.services.endpoints.owner_of(endpoint_id)
    if owner is None or (owner != principal.user_id and not principal.is_admin):
        raise not_found("endpoint", endpoint_id)
    route = req.services.limits.job_route(req.parts[1])
    if route is not None:
        key = (principal.key_id, endpoint_id)
        wait = route.rate.hit(key)
        if wait:
            raise RateLimited(wait, f"too many /{req.parts[1]} requests: the limit is "
                                    f"{route.rate.rule.limit} per {route.rate.rule.window_s:g} s")
        inflight = route.inflight
        if inflight is not None:
            if not inflight.acquire(key):
                raise RateLimited(1.0, f"too many /{req.parts[1]} requests in flight: the "
                                       f"limit is {inflight.limit}")
            req.release = (inflight, key)
    return principal, endpoint_id


# For the routes in their own modules (openai, batches): the same checks and limits.
authorized_endpoint = _endpoint


def _job(req: Req, endpoint_id: str) -> Job:
    if len(req.parts) < 3 or not req.parts[2]:
        raise ApiError(404, "job id missing from the path")
    job_id = req.parts[2]
    job = req.services.broker.find(job_id)
    if job is None or job.endpoint_id != endpoint_id:
        raise job_not_found(job_id)
    return job


async def run(req: Req) -> None:
    await _submit(req, sync=False)


async def runsync(req: Req) -> None:
    await _submit(req, sync=True)


async def _submit(req: Req, *, sync: bool) -> None:
    principal, endpoint_id = _endpoint(req)
    endpoint = req.services.endpoints.get(endpoint_id)
    if endpoint is not None and endpoint.load_balancer:  # no queue: /lb/{id}/... is its API
        raise ApiError(400, "not allowed for LB API: call the endpoint's own paths at "
                            f"/lb/{endpoint_id}/")
    wait_ms = parse_wait_ms(req.query("wait")) if sync else 0
    raw = await req.body()
    spec = parse_run_request(parse_json(raw))
    broker = req.services.broker
    job = await broker.submit(
        endpoint_id, principal.user_id, spec.payload, sync=sync, ttl_ms=spec.ttl_ms,
        execution_timeout_ms=spec.execution_timeout_ms, low_priority=spec.low_priority,
        webhook=spec.webhook, size=len(raw),
        idempotency_key=idempotency_key(req.header(b"idempotency-key"), spec.request_id),
    )
    if not sync:
        await send_json(req.send, {"id": job.id, "status": shown_status(job)})
        return
    await broker.wait_final(job, wait_ms / 1000.0)
    if job.deleted:
        raise job_not_found(job.id)
    if job.final and job.settled:
        await send_json(req.send, job_view(job))
    else:
        await send_json(req.send, _with_reason(req, {"id": job.id, "status": shown_status(job)},
                                               job))


def _with_reason(req: Req, view: dict[str, Any], job: Job) -> dict[str, Any]:
    """A queued job says why it waits (no machine fits, crash loop...) when the controller
    knows (runplane extension)."""
    if job.status == IN_QUEUE:
        reason = req.services.controller.endpoint_reason(job.endpoint_id)
        if reason:
            view["reason"] = reason
    return view


async def status(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    job = _job(req, endpoint_id)
    await send_json(req.send, _with_reason(req, job_view(job), job))


async def status_sync(req: Req) -> None:
    """``/status-sync/{id}?wait=ms`` (RunPod's JS and Go SDKs): /status, held until the job
    is final (woken by its settling, as /runsync is) or ``wait`` (default 90 s) ran out."""
    _, endpoint_id = _endpoint(req)
    wait_ms = parse_wait_ms(req.query("wait"))
    job = _job(req, endpoint_id)
    if not (job.final and job.settled):
        await req.services.broker.wait_final(job, wait_ms / 1000.0)
        if job.deleted:
            raise job_not_found(job.id)
    await send_json(req.send, _with_reason(req, job_view(job), job))


async def stream(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    job = _job(req, endpoint_id)
    accept = req.header(b"accept") or ""
    if "text/event-stream" in accept:
        await _sse(req, job)
        return
    broker = req.services.broker
    wait_ms = parse_wait_ms(req.query("wait"), DEFAULT_STREAM_WAIT_MS)
    chunks = await _held_chunks(broker, job, wait_ms / 1000.0)
    body = {"id": job.id, "status": shown_status(job),
            "stream": [{"output": c} for c in chunks]}
    if job.final and job.settled:
        # The asyncio client caches ``output`` from the last /stream reply it reads.
        view = job_view(job)
        for key in ("output", "error"):
            if key in view:
                body[key] = view[key]
    await send_json(req.send, body)


async def _held_chunks(broker: Broker, job: Job, wait_s: float) -> list[Any]:
    """The chunks not handed out yet; while there are none and the job runs, the request is
    held up to ``wait_s``, woken by the next chunk or the job's end (not polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        # The state before the chunks: chunks always precede the end of a job.
        ended = (job.final and job.settled) or job.deleted or broker.closed
        chunks = broker.stream_take(job)
        remaining = deadline - loop.time()
        if chunks or ended or remaining <= 0:
            return chunks
        await broker.wait_change(job, remaining)


async def _sse(req: Req, job: Job) -> None:
    """Server-Sent Events: ``event: chunk`` with ``{"output": ...}`` per chunk as it arrives,
    then one ``event: status`` with the job object, then the stream ends."""
    broker = req.services.broker
    send = req.send
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]})
    disconnected = req.disconnect_watcher()
    try:
        while not disconnected.done() and not broker.closed:
            # Read the state before the chunks: chunks always precede the end of a job.
            ended = (job.final and job.settled) or job.deleted
            parts = [
                b"event: chunk\ndata: " + dumps({"output": c}) + b"\n\n"
                for c in broker.stream_take(job)
            ]
            if ended:
                view = {"id": job.id, "status": "DELETED"} if job.deleted else job_view(job)
                parts.append(b"event: status\ndata: " + dumps(view) + b"\n\n")
                await send({"type": "http.response.body", "body": b"".join(parts)})
                return
            await send({"type": "http.response.body", "body": b"".join(parts) or b": waiting\n\n",
                        "more_body": True})
            await broker.wait_change(job, 15.0)
        await send({"type": "http.response.body", "body": b""})
    finally:
        disconnected.cancel()


async def cancel(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    job = await req.services.broker.cancel(_job(req, endpoint_id))
    await send_json(req.send, {"id": job.id, "status": shown_status(job)})


async def retry(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    job = _job(req, endpoint_id)
    if job.status not in (FAILED, TIMED_OUT):
        raise ApiError(
            400, f"job {job.id} is {job.status}; only FAILED or TIMED_OUT jobs can be retried"
        )
    job = await req.services.broker.retry(job)
    await send_json(req.send, {"id": job.id, "status": job.status})


async def purge_queue(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    removed = await req.services.broker.purge(endpoint_id)
    await send_json(req.send, {"removed": removed, "status": "completed"})


async def health(req: Req) -> None:
    """``/health``: the endpoint's job counters and workers by state (``wire.health_view``)."""
    _, endpoint_id = _endpoint(req)
    services = req.services
    # A load-balancing endpoint's "jobs" are its requests (waiting, in flight, answered).
    queue = services.lb.metrics(endpoint_id) or services.broker.queue_metrics(endpoint_id)
    controller_status = services.controller.endpoint_status(endpoint_id)
    workers = services.workers.snapshot(endpoint_id)
    await send_json(req.send, health_view(queue, workers, controller_status))


async def metrics(req: Req) -> None:
    """``/metrics`` of an endpoint: its ready workers' ids and workers by state
    (``wire.metrics_view``; RunPod's Flash reads it while a request waits)."""
    _, endpoint_id = _endpoint(req)
    services = req.services
    await send_json(req.send, metrics_view(services.workers.snapshot(endpoint_id),
                                           services.controller.endpoint_status(endpoint_id)))


# -- manual workers (runplane's extension; `runplane worker run`) --------------------------


def _worker_json(view: WorkerView) -> dict[str, Any]:
    return {
        "id": view.id, "status": view.status, "desiredStatus": view.desired_status,
        "manual": view.manual, "jobs": list(view.jobs), "lastSeenAt": view.last_seen_at,
        "firstTakeAt": view.first_take_at, "reason": view.reason,
    }


async def workers(req: Req) -> None:
    """GET: list the endpoint's workers. POST: register a manual worker, answering its id,
    credential and the environment to start the handler with."""
    _, endpoint_id = _endpoint(req)
    registry = req.services.workers
    if req.method == "GET":
        await send_json(req.send, [_worker_json(v) for v in registry.snapshot(endpoint_id)])
        return
    raw = await req.body()
    body: dict[str, Any] = {}
    if raw.strip():
        from runplane.api.v2.http import parse_json

        parsed = parse_json(raw)
        if not isinstance(parsed, dict):
            raise ApiError(400, "request body must be a JSON object")
        body = parsed
    limits = req.services.limits
    limits.check(limits.registrations, client_address(req.scope),
                 "worker registrations from this address")
    gpu = body.get("gpu") or ""
    if not isinstance(gpu, str):
        raise ApiError(400, "gpu: must be a string", "gpu")
    worker_id, token = registry.register(endpoint_id, manual=True, gpu_type_id=gpu or None)
    env = registry.worker_env(endpoint_id, worker_id, token, gpu)
    answer: dict[str, Any] = {"id": worker_id, "token": token, "env": env}
    endpoint = req.services.endpoints.get(endpoint_id)
    if endpoint is not None and endpoint.load_balancer:
        # The CLI serves it through a tunnel it opens (api.lb.tunnel): what it needs to.
        answer["loadBalancer"] = {"healthCheckPath": health_path(endpoint),
                                  "tunnel": f"/v2/{endpoint_id}/workers/{worker_id}/tunnel"}
    await send_json(req.send, answer, 201)


async def worker_delete(req: Req) -> None:
    _, endpoint_id = _endpoint(req)
    registry = req.services.workers
    worker_id = req.parts[2] if len(req.parts) > 2 else ""
    w = registry.get(worker_id)
    if w is None or w.endpoint_id != endpoint_id:
        raise not_found("worker", worker_id)
    registry.retire(worker_id, "stopped by its user")
    await send_json(req.send, {"id": worker_id, "status": WorkerState.EXITED})
