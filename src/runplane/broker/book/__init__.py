"""The job book: the one owner of the broker's in-memory state, and its transitions.

The book holds every queued and running job and the most recent final ones (``jobs``), the
per-endpoint queues with their counters, and each worker's holds (``Worker.jobs``; the rest
of a worker is the registry's). The invariant they keep together: a job is IN_PROGRESS with
``worker_id`` W exactly when W's holds list it; ``in_progress`` counts the jobs reserved for
or held by a worker; a job is in its queue exactly when it is IN_QUEUE and not reserved.

Nobody outside this package holds the queues or writes what the book owns of a job: its
place (queued, reserved, taken, final), its result, its progress output, its stream chunks
and cursor (tests/unit/test_broker_owners.py keeps it so). Callers go through
:class:`JobBook`, whose transitions change only this state and return what else must happen
as :class:`~runplane.broker.effects.Effects` (or, for a worker's post, the one write its
answer waits for), with no I/O but a log line, so each is tested as a table of cases with no
writer, registry or event loop (tests/unit/test_book.py). Time is a parameter.

- :mod:`.transitions`: :class:`JobBook`, the transitions of a job's life.
- :mod:`.places`: where each job is (its queue, its reservation for a job-take, its
  worker's holds) and the steps between, the job-take's own step (``reserve``) among them.
- :mod:`.outputs`: what a running job posts before its result: progress, stream chunks,
  and ``/stream``'s cursor, counted in the held-bytes budgets (:mod:`runplane.broker.budget`).
- :mod:`.queues`: the per-endpoint queues and the long-polls waiting on them; they only
  order.
"""

from runplane.broker.book.transitions import RECENT_FINAL_JOBS, RESULT_CACHE_BYTES, JobBook

__all__ = ["RECENT_FINAL_JOBS", "RESULT_CACHE_BYTES", "JobBook"]
