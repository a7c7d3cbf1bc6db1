"""Worker routes the runpod SDK calls (PROTOCOL.md section 1).

Authenticated by the worker's own credential, sent raw in ``Authorization``; it is good
only for the worker routes of its endpoint.
"""

from __future__ import annotations

import orjson

from runplane.accelerator import REPORT_SDK, REPORT_STATE
from runplane.api.http.auth import worker_by_credential
from runplane.api.http.errors import ApiError
from runplane.api.v2.http import Req, send_empty, send_json
from runplane.api.v2.results import BadResult, parse_result
from runplane.broker.workers import Worker

_OK = b'{"status":"ok"}'


def _worker(req: Req) -> Worker:
    w = worker_by_credential(req.services, req.scope, req.header(b"authorization"),
                             req.parts[0])
    if len(req.parts) > 2:
        # Lenient about unsubstituted templates ($RUNPOD_POD_ID) and '&' glued to the segment.
        segment = req.parts[2].split("&", 1)[0]
        if segment and segment != w.id and not segment.startswith(("$", "%24")):
            raise ApiError(403, "this worker credential belongs to another worker")
    return w


async def _ok(req: Req, extra: bytes | None = None) -> None:
    data = extra or _OK
    await req.send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
    await req.send({"type": "http.response.body", "body": data})


async def job_take(req: Req) -> None:
    await _take(req, batch=False)


async def job_take_batch(req: Req) -> None:
    await _take(req, batch=True)


async def _take(req: Req, *, batch: bool) -> None:
    w = _worker(req)
    if w.accelerator is None:  # its first job-take (the URL stays the same after it)
        req.services.workers.note_accelerator(w, req.query(REPORT_STATE), req.query(REPORT_SDK))
    handoff = req.services.handoff
    n = 1
    if batch:
        raw = req.query("batch_size")
        try:
            n = int(raw) if raw else 1
        except ValueError:
            raise ApiError(400, "batch_size: must be an integer", "batch_size") from None
        n = max(1, min(n, 1000))
    await req.receive()  # the (empty) request body, so the next receive() means disconnect
    disconnect = None
    if not handoff.has_queued(w.endpoint_id):
        disconnect = req.disconnect_watcher()
    try:
        jobs = await handoff.take(w, n, handoff.hold_s, disconnect)
        if not jobs:
            if disconnect is None or not disconnect.done():
                await send_empty(req.send, 204)
            return
        if disconnect is not None and disconnect.done():
            handoff.untake(jobs, w)
            return
        if batch:
            data = orjson.dumps([j.payload for j in jobs])
        else:
            data = orjson.dumps(jobs[0].payload)
        try:
            await req.send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(data)).encode())]})
            await req.send({"type": "http.response.body", "body": data})
        except BaseException:
            handoff.untake(jobs, w)
            raise
        handoff.confirm(w, jobs)
    finally:
        if disconnect is not None:
            disconnect.cancel()


async def job_stop(req: Req) -> None:
    w = _worker(req)
    await req.receive()
    disconnect = req.disconnect_watcher()
    try:
        ids = await req.services.workers.wait_stop(w, req.services.handoff.hold_s, disconnect)
    finally:
        disconnect.cancel()
    if ids:
        await send_json(req.send, {"jobsToStop": ids})
    else:
        await send_empty(req.send, 204)


def _job_id(req: Req) -> str:
    if len(req.parts) < 4 or not req.parts[3]:
        raise ApiError(404, "job id missing from the path")
    return req.parts[3].split("&", 1)[0]


async def job_done(req: Req) -> None:
    w = _worker(req)
    job_id = _job_id(req)
    handoff = req.services.handoff
    raw = await req.body()
    try:
        body = parse_result(raw)
    except BadResult as exc:
        # Stored, it would break every read of the job: the job fails with the reason.
        message = f"the worker's result is not JSON every client can read: {exc}"
        await handoff.done(w, job_id, {"error": message}, False)
        raise ApiError(400, message) from None
    is_stream = (req.query("isStream") or "").lower() == "true"
    result = await handoff.done(w, job_id, body, is_stream, len(raw))
    await _ok(req, b'{"status":"' + result.encode() + b'"}')


async def job_stream(req: Req) -> None:
    w = _worker(req)
    job_id = _job_id(req)
    raw = await req.body()
    try:
        body = parse_result(raw)
    except BadResult as exc:
        raise ApiError(400, f"the streamed chunk is not JSON every client can read: {exc}") \
            from None
    result = await req.services.handoff.stream_chunk(w, job_id, body, len(raw))
    await _ok(req, b'{"status":"' + result.encode() + b'"}')


async def ping(req: Req) -> None:
    w = _worker(req)
    if (req.query("status") or "").lower() == "unhealthy":
        req.services.workers.report_unhealthy(w, req.query("check") or "",
                                              req.query("reason") or "")
    else:
        raw = req.query("job_id") or ""
        req.services.handoff.ping(w, [j for j in raw.split(",") if j])
    await _ok(req)
