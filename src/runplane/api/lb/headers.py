"""The headers a load-balancing request or answer does not carry across runplane's hop to a
worker, for the proxy to a worker's address (``api.lb.proxy``), its WebSockets
(``api.lb.ws``) and a manual worker's tunnel (``api.lb.tunnel``) alike."""

from __future__ import annotations

import re

# On every answer: the worker that served it. A worker's own is dropped, so it cannot claim
# to be another.
WORKER_HEADER = b"x-runpod-worker-id"
# Who the caller is, as this hop saw it: runplane sets its own X-Forwarded-For/-Proto/-Host;
# a caller's own would reach the worker beside them, a forged address it might believe.
FORWARDED = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto",
                       b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-prefix",
                       b"x-forwarded-server", b"x-real-ip"})
# Hop-by-hop headers (RFC 9110 7.6.1) and what this hop sets itself; the caller's key never
# reaches the worker; 100-continue is this hop's (uvicorn answers it as the body is read).
DROP_REQUEST = frozenset({b"connection", b"keep-alive", b"proxy-authorization", b"te",
                          b"trailer", b"transfer-encoding", b"upgrade", b"host",
                          b"authorization", b"proxy-connection", WORKER_HEADER, b"expect",
                          *FORWARDED})
# (``date`` and ``server``: this server's own are added to every answer.)
DROP_RESPONSE = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"trailer",
                           b"transfer-encoding", b"upgrade", b"te", b"proxy-connection",
                           b"date", b"server", WORKER_HEADER})

# RFC 9110 5.1 and 5.5: a token for the name; visible latin-1 text, spaces and tabs for the
# value (what uvicorn writes without refusing).
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


def answer_header(name: str, value: str) -> tuple[bytes, bytes] | None:
    """A header of a worker's answer that came as text (a manual worker's tunnel) as the
    bytes passed to the caller, or None: dropped when HTTP cannot carry it (a name that is
    no token, a value past latin-1 or with CR, LF or another control character) or this hop
    does not pass it on (``DROP_RESPONSE``)."""
    try:
        k, v = name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        return None
    if k in DROP_RESPONSE or not _NAME.fullmatch(k) or not _VALUE.fullmatch(v):
        return None
    return k, v
