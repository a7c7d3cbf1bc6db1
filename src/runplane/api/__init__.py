"""HTTP layer: routers translate requests to service calls and results to RunPod's shapes."""
