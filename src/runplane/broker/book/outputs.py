"""What a running job posts before its result: progress outputs and stream chunks.

Each counts against the job's held-bytes budgets (:mod:`runplane.broker.budget`) while memory
keeps it. A progress output replaces the last and is refused past the budgets (the job goes
on; its result is always taken). A stream chunk is never refused: past the budgets none of
the job's chunks is kept in memory any more (``Job.chunks_in_store``) and readers go to the
store, which has every one. Each returns the one write the worker's answer waits for
(``JobHandoff``); a chunk whose write failed is taken back (:meth:`Outputs.unstream`: the
worker sends it again). ``/stream``'s cursor moves here too (:meth:`Outputs.stream_handed`).
"""

from __future__ import annotations

from typing import Any

from runplane.broker import store as sql
from runplane.broker.budget import HeldBytes
from runplane.broker.models import Job
from runplane.broker.writer import Op


class Outputs:
    """The book's part for a running job's outputs; see the module docstring."""

    def __init__(self, held: HeldBytes) -> None:
        self._held = held

    def progress(self, job: Job, output: Any, size: int) -> Op | None:
        """A running job's progress output of ``size`` bytes, replacing the last: counted in
        its budgets and returned as its write; None when the budgets have no room for the
        bytes it adds (refused: nothing changed)."""
        held = self._held
        more = size - job.output_bytes
        if more > 0:
            if not held.fits(job.endpoint_id, job.user_id, more):
                return None
            held.add(job, more)
        else:
            held.release(job, -more)
        job.output = output
        job.output_bytes = size
        return (sql.PROGRESS_JOB, {"_id": job.id, "output": output})

    def stream_chunk(self, job: Job, chunk: Any, size: int) -> Op:
        """A running job's next stream chunk, ``size`` bytes: numbered, and kept in memory
        while its budgets allow. Returns its write (:meth:`unstream` if that fails)."""
        seq = job.nchunks
        job.nchunks = seq + 1
        if not job.chunks_in_store:
            held = self._held
            if held.fits(job.endpoint_id, job.user_id, size):
                job.chunks.append(chunk)
                job.chunk_bytes += size
                held.add(job, size)
            else:  # from now on its chunks are read from the store
                held.release(job, job.chunk_bytes)
                job.chunks = []
                job.chunk_bytes = 0
                job.chunks_in_store = True
        return (sql.INSERT_CHUNK, {"job_id": job.id, "seq": seq, "output": chunk})

    def unstream(self, job: Job, write: Op, size: int) -> None:
        """The chunk of ``write`` (:meth:`stream_chunk`'s, ``size`` bytes) was not stored: as
        if it never came (not acknowledged: the worker sends it again)."""
        params = write[1]
        assert params is not None
        seq, chunk = params["seq"], params["output"]
        if job.nchunks == seq + 1:
            job.nchunks = seq
        chunks = job.chunks
        # (Only a kept chunk can be the last one kept: past the budgets none is kept.)
        if chunks and chunks[-1] is chunk:
            chunks.pop()
            job.chunk_bytes -= size
            self._held.release(job, size)

    def stream_handed(self, job: Job, n: int) -> Op:
        """``/stream`` handed out ``n`` more of ``job``'s chunks (each is handed out once):
        its cursor moves; returns the cursor's write."""
        job.stream_delivered += n
        return (sql.STREAM_CURSOR, {"_id": job.id, "stream_delivered": job.stream_delivered})
