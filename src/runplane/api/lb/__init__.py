"""The load-balancing endpoints' HTTP surface: ``/lb/{endpointId}/...`` (and
``{endpointId}.<base_domain>``) proxied to a worker's own HTTP server.

It owns the wire side of load balancing: the proxy's checks and its streamed forwarding
(``proxy``), its HTTP/1.1 keep-alive client to the workers (``client``), the headers that are
one hop's only (``headers``), WebSockets relayed to a worker (``ws``), the server's end of a
manual worker's tunnel (``tunnel``), the processing limit swept once a second (``deadlines``)
and a small answer written in one piece (``one_write``).

Not to be confused with the top-level ``runplane.lb`` package below ``api`` (imports are
absolute, so the two never clash): that one decides and keeps the state — which workers are
routable, which takes a request, the health checks, the waiting requests as demand — and
knows nothing of HTTP; this one only carries the bytes (docs/load-balancing.md).
"""
