"""Printing for the client commands: rich tables for people, ``--json`` for scripts, and a
spinner on stderr for anything that waits (only on a terminal, so pipes stay clean)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# A column: (header, key in the object, or a function of the object).
Column = tuple[str, str | Callable[[dict[str, Any]], Any]]


def print_json(data: Any) -> None:
    """Plain, indented JSON on stdout: no colour, no wrapping, safe to pipe into ``jq``."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    """One value as table text."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _get(row: dict[str, Any], key: str | Callable[[dict[str, Any]], Any]) -> Any:
    return key(row) if callable(key) else row.get(key)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], title: str | None = None) -> None:
    """Print ``rows`` as a table with ``columns``; an empty list says so."""
    if not rows:
        err.print(f"no {title or 'results'}")
        return
    t = Table()
    for i, (header, _) in enumerate(columns):
        # Ids are what people copy: never cut or wrapped; other columns fold.
        if i == 0 or header in ("id", "worker", "template", "machine"):
            t.add_column(header, no_wrap=True, overflow="ignore")
        else:
            t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(cell(_get(row, key)) for _, key in columns))
    out.print(t)


def details(obj: dict[str, Any], skip: Sequence[str] = ()) -> None:
    """Print one object as a two-column (field, value) table."""
    t = Table("field", "value", show_header=False)
    for key, value in obj.items():
        if key not in skip:
            t.add_row(key, cell(value))
    out.print(t)


def show(data: Any, as_json: bool, columns: Sequence[Column] | None = None,
         title: str | None = None) -> None:
    """``--json``: the server's JSON as is; otherwise a table (list) or field table (object)."""
    if as_json:
        print_json(data)
    elif isinstance(data, list):
        table(data, columns or [(k, k) for k in (data[0] if data else {})], title)
    elif isinstance(data, dict):
        details(data)
    else:
        out.print(cell(data))


def done(message: str) -> None:
    """A short confirmation for people (stderr, so stdout stays for data)."""
    err.print(message, highlight=False)


def progress(message: str) -> None:
    """A progress note for a person watching (stderr, only on a terminal)."""
    if err.is_terminal:
        err.print(message, highlight=False)


@contextlib.contextmanager
def waiting(message: str) -> Iterator[Status | None]:
    """A spinner on stderr while the block runs; nothing when stderr is not a terminal."""
    if not err.is_terminal:
        yield None
        return
    with err.status(message) as status:
        yield status
