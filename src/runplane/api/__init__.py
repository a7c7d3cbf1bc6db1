"""HTTP layer: a package per surface over one shared core (docs/architecture.md).

``app`` routes each request to its surface: ``v1`` (REST v1), ``rest_v2``, ``graphql``, ``v2``
(the job API and worker routes), ``lb`` (the load-balancing proxy). ``shapes`` renders RunPod's
JSON of pods and workers for all of them; ``http`` is the ASGI plumbing they share (auth, the
body reader, body limits, the one mapping of errors onto statuses). Routers only translate:
requests to service calls, results to RunPod's shapes.
"""
