"""What a connection may hold of the server: deadlines for a request's head and body, a cap
on connections per client address, and which proxies' forwarded addresses are believed.

uvicorn arms its keep-alive timer only after a response, any byte received cancels it, and
nothing bounds a request's body, so a connection that never sends a request, sends its
headers a byte at a time or its body a byte a second is held forever: a thousand of them use
up a 1,024-descriptor limit and lock every new client out. Here:

- each connection must deliver a request's headers within ``head_timeout_s`` of being
  opened, and the next one within the keep-alive time plus that after each response; past
  it with no request in progress, it is closed;
- a request's body must come at ``body_min_bytes_per_s`` on average once ``body_grace_s``
  has passed, and be in within ``body_timeout_s``; time the server itself stops reading
  (uvicorn pauses a connection whose app has not taken the last 64 KB, and asks for an
  ``Expect: 100-continue`` body only when its app reads it) is not the client's and is not
  counted. Past either, the answer is a 408 and the connection is closed;
- an answer sent before its request's body was all received (a 401 for a missing key, a
  413) closes the connection ``body_grace_s`` later (what comes meanwhile is dropped, so
  that a client still sending can read the answer), not the keep-alive time later;
- at most ``max_connections_per_address`` connections are open from one address: a new one
  past it is answered 429 and closed without reading it. Trusted proxies are not capped
  (every client behind one shares its address: the proxy caps per client, docs/operator.md).

Requests being served (long-polls, ``/runsync``, SSE streams) are never cut: only the head
and the body are timed, never the answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import resource
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from runplane.config import Settings

# The least time a connection stays open after an answer sent before its request's body
# was all received (else body_grace_s): the rest is read and dropped meanwhile, so that a
# client still sending can finish and read the answer, which a close with its data unread
# would reset (Linux answers unread data with RST).
LINGER_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """The settings of the module docstring (``Settings``' HTTP limits)."""

    head_timeout_s: float = 10.0
    body_grace_s: float = 10.0
    body_min_bytes_per_s: float = 10_000
    body_timeout_s: float = 600.0
    max_per_address: int = 256
    trusted_proxies: tuple[str, ...] = ()
    _networks: tuple[Any, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies
                     if p != "*")
        object.__setattr__(self, "_networks", nets)

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.head_timeout_s, settings.body_grace_s,
                   settings.body_min_bytes_per_s, settings.body_timeout_s,
                   settings.max_connections_per_address, tuple(settings.trusted_proxies))

    def capped(self, address: str) -> bool:
        """Whether connections from ``address`` count against the per-address cap: all but
        the trusted proxies'."""
        if not self.max_per_address:
            return False
        if not self.trusted_proxies:
            return True
        if "*" in self.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in net for net in self._networks)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring.

    A request costs what it did (two attribute writes) plus a sum per body chunk received:
    each connection carries its head deadline (None while a request is being read or
    served), and one sweep a second per event loop times the heads and bodies of every open
    connection, so no timer is armed or cancelled per request. The per-address counts are
    kept per connection, never per request.
    """

    limits = ConnectionLimits()
    # Open connections by client address (one dict per server: ``guarded_protocol``).
    open_by_address: dict[str, int] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: float | None = self.loop.time() + self.limits.head_timeout_s
        self._body_bytes = 0
        self._body_cycle: RequestResponseCycle | None = None
        self._body_since = self._body_checked = 0.0
        self._body_base = 0
        self._address: str | None = None
        address = self.client[0] if self.client else None
        if address is not None and self.limits.capped(address):
            open_now = self.open_by_address.get(address, 0)
            if open_now >= self.limits.max_per_address:
                _answer_and_close(transport, 429, "too many connections from this address: "
                                  f"the limit is {self.limits.max_per_address}")
                return
            self.open_by_address[address] = open_now + 1
            self._address = address
        _sweep_soon(self.loop, self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_address()
        super().connection_lost(exc)

    def _release_address(self) -> None:
        address, self._address = self._address, None
        if address is not None:
            left = self.open_by_address.get(address, 1) - 1
            if left > 0:
                self.open_by_address[address] = left
            else:
                self.open_by_address.pop(address, None)

    def handle_websocket_upgrade(self) -> None:
        # The connection goes on under uvicorn's WebSocket protocol, whose connection_lost
        # is the one called at its end: it gives the address's slot back.
        super().handle_websocket_upgrade()
        if self._address is not None:
            ws = self.transport.get_protocol()
            lost = ws.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                self._release_address()
                lost(exc)

            ws.connection_lost = connection_lost  # type: ignore[method-assign]

    def on_headers_complete(self) -> None:
        self._head_deadline = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        HttpToolsProtocol.on_body(self, body)  # (no super(): a chunk's cost, on the hot path)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # answered before its body was all in
            self._head_deadline = self.loop.time() + max(LINGER_S, self.limits.body_grace_s)
        else:
            self._head_deadline = (self.loop.time() + self.timeout_keep_alive
                                   + self.limits.head_timeout_s)

    def head_overdue(self, now: float) -> bool:
        """Past its deadline with no request in progress."""
        deadline = self._head_deadline
        if deadline is None or now < deadline or self.transport.is_closing():
            return False
        return self.cycle is None or self.cycle.response_complete

    def body_overdue(self, now: float) -> bool:
        """A request's body coming too slowly, or for too long (the module docstring). Its
        clock starts at the first sweep that sees it still coming."""
        cycle = self.cycle
        if (cycle is None or not cycle.more_body or cycle.response_complete
                or self.transport.is_closing()):
            return False
        if cycle is not self._body_cycle:
            self._body_cycle = cycle
            self._body_since = self._body_checked = now
            self._body_base = self._body_bytes
            return False
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # The server stopped reading, or has not asked for the body: not the client's time.
            self._body_since += now - self._body_checked
        self._body_checked = now
        elapsed = now - self._body_since
        limits = self.limits
        if elapsed > limits.body_timeout_s:
            return True
        late = elapsed - limits.body_grace_s
        return late > 0 and self._body_bytes - self._body_base < late * limits.body_min_bytes_per_s

    def cut_body(self) -> None:
        """408 (unless an answer has begun) and close; the app reads a disconnect."""
        cycle = self.cycle
        started = cycle.response_started
        cycle.disconnected = True  # the app's own answer, if any comes, is dropped
        if started:
            self.transport.close()
        else:
            _answer_and_close(self.transport, 408, "request body too slow: send it at "
                              f"{self.limits.body_min_bytes_per_s:,.0f} bytes/s or more, within "
                              f"{self.limits.body_timeout_s:g} s")
        cycle.message_event.set()


def _answer_and_close(transport: asyncio.Transport, status: int, message: str) -> None:
    """A plain-text answer written straight to the connection, as uvicorn's own refusals
    (its 400 for a request it cannot parse), then the close."""
    reason = {408: b"Request Timeout", 429: b"Too Many Requests"}[status]
    body = message.encode()
    transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                    % (status, reason, len(body), body))
    transport.close()


# The event loops whose connections a sweep is scheduled for.
_sweeping: set[asyncio.AbstractEventLoop] = set()


def _sweep_soon(loop: asyncio.AbstractEventLoop, connections: set) -> None:
    if loop not in _sweeping:
        _sweeping.add(loop)
        loop.call_later(1.0, _sweep, loop, connections)


def _sweep(loop: asyncio.AbstractEventLoop, connections: set) -> None:
    """Close the connections past their head or body deadline; again in a second while any
    is open."""
    now = loop.time()
    for protocol in list(connections):
        if isinstance(protocol, GuardedHttpToolsProtocol):
            if protocol.head_overdue(now):
                protocol.transport.close()
            elif protocol.body_overdue(now):
                protocol.cut_body()
    if connections:
        loop.call_later(1.0, _sweep, loop, connections)
    else:
        _sweeping.discard(loop)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type("GuardedHttp", (GuardedHttpToolsProtocol,),
                {"limits": limits, "open_by_address": {}})


def http_options(settings: Settings) -> dict[str, Any]:
    """``uvicorn.Config``'s options for these settings: the guarded protocol, and forwarded
    headers believed only from the operator's ``trusted_proxies`` (uvicorn's default believes
    127.0.0.1, which every container on the host network and every local process is, so any
    of them could pose as any address to the per-address limits)."""
    proxies = list(settings.trusted_proxies)
    return {"http": guarded_protocol(ConnectionLimits.of(settings)),
            "proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


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
