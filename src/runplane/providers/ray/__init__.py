"""The Ray provider (docs/ray.md): a Ray cluster's nodes as runplane's machines, and workers
as detached Ray actors on them.

It owns the provider itself (``provider``), the actor that runs a worker process on its node
(``actor``), the thread that keeps one call outstanding per worker (``pump``), the naming of
the actors after the server that made them (``names``) and the labelling convention that turns
a node into a machine (``nodes``). Only ``provider`` and ``pump`` import ray; this package's
``__init__`` imports nothing, so ``names`` and ``nodes`` (pure) load without it and the default
install (no Ray) never imports ray: ``providers/make.py`` imports ``provider`` only when
``provider = "ray"``.
"""
