"""Observability: Prometheus metrics (``metrics``), per-endpoint stats over time (``stats``),
structured logs (``logging``), fed by broker and controller events (``hub``)."""
