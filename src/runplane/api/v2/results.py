"""What a worker posts (job-done, job-stream) must be JSON every reader can carry.

A worker runs its user's code, so its result is untrusted input: NaN or Infinity (which
Python's ``json`` writes by default), integers beyond 64 bits (which the store's encoder and
most clients cannot hold) and nesting past what the encoder writes back would be stored and
then break every read of the job. ``parse_result`` refuses them with ``BadResult`` (the route
answers 400 and fails the job with that message) at the cost of one ``orjson.loads`` for
ordinary results: the dearer checks run only when the raw bytes could hold the problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from runplane.api.http.errors import bad_request

# orjson writes at most 254 levels back; refusing deeper input keeps every read writable.
MAX_DEPTH = 254
# A digit run this long may be an integer past what orjson carries (-2**63 has 19 digits).
_LONG_NUMBER = re.compile(rb"\d{19,}")
# The integers orjson (and so the store) carries exactly.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class BadResult(ValueError):
    """A worker's result no reader could carry; the message says why."""


def parse_result(raw: bytes) -> Any:
    """The posted body as JSON, or ``BadResult``; an empty body is a plain 400."""
    if not raw.strip():
        raise bad_request("request body is empty; expected JSON")
    try:
        value = orjson.loads(raw)  # refuses NaN, Infinity, and nesting past 1,024 levels
    except orjson.JSONDecodeError as exc:
        raise BadResult(f"not valid JSON ({exc})") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        try:
            orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: too deep to write back
            raise BadResult(f"nested deeper than {MAX_DEPTH} levels") from None
    if _LONG_NUMBER.search(raw):
        # orjson reads an integer past 64 bits as a lossy float: find them exactly.
        try:
            json.loads(raw, parse_int=_int)
        except RecursionError:
            raise BadResult(f"nested deeper than {MAX_DEPTH} levels") from None
    return value


def _int(text: str) -> int:
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise BadResult(f"an integer beyond 64 bits ({text[:24]}...)")
    return value
