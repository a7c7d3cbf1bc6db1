"""The /v2 wire format: /health's body from the broker's and the controller's numbers."""

from __future__ import annotations

import pytest

from runplane.api.v2.wire import health_view, metrics_view, openai_sse, openai_status
from runplane.broker.models import QueueMetrics, WorkerView
from runplane.worker_state import WorkerState


def _worker(i: int, state: WorkerState) -> WorkerView:
    return WorkerView(
        id=f"w{i}", endpoint_id="ep1", status=state, desired_status="RUNNING", manual=False,
        parked=state == WorkerState.PARKED, jobs=(), created_at=0.0, first_take_at=None,
        last_seen_at=None, idle_since=None, reason=None, polling=False,
    )


QUEUE = QueueMetrics(in_queue=3, in_queue_normal=2, in_progress=1, oldest_queued_at=None,
                     completed=7, failed=2, retried=1)


def test_health_counts_workers_by_state() -> None:
    states = [WorkerState.IDLE, WorkerState.IDLE, WorkerState.RUNNING, WorkerState.INITIALIZING,
              WorkerState.UNHEALTHY, WorkerState.PARKED, WorkerState.OUTDATED]
    workers = [_worker(i, s) for i, s in enumerate(states)]
    body = health_view(QUEUE, workers, {"throttled": 2, "reason": "no GPU free"})
    assert body == {
        "jobs": {"completed": 7, "failed": 2, "inProgress": 1, "inQueue": 3, "retried": 1},
        # OUTDATED is not one of /health's keys; THROTTLED is the controller's count.
        # ready: IDLE or RUNNING (it overlaps them; RunPod's CLI reads it).
        "workers": {"idle": 2, "running": 1, "initializing": 1, "unhealthy": 1,
                    "throttled": 2, "parked": 1, "ready": 3},
        "reason": "no GPU free",
    }


def test_metrics_lists_ready_workers_and_counts_all() -> None:
    states = [WorkerState.IDLE, WorkerState.RUNNING, WorkerState.INITIALIZING,
              WorkerState.PARKED, WorkerState.UNHEALTHY]
    body = metrics_view([_worker(i, s) for i, s in enumerate(states)], {"throttled": 1})
    assert body == {"readyWorkers": ["w0", "w1"], "workers": {
        "idle": 1, "running": 1, "initializing": 1, "unhealthy": 1, "throttled": 1,
        "parked": 1, "ready": 2, "total": 5}}


@pytest.mark.parametrize(("chunk", "sse"), [
    # worker-vllm's raw SSE strings pass as they are (several events in one chunk).
    ('data: {"a": 1}\n\ndata: [DONE]\n\n', 'data: {"a": 1}\n\ndata: [DONE]\n\n'),
    ('data: {"a": 1}', 'data: {"a": 1}\n\n'),
    ({"a": 1}, 'data: {"a":1}\n\n'),
    ([{"a": 1}, 'data: {"b": 2}\n\n'], 'data: {"a":1}\n\ndata: {"b": 2}\n\n'),
    ("plain", "data: plain\n\n"),
    ([], ""),
])
def test_openai_sse(chunk: object, sse: str) -> None:
    assert openai_sse(chunk).decode() == sse


@pytest.mark.parametrize(("body", "status"), [
    ({"object": "chat.completion", "choices": []}, 200),
    ({"object": "error", "message": "bad", "code": 404}, 404),
    ({"object": "error", "message": "bad"}, 400),
    ({"error": "vLLM engine not initialized"}, 500),
    ({"error": {"message": "too long", "code": 413}}, 413),
    ({"object": "list", "data": [], "error": None}, 200),
    ("text", 200),
])
def test_openai_status(body: object, status: int) -> None:
    assert openai_status(body) == status


def test_health_without_controller_status() -> None:
    # Plain strings, as the registry stores them, count like the enum's members.
    body = health_view(QUEUE, [_worker(0, "IDLE")], {})  # type: ignore[arg-type]
    assert body["workers"]["idle"] == 1 and body["workers"]["throttled"] == 0
    assert "reason" not in body
