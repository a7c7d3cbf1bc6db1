"""Logs as Server-Sent Events (REST v2 worker and pod logs).

Each event is ``id: <ts>/<position>`` and ``data: {"ts", "source", "line"}``. ``container``
lines are the process's output file (where the provider writes it); ``system`` lines are
runplane's own record of the process (registered, started where, stopped why). The files
carry no time per line: a line already written when the stream opens has the file's
last-modified time, a later one the time it was read. The id's position (the byte offset of
the line's end, or the system event's number) is what ``Last-Event-ID`` resumes from, exactly;
an id that is a bare date-time resumes like ``since``. The stream follows the file while the
process runs and ends once it has stopped and everything is sent.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from runplane.clock import Clock, iso
from runplane.errors import Invalid

SSE_HEADERS = {"cache-control": "no-cache", "connection": "keep-alive", "x-accel-buffering": "no"}
POLL_S = 0.5
KEEPALIVE_S = 15.0
_MAX_TAIL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LogQuery:
    """What the client asked for: sources, the last ``tail`` lines, lines ``since`` (epoch
    seconds), or where a reconnect resumes."""

    sources: frozenset[str]
    tail: int
    since: float | None
    resume_offset: int | None = None
    resume_system: int | None = None


def parse_query(source: str | None, tail: int, since: str | None,
                last_event_id: str | None) -> LogQuery:
    """Check the query (400 naming the parameter) and read ``Last-Event-ID``."""
    if source not in (None, "container", "system"):
        raise Invalid("source: must be container or system", "source")
    sources = frozenset({source} if source else {"container", "system"})
    since_ts = _time(since, "since") if since else None
    offset = system = None
    if last_event_id:
        ts, _, position = last_event_id.strip().partition("/")
        if position.startswith("s") and position[1:].isdigit():
            system = int(position[1:])
            offset = 0
        elif position.isdigit():
            offset = int(position)
            system = 1 << 62
        else:
            since_ts = _time(ts, "Last-Event-ID")
    return LogQuery(sources, tail, since_ts, offset, system)


def _time(value: str, field: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{field}: {value!r} is not an RFC 3339 date-time", field) from None
    if parsed.tzinfo is None:
        raise Invalid(f"{field}: {value!r} needs a time zone (e.g. Z)", field)
    return parsed.timestamp()


def _event(ts: float, position: str, source: str, line: str) -> bytes:
    stamp = iso(ts)
    data = orjson.dumps({"ts": stamp, "source": source, "line": line})
    return b"id: " + f"{stamp}/{position}".encode() + b"\ndata: " + data + b"\n\n"


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _lines(chunk: bytes, start: int) -> tuple[list[tuple[int, str]], int]:
    """Complete lines of ``chunk`` read at ``start``: (end offset, text) each, and the offset
    up to which they were consumed (a partial last line waits for its end)."""
    out: list[tuple[int, str]] = []
    pos = 0
    while True:
        nl = chunk.find(b"\n", pos)
        if nl < 0:
            break
        out.append((start + nl + 1, chunk[pos:nl].decode("utf-8", "replace").rstrip("\r")))
        pos = nl + 1
    return out, start + pos


async def log_events(path: Path | None, system: list[tuple[float, str]], q: LogQuery,
                     running: Callable[[], bool], clock: Clock) -> AsyncIterator[bytes]:
    """The SSE stream of one process's logs (see the module docstring)."""
    if "system" in q.sources:
        picked = [(i, ts, line) for i, (ts, line) in enumerate(system)
                  if (q.resume_system is None or i > q.resume_system)
                  and (q.since is None or ts >= q.since)]
        if q.resume_system is None and q.resume_offset is None:
            picked = picked[-q.tail:] if q.tail else []
        for i, ts, line in picked:
            yield _event(ts, f"s{i:011d}", "system", line)
    if "container" not in q.sources or path is None:
        return
    offset = 0
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        stat = None
    if stat is not None:
        if q.resume_offset is not None:
            offset = min(q.resume_offset, stat.st_size)
        elif q.since is not None and stat.st_mtime < q.since:
            offset = stat.st_size
        else:
            offset = max(0, stat.st_size - _MAX_TAIL_BYTES)
        chunk = await asyncio.to_thread(_read, path, offset, stat.st_size - offset)
        lines, consumed = _lines(chunk, offset)
        if offset and q.resume_offset is None and lines:
            lines = lines[1:]  # the first line may be cut
        if q.resume_offset is None:
            lines = lines[-q.tail:] if q.tail else []
        for end, line in lines:
            yield _event(stat.st_mtime, f"{end:012d}", "container", line)
        offset = consumed
    quiet = 0.0
    while True:
        alive = running()
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            size = 0
        if size > offset:
            chunk = await asyncio.to_thread(_read, path, offset, size - offset)
            lines, offset = _lines(chunk, offset)
            now = clock.now()
            for end, line in lines:
                yield _event(now, f"{end:012d}", "container", line)
            quiet = 0.0
        if not alive:
            return
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield b": keep-alive\n\n"
