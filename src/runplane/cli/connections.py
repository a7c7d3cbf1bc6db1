"""Connections that send nothing are closed: a deadline for every request's head.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it,
so a connection that never sends a request (or sends its headers a byte at a time) is held
forever: a thousand of them use up a 1,024-descriptor limit and lock every new client out.
Here each connection must deliver a request's headers within ``head_timeout_s`` of being
opened, and the next one within the keep-alive time plus that after each response; a
connection past its deadline with no request in progress is closed. Requests being served
(long-polls, ``/runsync``, SSE streams) are never cut.
"""

from __future__ import annotations

import asyncio
import resource

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head deadline of the module docstring."""

    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.head_timeout_s, self._head_overdue)

    def on_headers_complete(self) -> None:
        deadline = self._head_deadline
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(
                self.timeout_keep_alive + self.head_timeout_s, self._head_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        deadline = self._head_deadline
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def _head_overdue(self) -> None:
        self._head_deadline = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy and not self.transport.is_closing():
            self.transport.close()


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
