"""Server log formats: one JSON object per line with ids from ``extra=``, or text."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import orjson
import pytest

from runplane.observability.logging import JsonFormatter, TextFormatter, logging_config


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("runplane.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_object_per_line_with_ids(captured: tuple) -> None:
    logger, stream, _ = captured
    logger.info("job %s re-queued\nsecond line", "j1",
                extra={"job_id": "j1", "worker_id": "w1", "endpoint_id": "e1", "retry": 2})
    logger.warning("plain")
    first, second = lines(stream)
    assert list(first)[:7] == ["ts", "level", "logger", "message", "job_id", "worker_id",
                               "endpoint_id"]
    assert first["level"] == "info" and first["logger"] == "runplane.test.json"
    assert first["message"] == "job j1 re-queued\nsecond line"  # escaped: still one line
    assert (first["job_id"], first["worker_id"], first["endpoint_id"]) == ("j1", "w1", "e1")
    assert first["retry"] == 2
    assert first["ts"].endswith("Z") and len(first["ts"]) == len("2026-01-01T00:00:00.000Z")
    assert set(second) == {"ts", "level", "logger", "message"} and second["level"] == "warning"


def test_exceptions_and_odd_values(captured: tuple) -> None:
    logger, stream, _ = captured
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed", extra={"endpoint_id": "e1", "obj": object(), "n": {1: 2}})
    (line,) = lines(stream)
    assert line["level"] == "error" and line["endpoint_id"] == "e1"
    assert "ValueError: bad value" in line["exc"]
    assert line["obj"].startswith("<object object") and line["n"] == {"1": 2}


def test_text_format_appends_ids() -> None:
    record = logging.LogRecord("runplane.broker", logging.INFO, __file__, 1, "job %s done",
                               ("j1",), None)
    record.job_id = "j1"
    text = TextFormatter().format(record)
    assert text.endswith(" INFO runplane.broker: job j1 done job_id=j1")


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_logging_config_applies(fmt: str, formatter: type) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logging.config.dictConfig(logging_config(fmt, "warning"))
        (handler,) = root.handlers
        assert isinstance(handler.formatter, formatter)
        assert root.level == logging.WARNING
        assert logging.getLogger("uvicorn.error").handlers == []
        assert logging.getLogger("uvicorn.error").propagate
        assert logging.getLogger("alembic").level == logging.WARNING
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
