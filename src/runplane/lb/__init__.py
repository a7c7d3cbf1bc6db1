"""Load-balancing endpoints: client HTTP requests sent straight to workers' HTTP servers.

Pure decisions (``affinity``: RunPod's ``X-Runpod-Worker-Id`` header; ``balance``: which
worker takes a request; ``health``: what a health check's answer means) beside the state
that acts on them (``pool.LoadBalancer``: which workers are routable, their requests in
flight, requests waiting for a worker; ``prober.HealthProber``: the health checks;
``demand.Demand``: the waiting and in-flight requests as the controller's scaling input).
The HTTP proxy itself is ``runplane.api.lb.proxy`` (docs/load-balancing.md).
"""
