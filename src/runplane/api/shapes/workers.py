"""``includeWorkers``: a live serverless worker as the spec's Pod object, with runplane's
extensions (``workerStatus``, ``reason``, ``logPath``, ``accelerator``).

Rendered from the records the controller answers (``controller/worker_pods.py``), which are
the same objects while their workers are unchanged: :class:`WorkerShapes` keeps each body as
long as its record lives, so a GET of a busy endpoint renders only the workers that changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary

from runplane.accelerator import describe
from runplane.api.shapes.pod import pod_object
from runplane.catalog.catalog import Catalog
from runplane.schemas.pod_records import WorkerRecord


def worker_pod(w: WorkerRecord, catalog: Catalog) -> dict[str, Any]:
    """One worker as a Pod object."""
    body = pod_object(w, catalog)
    body["workerStatus"] = w.worker_status  # runplane extension: RunPod's worker state name
    if w.progress:
        body["reason"] = w.progress  # runplane extension: e.g. pulling its image, 2 of 5 layers
    body["logPath"] = w.log_path
    # runplane extension: whether its SDK job loop runs accelerated (None: not known before
    # its first job-take).
    body["accelerator"] = describe(*w.accelerator) if w.accelerator else None
    return body


class WorkerShapes:
    """Workers' Pod objects, each rendered once per record (``api.app`` keeps one)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        # Keyed by the record itself (records compare by identity): a body goes when the
        # controller drops its record, for a newer state or a gone worker.
        self._bodies: WeakKeyDictionary[WorkerRecord, dict[str, Any]] = WeakKeyDictionary()

    def __call__(self, records: Iterable[WorkerRecord]) -> list[dict[str, Any]]:
        """Their Pod objects; callers must not modify them (they are reused)."""
        out = []
        for record in records:
            body = self._bodies.get(record)
            if body is None:
                body = self._bodies[record] = worker_pod(record, self._catalog)
            out.append(body)
        return out
