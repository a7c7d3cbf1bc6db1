"""Server logs: one JSON object per line (for log shippers), or plain text for a terminal.

A JSON line carries ``ts`` (UTC ISO 8601, milliseconds), ``level``, ``logger``, ``message``,
then ``job_id``, ``worker_id`` and ``endpoint_id`` when the call passed them through
``extra=``, any other ``extra=`` field, and ``exc`` with the traceback of an exception::

    log.info("job %s re-queued", job.id, extra={"job_id": job.id, "endpoint_id": ep})

``runplane serve`` hands :func:`logging_config` to uvicorn, so uvicorn's own loggers and
runplane's share one handler and one format (``log_format`` setting).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

# Ids first, in this order, so lines read alike; then any other extra field.
ID_FIELDS = ("job_id", "worker_id", "endpoint_id")
# Attributes every LogRecord has: everything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message",
}


def _ts(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(created * 1000) % 1000:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ID_FIELDS:
        value = record.__dict__.get(key)
        if value is not None:
            out[key] = value
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in out and not key.startswith("_") \
                and key not in ID_FIELDS:
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never raises on odd extra values (they become strings)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update(_extras(record))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """``2026-01-01T12:00:00.000Z INFO runplane.broker: message job_id=... worker_id=...``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_ts(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (and uvicorn's ``log_config``): one
    stderr handler in ``fmt`` ("json" or "text") for the root, uvicorn and runplane loggers."""
    formatter = "json" if fmt == "json" else "text"
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": f"{__name__}.JsonFormatter"},
            "text": {"()": f"{__name__}.TextFormatter"},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": formatter,
                        "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's loggers get no handler of their own: they reach root's, once.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            # Alembic narrates every start ("Context impl SQLiteImpl."); its warnings suffice.
            "alembic": {"level": "WARNING"},
        },
    }
