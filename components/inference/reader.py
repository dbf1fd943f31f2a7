"""A drop's records read with ingest's readers and preparation, whole (not cut), in reading processes.

The same source adapters (:func:`components.io.sources.iter_drop`) and the same
:func:`components.io.prepare.prepare` as ingest, at the model's rate; nothing is written to a store.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from components.io.ingest import default_sigterm
from components.io.prepare import PreparedRecord, RejectedRecord, prepare
from components.io.sources import RecordRef, iter_drop

Prepared = PreparedRecord | RejectedRecord


def read_drop(
    drop: Path, fmt: str, fs: int, *, workers: int, chunk_records: int
) -> tuple[str, Iterator[list[Prepared]]]:
    """The format read and chunks of the drop's records in order, each prepared at ``fs`` whole, or
    rejected with the reason (:class:`RejectedRecord`)."""
    chosen, refs, _ = iter_drop(drop, fmt, fs)
    jobs = ((chunk, fs) for chunk in _chunked(refs, chunk_records))
    return chosen, _prepared(jobs, workers)


def _prepared(jobs: Iterator[tuple[list[RecordRef], int]], workers: int) -> Iterator[list[Prepared]]:
    if workers <= 0:
        yield from map(_prepare_chunk, jobs)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=default_sigterm) as pool:
        yield from pool.imap(_prepare_chunk, jobs)


def _prepare_chunk(job: tuple[list[RecordRef], int]) -> list[Prepared]:
    refs, fs = job
    return [prepare(ref, fs, None) for ref in refs]


def _chunked(items: Iterator[RecordRef], size: int) -> Iterator[list[RecordRef]]:
    while chunk := list(islice(items, size)):
        yield chunk
