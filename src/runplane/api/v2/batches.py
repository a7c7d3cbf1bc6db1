"""Batch job routes (RunPod's beta), ``/v2/{endpointId}/batch...``:

| route | does |
|---|---|
| ``POST /batch`` | create a DRAFT batch from an array of ``/run`` bodies |
| ``GET /batch`` | the endpoint's batches, newest first (``offset``, ``limit``) |
| ``GET /batch/{id}`` | the batch with its request counts |
| ``PUT /batch/{id}`` | rename it (``{"name": ...}``) |
| ``POST /batch/{id}/requests`` | append requests to a DRAFT batch |
| ``GET /batch/{id}/requests`` | its requests, in order (``offset``, ``limit``, ``hasMore``) |
| ``DELETE /batch/{id}/requests/{requestId}`` | remove a request of a DRAFT batch |
| ``POST /batch/{id}/finalize`` | lock it and run its requests (low priority) |
| ``POST /batch/{id}/cancel`` | cancel it |

Same key, ownership, limits and error shape as the other job routes; the rules are
``services.batches.BatchService``'s, the wire format ``batch_wire``'s.
"""

from __future__ import annotations

from runplane.api.http.errors import ApiError
from runplane.api.v2.batch_wire import (
    batch_view,
    page_view,
    parse_name,
    parse_page,
    parse_requests,
    request_view,
)
from runplane.api.v2.client import authorized_endpoint
from runplane.api.v2.http import Req, send_json


def _shape(req: Req) -> tuple[str, ...]:
    """The path after ``/batch``: (), (id,), (id, action) or (id, "requests", requestId)."""
    rest = tuple(req.parts[2:])
    if rest and not rest[-1]:
        rest = rest[:-1]  # a trailing slash
    if not all(rest) or len(rest) > 3:
        raise ApiError(404, "no such route")
    return rest


def _no_route() -> ApiError:
    return ApiError(404, "no such route")


async def post(req: Req) -> None:
    principal, endpoint_id = authorized_endpoint(req)
    service = req.services.batches
    shape = _shape(req)
    if not shape:
        requests, name = parse_requests(await req.json(), creating=True)
        batch = await service.create(endpoint_id, principal.user_id, requests, name)
    elif len(shape) == 2 and shape[1] == "requests":
        requests, _ = parse_requests(await req.json(), creating=False)
        batch = await service.append(endpoint_id, shape[0], requests)
    elif len(shape) == 2 and shape[1] == "finalize":
        await req.body()  # any body is ignored
        batch = await service.finalize(endpoint_id, shape[0])
    elif len(shape) == 2 and shape[1] == "cancel":
        await req.body()
        batch = await service.cancel(endpoint_id, shape[0])
    else:
        raise _no_route()
    await send_json(req.send, batch_view(batch))


async def get(req: Req) -> None:
    _, endpoint_id = authorized_endpoint(req)
    service = req.services.batches
    shape = _shape(req)
    if len(shape) == 1:
        await send_json(req.send, batch_view(service.get(endpoint_id, shape[0])))
        return
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != "requests"):
        raise _no_route()
    offset, limit = parse_page(req.query("offset"), req.query("limit"))
    if not shape:
        found, total = service.list(endpoint_id, offset, limit)
        body = page_view("batches", [batch_view(b) for b in found], total, offset, limit)
    else:
        requests, total = service.requests(endpoint_id, shape[0], offset, limit)
        body = page_view("requests", [request_view(r) for r in requests], total, offset, limit)
    await send_json(req.send, body)


async def put(req: Req) -> None:
    _, endpoint_id = authorized_endpoint(req)
    shape = _shape(req)
    if len(shape) != 1:
        raise _no_route()
    name = parse_name(await req.json())
    await send_json(req.send, batch_view(await req.services.batches.rename(endpoint_id,
                                                                           shape[0], name)))


async def delete(req: Req) -> None:
    _, endpoint_id = authorized_endpoint(req)
    shape = _shape(req)
    if len(shape) != 3 or shape[1] != "requests":
        raise _no_route()
    batch = await req.services.batches.remove_request(endpoint_id, shape[0], shape[2])
    await send_json(req.send, batch_view(batch))
