"""The pure parts of taking over a container (container/adopt.py, container/follow.py): the
engine's listing, its log files' two formats, and how many lines the worker's log holds."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runplane.providers.runtimes.container.adopt import output_start, parse_ps
from runplane.providers.runtimes.container.follow import (
    Relay,
    entry_text,
    exit_code_of,
    relayed_lines,
)


def test_parse_ps_reads_podman_and_docker_states() -> None:
    # podman 4.3 prints its status as the state; docker a word.
    out = "runplane-a\tUp 3 minutes ago\nrunplane-b\tPaused\nrunplane-c\trunning\n\n"
    assert parse_ps(out) == {"runplane-a": "up 3 minutes ago", "runplane-b": "paused",
                             "runplane-c": "running"}


@pytest.mark.parametrize("driver, entry, text", [
    ("k8s-file", b"2026-12-06T22:12:00.009236015+00:00 stdout F hello world", b"hello world\n"),
    ("k8s-file", b"2026-12-06T22:12:00.009236015+00:00 stdout P partial", b"partial"),
    ("k8s-file", b"2026-12-06T22:12:00.009236015+00:00 stderr F ", b"\n"),
    ("k8s-file", b"2026-12-06T22:12:00.009236015+00:00 stdout F", b"\n"),
    ("k8s-file", b"garbage", b""),
    ("json-file", b'{"log":"hi there\\n","stream":"stdout","time":"2026-12-06T22:12:00Z"}',
     b"hi there\n"),
    ("json-file", b'{"log":"no newline","stream":"stderr"}', b"no newline"),
    ("json-file", b"not json", b""),
])
def test_entry_text(driver: str, entry: bytes, text: bytes) -> None:
    assert entry_text(driver, entry) == text


def test_relay_skips_the_lines_already_logged_even_split_across_writes() -> None:
    out = io.BytesIO()
    relay = Relay(2, out)
    for chunk in (b"one\ntw", b"o\nthr", b"ee\n", b"four\n"):
        relay.write(chunk)
    assert out.getvalue() == b"three\nfour\n"


def test_relayed_lines_counts_the_containers_lines_only() -> None:
    log = (b"--- runplane: starting w1: podman image x\n"
           b"Trying to pull x...\n")
    start = len(log)
    log += (b"ready\n--- runplane: server restarted: following container c again\n"
            b"said meanwhile\npartial")
    assert relayed_lines(io.BytesIO(log), start) == 2
    # No recorded start (an older launcher): after the last start line, pull output included.
    assert relayed_lines(io.BytesIO(log), None) == 3


def test_exit_code_of_the_engines_wait() -> None:
    assert exit_code_of("5\n") == 5 and exit_code_of("warning\n137\n") == 137
    assert exit_code_of("") is None and exit_code_of("Error: no such container\n") is None


def test_output_start_from_the_launchers_state_file(tmp_path: Path) -> None:
    state = tmp_path / "w.state"
    assert output_start(state) is None
    for text, start in (("running 1234", 1234), ("running", None), ("pulling", None)):
        state.write_text(text)
        assert output_start(state) == start
