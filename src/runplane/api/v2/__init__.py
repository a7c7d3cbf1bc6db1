"""The /v2 job API and worker routes, mounted as one small ASGI app.

These are the hot paths (run, job-take, job-done), so they bypass FastAPI's routing and body
models: the path is split once and dispatched from a table. ``runplane.api.app`` serves this
app beside the FastAPI one. Errors are mapped as on every surface (``api.http.errors.refusal``)
and answered in RunPod's JSON shape (``api.http.runpod_json``), as /v1's are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import Receive, Scope, Send

from runplane.api.http.body import too_large
from runplane.api.http.errors import refusal, unexpected
from runplane.api.v2 import batches, client, openai, worker
from runplane.api.v2.http import Req, send_error
from runplane.system import Services

Handler = Callable[[Req], Awaitable[None]]

# (method, operation) -> handler. The path is /{endpointId}/{operation}[/...].
ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "run"): client.run,
    ("POST", "runsync"): client.runsync,
    ("GET", "status"): client.status,
    ("POST", "status"): client.status,
    ("GET", "status-sync"): client.status_sync,
    ("POST", "status-sync"): client.status_sync,
    ("GET", "stream"): client.stream,
    ("POST", "stream"): client.stream,
    ("POST", "cancel"): client.cancel,
    ("POST", "retry"): client.retry,
    ("POST", "purge-queue"): client.purge_queue,
    ("GET", "health"): client.health,
    ("GET", "metrics"): client.metrics,
    ("GET", "workers"): client.workers,
    ("POST", "workers"): client.workers,
    ("DELETE", "workers"): client.worker_delete,
    ("GET", "job-take"): worker.job_take,
    ("GET", "job-take-batch"): worker.job_take_batch,
    ("GET", "job-stop"): worker.job_stop,
    ("POST", "job-done"): worker.job_done,
    ("POST", "job-stream"): worker.job_stream,
    ("GET", "ping"): worker.ping,
    ("GET", "openai"): openai.openai,
    ("POST", "openai"): openai.openai,
    ("POST", "batch"): batches.post,
    ("GET", "batch"): batches.get,
    ("PUT", "batch"): batches.put,
    ("DELETE", "batch"): batches.delete,
}
OPERATIONS = {op for _, op in ROUTES}
# The Allow header of a 405, per operation.
ALLOWED = {op: ", ".join(sorted(m for m, o in ROUTES if o == op)).encode() for op in OPERATIONS}


class V2App:
    """ASGI app for everything under /v2 (``runplane.api.app`` routes /v2 to it first).

    ``limit_for(path) -> bytes`` is the largest request body of a route: it refuses larger
    ones itself (413, as ``BodyLimitMiddleware`` does for /v1), so it is served with no
    middleware in front of it.
    """

    def __init__(self, services: Services, limit_for: Callable[[str], int]) -> None:
        self.services = services
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/v2/"):
            path = path[3:]
        parts = path.split("/")[1:]
        if len(parts) < 2 or not parts[0]:
            await send_error(send, 404, "no such route")
            return
        op = parts[1]
        handler = ROUTES.get((scope["method"], op))
        if handler is None:
            if op in OPERATIONS:
                await send_error(send, 405, "method not allowed on this route", None,
                                 [(b"allow", ALLOWED[op])])
            else:
                await send_error(send, 404, "no such route")
            return
        services = self.services
        # Started with the server's lifespan; an app driven without one (in-process tests)
        # starts the sweeps on its first request.
        services.broker.start()
        req = Req(scope, receive, send, services, parts)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            req.limit = limit = self.limit_for(scope["path"])
            declared = req.header(b"content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                await send_error(send, 413, too_large(limit))
                return
        try:
            await handler(req)
        except Exception as exc:  # a refusal as every surface maps it, else a bug (500)
            found = refusal(exc) or unexpected(exc, scope["method"], scope["path"])
            headers = found.headers
            await send_error(send, found.status, found.message, found.field,
                             [(k.encode("latin-1"), v.encode("latin-1"))
                              for k, v in headers.items()] if headers else None)
        finally:
            if req.release is not None:
                req.release[0].release(req.release[1])

