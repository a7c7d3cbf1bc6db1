"""The job book's shared records have one owner (issue 24): a job's place (queued, reserved
for a job-take, taken, final), its result, its progress output and its stream chunks and
cursor are written only inside ``broker/book/`` (the book's transitions and their parts), and
nobody outside that package holds the queues (so nobody else can reserve, pop or put back a
job: they go through ``JobBook``'s transitions). The byte counts of the held-bytes budgets
are ``broker/budget.py``'s; ``settled`` is also set by the applier once a final job's write
committed. Read from the source, like tests/unit/test_layers.py."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "runplane"
BOOK = "broker/book/"

# Each owned field of a broker Job -> where it may be written (a folder ends in "/").
OWNERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys((
        # its place
        "status", "worker_id", "started_at", "finished_at", "retain_until", "retries",
        "reserved", "reserved_by", "queued", "qseq", "deleted", "missing_since",
        # its result and progress output
        "output", "error", "output_bytes",
        # its stream
        "chunks", "chunk_bytes", "nchunks", "chunks_in_store", "stream_delivered",
    ), (BOOK,)),
    "held": ("broker/budget.py",),
    "cached": ("broker/budget.py",),
    "settled": (BOOK, "broker/effects.py"),
}
# The simulator's jobs are its own records (simulate.world.SimJob), not the broker's.
NOT_BROKER_JOBS = ("simulate/",)

_FIELD = "|".join(sorted(OWNERS, key=len, reverse=True))
# An assignment (plain or augmented) to an owned field of a name that holds a job ("job",
# "self.job", "old_job", "j"), or a change of its chunk list in place.
WRITE = re.compile(rf"\b(?:\w*job|j)\s*\.\s*({_FIELD})\s*(?:\[[^\]]*\]\s*)?[-+]?=(?!=)"
                   rf"|\b(?:\w*job|j)\s*\.\s*(chunks)\s*\.\s*"
                   rf"(?:append|extend|insert|pop|remove|clear)\s*\("
                   rf"|\bdel\s+(?:\w*job|j)\s*\.\s*(chunks)\s*\[")
# Reaching the queues (or the book's part that holds them) from outside the book: through
# the book, by importing them, or by calling a queue's mutating method. (The controller's
# ``queues`` is another thing: its port onto the broker's read side, controller/ports.py.)
QUEUES = re.compile(r"book\s*\.\s*_?(?:queues|places)\b"
                    r"|runplane\.broker\.(?:queues|book\.queues|book\.places)\b"
                    r"|\bqueues\s*\.\s*(?:push|pop|remove|add|drop|take|park|wait|release"
                    r"|release_all|prune_waiters)\s*\(")


def _sources() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text()
            for p in sorted(PACKAGE.rglob("*.py"))}


def _writes(text: str) -> list[tuple[str, str]]:
    """(field, line) for each write ``WRITE`` finds."""
    return [(next(g for g in m.groups() if g), line.strip())
            for line in text.splitlines() for m in WRITE.finditer(line)]


def _owns(name: str, field: str) -> bool:
    return any(name.startswith(o) if o.endswith("/") else name == o for o in OWNERS[field])


def test_only_their_owners_write_a_jobs_fields() -> None:
    found = {name: bad for name, text in _sources().items()
             if not name.startswith(NOT_BROKER_JOBS)
             and (bad := [line for field, line in _writes(text) if not _owns(name, field)])}
    assert found == {}, "go through the book's transitions (JobBook.reserve, progress, " \
                        "stream_chunk, stream_handed, ...)"


def test_nobody_but_the_book_holds_the_queues() -> None:
    found = {name: hits for name, text in _sources().items()
             if not name.startswith(BOOK)
             and (hits := [line.strip() for line in text.splitlines() if QUEUES.search(line)])}
    assert found == {}, "reserve, put back and read through JobBook, never its queues"


def test_each_owner_writes_what_it_owns() -> None:
    """The scan is not vacuous: every owned field is found written by its owner."""
    written = {(field, owner) for name, text in _sources().items()
               for field, _ in _writes(text) for owner in OWNERS[field] if _owns(name, field)
               and (name.startswith(owner) if owner.endswith("/") else name == owner)}
    missing = {(f, o) for f, owners in OWNERS.items() for o in owners} - written
    assert missing == set()


def test_the_checks_find_one() -> None:
    assert _writes("        job.output = output") == [("output", "job.output = output")]
    assert [f for f, _ in _writes("        job.output = job.error = None")] == ["output", "error"]
    assert _writes("        job.nchunks += 1") != []
    assert _writes("            job.chunks.append(chunk)") != []
    assert _writes("                job.chunks.pop()") != []
    assert _writes("            j.stream_delivered += len(new)") != []
    assert _writes("    self.job.reserved_by = worker.id") != []
    assert _writes("    if job.output == other:") == []
    assert _writes("    out = job.chunks[start:]") == []
    assert _writes("    worker.status = RUNNING") == []
    assert QUEUES.search("        return self._book.queues.has_queued(endpoint_id)")
    assert QUEUES.search("        book._places.queue(job)")
    assert QUEUES.search("from runplane.broker.queues import JobQueues")
    assert QUEUES.search("from runplane.broker.book.places import Places")
    assert not QUEUES.search("from runplane.controller.ports import JobQueues, UsageRecorder")
    assert QUEUES.search("        self.queues.push(job, front=True)")
    assert not QUEUES.search("        m = self.queues.queue_metrics(ep.id)")
    assert not QUEUES.search("        self.queues.add_enqueue_listener(self.on_enqueue)")
