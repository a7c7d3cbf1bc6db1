"""Connections that send nothing are closed: a deadline for every request's head.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it,
so a connection that never sends a request (or sends its headers a byte at a time) is held
forever: a thousand of them use up a 1,024-descriptor limit and lock every new client out.
Here each connection must deliver a request's headers within ``head_timeout_s`` of being
opened, and the next one within the keep-alive time plus that after each response; a
connection past its deadline with no request in progress is closed (within a second). Requests being served
(long-polls, ``/runsync``, SSE streams) are never cut.
"""

from __future__ import annotations

import asyncio
import resource

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head deadline of the module docstring.

    A request costs two attribute writes: each connection carries its deadline (None while a
    request is being read or served), and one sweep a second per event loop closes the
    connections past theirs, so no timer is armed or cancelled per request.
    """

    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: float | None = self.loop.time() + self.head_timeout_s
        _sweep_soon(self.loop, self.connections)

    def on_headers_complete(self) -> None:
        self._head_deadline = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_deadline = self.loop.time() + self.timeout_keep_alive + self.head_timeout_s

    def head_overdue(self, now: float) -> bool:
        """Past its deadline with no request in progress."""
        deadline = self._head_deadline
        if deadline is None or now < deadline or self.transport.is_closing():
            return False
        return self.cycle is None or self.cycle.response_complete


# The event loops whose connections a sweep is scheduled for.
_sweeping: set[asyncio.AbstractEventLoop] = set()


def _sweep_soon(loop: asyncio.AbstractEventLoop, connections: set) -> None:
    if loop not in _sweeping:
        _sweeping.add(loop)
        loop.call_later(1.0, _sweep, loop, connections)


def _sweep(loop: asyncio.AbstractEventLoop, connections: set) -> None:
    """Close the connections past their head deadline; again in a second while any is open."""
    now = loop.time()
    for protocol in list(connections):
        if isinstance(protocol, GuardedHttpToolsProtocol) and protocol.head_overdue(now):
            protocol.transport.close()
    if connections:
        loop.call_later(1.0, _sweep, loop, connections)
    else:
        _sweeping.discard(loop)


def guarded_protocol(head_timeout_s: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this head deadline."""
    return type("GuardedHttp", (GuardedHttpToolsProtocol,), {"head_timeout_s": head_timeout_s})


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open descriptors to its hard limit (a systemd unit's
    default soft limit is 1,024); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft
