"""The worker's end of a manual load-balancing worker's tunnel (``runplane worker run``).

The server never dials an address a user names, so a manual worker of a load-balancing
endpoint dials out: one WebSocket to ``/v2/{endpointId}/workers/{workerId}/tunnel`` with its
own credential (framing: ``lb.tunnel``). Over it the server sends requests, which this end
passes to the local app (``127.0.0.1:PORT``) as they arrive, many at once, streaming each
body and answer in pieces (an SSE stream goes back event by event); and it reports the app's
health check (``GET 127.0.0.1:PORT_HEALTH<HEALTH_CHECK_PATH>``) every 0.2 s until it says
200, then every second. A dropped socket is opened again until the command exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection, connect
from yarl import URL

from runplane.lb import tunnel as t

log = logging.getLogger("runplane.worker")

STARTING_S, HEALTHY_S = 0.2, 1.0
# The local app's hop-by-hop headers stay here.
_DROP = frozenset({"connection", "keep-alive", "proxy-authenticate", "trailer",
                   "transfer-encoding", "upgrade", "te", "proxy-connection"})


def free_port() -> int:
    """A free TCP port of 127.0.0.1 for the local app."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tunnel_url(base: str, endpoint_id: str, worker_id: str) -> str:
    """The tunnel's ``ws(s)://`` URL on the server at ``base`` (``http(s)://...``)."""
    scheme, _, rest = base.rstrip("/").partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/v2/{endpoint_id}/workers/" \
           f"{worker_id}/tunnel"


class _Link:
    """One open socket: the requests in flight through it (request id -> their body's
    queue and the task answering it)."""

    def __init__(self, ws: ClientConnection, session: aiohttp.ClientSession, port: int) -> None:
        self.ws = ws
        self.session = session
        self.port = port
        self.lock = asyncio.Lock()
        self.bodies: dict[int, asyncio.Queue[bytes | None]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def send(self, data: bytes) -> None:
        async with self.lock:
            await self.ws.send(data)

    def on_frame(self, frame: t.Frame) -> None:
        if frame.kind == t.HEAD:
            head = t.parse_request_head(frame.payload)
            body: asyncio.Queue[bytes | None] = asyncio.Queue()
            self.bodies[frame.rid] = body
            self.tasks[frame.rid] = asyncio.create_task(self._serve(frame.rid, head, body))
        elif frame.kind in (t.BODY, t.END):
            queue = self.bodies.get(frame.rid)
            if queue is not None:
                queue.put_nowait(frame.payload if frame.kind == t.BODY else None)
        elif frame.kind == t.CANCEL:
            task = self.tasks.get(frame.rid)
            if task is not None:
                task.cancel()
        else:
            raise t.BadFrame(f"the server does not send frames of kind {frame.kind}")

    async def _serve(self, rid: int, head: t.RequestHead, body: asyncio.Queue[bytes | None]
                     ) -> None:
        """Answer one request from the local app, streaming both ways."""

        async def stream() -> AsyncIterator[bytes]:
            while (piece := await body.get()) is not None:
                yield piece

        url = f"http://127.0.0.1:{self.port}{head.path}" + (f"?{head.query}" if head.query
                                                            else "")
        answered = False
        try:
            if not head.has_body:
                await body.get()  # its END
            async with self.session.request(
                    head.method, URL(url, encoded=True),
                    headers=head.headers, data=stream() if head.has_body else None,
                    allow_redirects=False) as resp:
                headers = [(k.decode("latin-1"), v.decode("latin-1"))
                           for k, v in resp.raw_headers if k.decode("latin-1").lower()
                           not in _DROP]
                await self.send(t.encode(t.HEAD, rid, t.response_head(
                    t.ResponseHead(resp.status, headers))))
                answered = True
                async for data in resp.content.iter_any():
                    for piece in t.chunks(data):
                        await self.send(t.encode(t.BODY, rid, piece))
            await self.send(t.encode(t.END, rid))
        except asyncio.CancelledError:
            pass  # the server's CANCEL: the caller is gone
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                if answered:
                    await self.send(t.encode(t.END, rid))  # the answer just ends
                else:
                    await self.send(t.encode(t.ERROR, rid, f"{type(err).__name__}: {err}"
                                             .encode()))
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.bodies.pop(rid, None)
            self.tasks.pop(rid, None)

    def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()


async def _health(link: _Link, session: aiohttp.ClientSession, url: str) -> None:
    """Report the local health check's status (None: no answer) until the socket closes."""
    while True:
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url, allow_redirects=False) as resp:
                status = resp.status
        await link.send(t.health(status))
        await asyncio.sleep(HEALTHY_S if status == 200 else STARTING_S)


async def serve(url: str, token: str, port: int, health_port: int, health_path: str) -> None:
    """Keep the tunnel open (again after a drop) and serve it, until cancelled."""
    health_url = f"http://127.0.0.1:{health_port}{health_path}"
    async with aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, connect=10),
            connector=aiohttp.TCPConnector(limit=0),
            # The caller's own headers only: none of aiohttp's defaults added.
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
    ) as session, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as probes:
        while True:
            try:
                async with connect(url, additional_headers={"Authorization": token},
                                   max_size=None, compression=None, proxy=None,
                                   open_timeout=10) as ws:
                    log.info("tunnel open: %s", url)
                    await _serve_socket(ws, session, probes, port, health_url)
            except websockets.exceptions.InvalidStatus as err:
                if err.response.status_code in (400, 401, 403, 404):
                    raise  # the credential or endpoint is refused: retrying cannot help
                log.warning("tunnel refused (%s); trying again", err)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as err:
                log.warning("tunnel dropped (%s); opening it again", err)
            await asyncio.sleep(1.0)


async def _serve_socket(ws: ClientConnection, session: aiohttp.ClientSession,
                        probes: aiohttp.ClientSession, port: int, health_url: str) -> None:
    link = _Link(ws, session, port)
    health = asyncio.create_task(_health(link, probes, health_url))
    try:
        async for message in ws:
            link.on_frame(t.decode(message))
    except t.BadFrame as err:
        log.warning("bad frame from the server: %s", err)
        await ws.close(1002, str(err)[:120])
    finally:
        health.cancel()
        link.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await health
