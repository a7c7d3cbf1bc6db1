"""The headers a load-balancing request or answer does not carry across runplane's hop to a
worker, for the proxy to a worker's address (``api.lb_proxy``) and for a manual worker's
tunnel (``api.lb_tunnel``) alike."""

from __future__ import annotations

# On every answer: the worker that served it. A worker's own is dropped, so it cannot claim
# to be another.
WORKER_HEADER = b"x-runpod-worker-id"
# Hop-by-hop headers (RFC 9110 7.6.1) and what this hop sets itself; the caller's key never
# reaches the worker; 100-continue is this hop's (uvicorn answers it as the body is read).
DROP_REQUEST = frozenset({b"connection", b"keep-alive", b"proxy-authorization", b"te",
                          b"trailer", b"transfer-encoding", b"upgrade", b"host",
                          b"authorization", b"proxy-connection", WORKER_HEADER, b"expect"})
# (``date`` and ``server``: this server's own are added to every answer.)
DROP_RESPONSE = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"trailer",
                           b"transfer-encoding", b"upgrade", b"te", b"proxy-connection",
                           b"date", b"server", WORKER_HEADER})
