"""Observability: Prometheus metrics (``metrics``), per-endpoint stats over time (``stats``),
structured logs (``logging``), wired to broker and controller events (``wiring``)."""
