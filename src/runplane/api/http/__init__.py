"""The shared core under every HTTP surface (/v1, REST v2, GraphQL, the /v2 job API, the
load-balancing proxy): ASGI plumbing that knows no surface's routes.

It owns who a request is from (``auth``: keys, worker credentials, the caller's address),
how a route reaches the server's parts (``context``), reading a request body (``body``: whole
under a limit, or streamed), refusing bodies before they are read (``body_limit``), fast JSON
answers (``responses``) and the one mapping of errors onto statuses (``errors``: the domain
errors' status table, the API layer's own refusals, and the one installer of every surface's
error handlers, each surface saying only how a refusal looks). The surfaces import it; it
imports no surface.
"""
