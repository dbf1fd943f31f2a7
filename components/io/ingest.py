"""``ecgops ingest``: a hospital drop in, new records appended to the canonical store.

Records stream through a process pool (read → canonicalise → hash) and straight into a new signal
shard, so memory does not grow with the drop. Records are identified by content hash: one already in
the store (or earlier in the same drop) is counted as a duplicate and not stored again. Broken records
go to the quarantine with file and reason, and the run goes on.

The per-record work (read → decode → resample → hash, :func:`prepare_chunks`) can also run somewhere
else: pass a :class:`~components.io.sharding.Sharding`, whose ordered ``map`` runs :func:`prepare_chunks`
on shards of chunk jobs — the flows pass one that runs each shard as a Prefect task on the run's Dask
cluster. This process stays the single writer either way: it reserves the shard slots, consumes the
prepared chunks in order, deduplicates and writes manifest and quarantine, so the store is the same
whichever runs the work.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import hashlib
import hmac
import json
import multiprocessing
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from components.config import IngestParams
from components.io.leads import N_LEADS
from components.io.prepare import PreparedRecord, RejectedRecord, prepare
from components.io.sharding import Sharding
from components.io.sources import RecordRef, iter_drop
from components.io.store import (
    MANIFEST_COLUMNS,
    QUARANTINE_COLUMNS,
    DatasetStore,
    ShardWriter,
    StagedFiles,
    StoreError,
    StoreInfo,
    create_store,
    manifest_with,
    remove_orphan_copies,
    remove_orphan_shards,
    write_slot,
)
from components.workspace import Workspace

SPLITS = ("train", "val", "test")

#: one chunk of work: the records, target rate and length, patient salt, and the reserved shard slot
ChunkJob: TypeAlias = tuple[list[RecordRef], int, int, bytes, str, int]
QUARANTINE = "quarantine.parquet"
_JSON = json.JSONEncoder(sort_keys=True)  # the manifest's labels/annotations text (one encoder, reused)
T = TypeVar("T")


@dataclass
class IngestSummary:
    """What one ingest did. ``version`` is filled when the store was versioned with DVC."""

    dataset: str
    drop: str
    format: str
    ingest_id: str
    seen: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    rows_without_signals: int = 0
    elapsed_s: float = 0.0
    store: str = ""
    quarantine_reasons: list[dict[str, str]] = field(default_factory=list)
    duplicate_records: list[dict[str, str]] = field(default_factory=list)
    split_counts: dict[str, int] = field(default_factory=dict)
    version: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        return self.ingested > 0 or self.quarantined > 0

    @property
    def records_per_s(self) -> float:
        return self.seen / self.elapsed_s if self.elapsed_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["records_per_s"] = round(self.records_per_s, 1)
        payload["changed"] = self.changed
        return payload


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest runs, apart from what it ingests: ``progress``: a progress bar; ``sharding``: prepare
    the records in shards elsewhere (default: a fork pool of ``ingest.workers`` processes here)."""

    progress: bool = True
    sharding: Sharding[list[ChunkJob], list[PreparedChunk]] | None = None


def ingest(
    workspace: Workspace,
    drop: Path,
    *,
    dataset: str | None = None,
    fmt: str = "auto",
    options: IngestOptions = IngestOptions(),
) -> IngestSummary:
    """Ingest ``drop`` into ``data/<dataset>`` of the workspace as its ``params.ingest`` say; see the
    module docstring.

    Without ``options.sharding`` the records are prepared in a fork pool of ``params.workers`` processes;
    with it, in shards of about ``sharding.records`` records (whole chunks of ``params.chunk_records``)
    that ``sharding.map`` runs. Its workers must see the workspace's filesystem: they write their records'
    signals into the shard slots this process reserved for them.
    """
    params = workspace.params.ingest
    dataset = workspace.dataset(dataset)
    root = workspace.store_dir(dataset)
    info = StoreInfo(fs=params.target_fs, n_samples=round(params.target_fs * params.target_duration_s))
    started = time.perf_counter()
    lock = workspace.state_dir / "locks" / f"ingest-{dataset}.lock"
    with _dataset_lock(lock), _disk_full_is_a_store_error(root):
        chosen, refs, counts = iter_drop(drop, fmt, params.target_fs)  # a bad drop creates no store
        store = _open_or_create(root, info)
        remove_orphan_shards(root, store.manifest)
        remove_orphan_copies(root, store.quarantine)
        summary = IngestSummary(
            dataset=dataset,
            drop=str(drop),
            format=chosen,
            ingest_id=_new_ingest_id(),
            rows_without_signals=counts.get("rows_without_signals", 0),
            store=str(root),
        )
        staged = _write(workspace, store, refs, summary, drop, options)
        staged.publish()  # renames only: nothing left to fail for want of space
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _write(
    workspace: Workspace,
    store: DatasetStore,
    refs: Iterator[RecordRef],
    summary: IngestSummary,
    drop: Path,
    options: IngestOptions,
) -> StagedFiles:
    """Prepare the drop's records into new shards of ``store``, deduplicate them and stage manifest,
    quarantine and ingest log (:func:`_stage`). A failure discards the new shards and quarantine copies."""
    params, root, target_samples = workspace.params.ingest, store.root, store.info.n_samples
    writer = ShardWriter(
        root,
        target_samples,
        params.shard_max_records,
        slot_records=params.chunk_records,
        flush_while_writing=True,
    )
    try:
        with _gc_frozen():
            salt = workspace.settings.resolved_patient_salt()
            chunks = (
                _prepared(refs, params, target_samples, salt, writer)
                if options.sharding is None
                else _prepared_in_shards(refs, params, target_samples, salt, writer, options.sharding)
            )
            now = datetime.now(UTC)
            progress = options.progress
            new, quarantine_rows = _consume(chunks, store, writer, summary, params, drop, now, progress)
        writer.close()
        return _stage(root, store, new, quarantine_rows, summary, now)
    except BaseException:
        writer.discard()
        remove_orphan_copies(root, store.quarantine)
        raise


#: manifest columns a worker fills per record (the parent adds split, shard and ingest fields)
RECORD_COLUMNS: tuple[str, ...] = tuple(
    c for c in MANIFEST_COLUMNS if c not in {"split", "shard", "shard_index", "ingest_id", "ingested_at"}
)


@dataclass
class PreparedChunk:
    """A worker's result for a chunk: the manifest values of its accepted records and the rejects.

    Values travel column-wise (one list per manifest column, in slot order), which pickles and becomes
    Arrow much faster than a dict per record. The accepted records' signals are already in the chunk's
    reserved slot of a shard (``shard``, ``first``), written by the worker itself: nothing large
    travels back through the pool.
    """

    columns: dict[str, list[Any]]  # RECORD_COLUMNS → values
    fixed_splits: list[str | None]  # the split the source prescribes (PTB-XL folds), else None
    rejected: list[RejectedRecord]
    shard: str
    first: int

    @property
    def n_accepted(self) -> int:
        return len(self.fixed_splits)


def _consume(
    chunks: Iterable[PreparedChunk],
    store: DatasetStore,
    writer: ShardWriter,
    summary: IngestSummary,
    params: IngestParams,
    drop: Path,
    now: datetime,
    progress: bool,
) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """New records' manifest columns (deduplicated by content hash, split assigned, packed into the
    shards) and the new quarantine rows."""
    known_hashes = set(store.manifest["content_hash"]) if len(store) else set()
    known_quarantine = _quarantine_keys(store.quarantine)
    patient_split = (
        dict(zip(store.manifest["patient_key"], store.manifest["split"], strict=True)) if len(store) else {}
    )
    new: dict[str, list[Any]] = {name: [] for name in (*RECORD_COLUMNS, "split", "shard", "shard_index")}
    quarantine_rows: list[dict[str, Any]] = []
    bar = tqdm(desc=f"ingest {summary.dataset}", unit="rec", disable=not progress or None)
    for chunk in chunks:
        summary.seen += chunk.n_accepted + len(chunk.rejected)
        bar.update(chunk.n_accepted + len(chunk.rejected))
        for rejected in chunk.rejected:
            row = _quarantine_row(rejected, store.root, drop, summary.ingest_id, now)
            key = (row["source_record"], row["file_sha256"], row["reason"])
            if key not in known_quarantine:
                known_quarantine.add(key)
                quarantine_rows.append(row)
                summary.quarantined += 1
                summary.quarantine_reasons.append({"record": row["source_record"], "reason": row["reason"]})
        columns = chunk.columns
        keep: list[int] = []
        for position, (content_hash, patient_key, fixed_split) in enumerate(
            zip(columns["content_hash"], columns["patient_key"], chunk.fixed_splits, strict=True)
        ):
            if content_hash in known_hashes:
                summary.duplicates += 1
                summary.duplicate_records.append(
                    {
                        "record": columns["source_record"][position],
                        "record_id": columns["record_id"][position],
                    }
                )
                continue
            known_hashes.add(content_hash)
            split = patient_split.setdefault(patient_key, fixed_split or hash_split(patient_key, params))
            new["split"].append(split)
            summary.split_counts[split] = summary.split_counts.get(split, 0) + 1
            keep.append(position)
        for name in RECORD_COLUMNS:
            values = columns[name]
            new[name].extend(values if len(keep) == len(values) else [values[i] for i in keep])
        for shard, index in writer.commit(chunk.shard, chunk.first, keep):
            new["shard"].append(shard)
            new["shard_index"].append(index)
        summary.ingested += len(keep)
    bar.close()
    return new, quarantine_rows


def _stage(
    root: Path,
    store: DatasetStore,
    new: dict[str, list[Any]],
    quarantine_rows: list[dict[str, Any]],
    summary: IngestSummary,
    now: datetime,
) -> StagedFiles:
    """Manifest, quarantine and ingest log as they will be, written beside the live files (nothing when
    nothing changed); renaming them into place commits the ingest. A failure removes what was staged."""
    staged = StagedFiles()
    try:
        if new["record_id"]:
            common = {"ingest_id": summary.ingest_id, "ingested_at": now}
            staged.table(manifest_with(root, new, common), root / "manifest.parquet")
        if quarantine_rows:
            frame = pd.DataFrame(quarantine_rows, columns=list(QUARANTINE_COLUMNS))
            old = store.quarantine
            staged.frame(
                frame if len(old) == 0 else pd.concat([old, frame], ignore_index=True), root / QUARANTINE
            )
        if summary.changed:
            log = {k: v for k, v in summary.to_dict().items() if k not in {"duplicate_records", "version"}}
            path = root / "ingests.jsonl"
            earlier = path.read_text() if path.is_file() else ""
            staged.text(path, earlier + json.dumps(log, sort_keys=True, default=str) + "\n")
    except BaseException:
        staged.abandon()
        raise
    return staged


@contextmanager
def _disk_full_is_a_store_error(root: Path) -> Iterator[None]:
    """A full disk becomes a :class:`StoreError` that says so and that the store was left unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise StoreError(
            f"no space left on the device holding {root} while ingesting: the ingest was abandoned and "
            "the store is as it was before it (manifest, shards and quarantine unchanged); free some "
            f"space and run it again ({exc})"
        ) from exc


def _jobs(
    refs: Iterator[RecordRef], params: IngestParams, target_samples: int, salt: bytes, writer: ShardWriter
) -> Iterator[ChunkJob]:
    """Chunks of records, each with the shard slot reserved for it (reserved as the jobs are taken)."""
    return (
        (chunk, params.target_fs, target_samples, salt, *writer.reserve())
        for chunk in _chunked(refs, params.chunk_records)
    )


def _prepared(
    refs: Iterator[RecordRef], params: IngestParams, target_samples: int, salt: bytes, writer: ShardWriter
) -> Iterator[PreparedChunk]:
    """Prepare chunks of records in a process pool (order preserved, so the store is deterministic)."""
    jobs = _jobs(refs, params, target_samples, salt, writer)
    if params.workers <= 1:
        yield from map(_prepare_chunk, jobs)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(params.workers, initializer=default_sigterm) as pool:
        yield from pool.imap(_prepare_chunk, jobs)


def _prepared_in_shards(
    refs: Iterator[RecordRef],
    params: IngestParams,
    target_samples: int,
    salt: bytes,
    writer: ShardWriter,
    sharding: Sharding[list[ChunkJob], list[PreparedChunk]],
) -> Iterator[PreparedChunk]:
    """Prepare shards of whole chunks with ``sharding.map`` and yield their chunks in order."""
    jobs = _jobs(refs, params, target_samples, salt, writer)
    per_shard = max(1, sharding.records // params.chunk_records)
    for prepared in sharding.map(prepare_chunks, _chunked(jobs, per_shard)):
        yield from prepared


def prepare_chunks(jobs: list[ChunkJob]) -> list[PreparedChunk]:
    """A shard's work, wherever it runs: prepare each chunk (its signals go into its reserved slot)."""
    return [_prepare_chunk(job) for job in jobs]


def default_sigterm() -> None:
    """Pool initializer: the parent's SIGTERM handler (Prefect's raises ``TerminationSignal``) must not
    run in a worker, which the pool terminates with SIGTERM at shutdown."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_local = threading.local()


def _reused_buffer(n_records: int, n_samples: int) -> np.ndarray:
    """A per-thread ``(n, 12, samples)`` buffer reused across chunks: touching fresh pages for every
    chunk cost ~90 µs per record on this VM, a third of the whole preparation. Per thread, because a
    Dask worker may run several shards at once."""
    buffer: np.ndarray | None = getattr(_local, "buffer", None)
    if buffer is None or buffer.shape != (n_records, N_LEADS, n_samples):
        _local.buffer = None  # free the old buffer before allocating the new one
        buffer = _local.buffer = np.zeros((n_records, N_LEADS, n_samples), dtype=np.float32)
    return buffer


def _prepare_chunk(job: ChunkJob) -> PreparedChunk:
    refs, target_fs, target_samples, salt, shard, first = job
    signals = _reused_buffer(len(refs), target_samples)
    chunk = PreparedChunk({name: [] for name in RECORD_COLUMNS}, [], [], shard, first)
    for ref in refs:
        result = prepare(ref, target_fs, target_samples, out=signals[chunk.n_accepted])
        if isinstance(result, RejectedRecord):
            chunk.rejected.append(result)
            continue
        for name, value in zip(RECORD_COLUMNS, _manifest_values(result, salt), strict=True):
            chunk.columns[name].append(value)
        chunk.fixed_splits.append(result.meta.split)
    write_slot(shard, first, signals[: chunk.n_accepted])
    return chunk


def _chunked(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk


def record_id(content_hash: str) -> str:
    """The stable record id: the first 16 hex digits of the content hash."""
    return content_hash[:16]


def pseudonymize(salt: bytes, source: str, patient_id: str) -> str:
    """Salted keyed hash of a raw patient id; the raw id never reaches the store."""
    return hmac.new(salt, f"{source}|{patient_id}".encode(), hashlib.sha256).hexdigest()[:20]


def hash_split(patient_key: str, params: IngestParams) -> str:
    """Deterministic patient-level split from the pseudonymized key (for sources without folds)."""
    bucket = int(patient_key[:8], 16) % params.hash_buckets
    if bucket in params.test_buckets:
        return "test"
    if bucket in params.val_buckets:
        return "val"
    return "train"


def _manifest_values(record: PreparedRecord, salt: bytes) -> tuple[Any, ...]:
    """A prepared record's values of :data:`RECORD_COLUMNS`, in that order."""
    meta, ref = record.meta, record.ref
    return (
        record_id(record.content_hash),
        record.content_hash,
        pseudonymize(salt, ref.source, meta.patient_id or ref.source_record),
        ref.source,
        meta.site,
        meta.device,
        ref.source_record,
        record.fs_original,
        record.n_samples_original,
        record.units_original,
        record.storage_format,
        record.lead_mask.tolist(),
        record.n_valid_samples,
        meta.age,
        meta.sex,
        meta.report,
        _JSON.encode(meta.labels),
        meta.label_system,
        _JSON.encode(meta.annotations),
    )


def _quarantine_row(
    rejected: RejectedRecord, root: Path, drop: Path, ingest_id: str, now: datetime
) -> dict[str, Any]:
    """A quarantine row; the record's files are copied into the store so nothing is lost with the drop."""
    ref = rejected.ref
    base = Path(ref.base) if ref.base is not None else None
    files = sorted(base.parent.glob(base.name + ".*")) if base is not None else []
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    file_sha = digest.hexdigest() if files else ""
    stored = ""
    if files:
        target = root / "quarantine" / "files" / file_sha[:20]
        target.mkdir(parents=True, exist_ok=True)
        for path in files:  # a copy already there has the same bytes (the folder is named by them)
            if not (target / path.name).is_file():
                shutil.copy2(path, target / path.name)
        stored = str(target.relative_to(root))
    main_file = files[0] if files else None
    return {
        "source_record": ref.source_record,
        "file": str(main_file.relative_to(drop.resolve()))
        if main_file and main_file.is_relative_to(drop.resolve())
        else (str(main_file) if main_file else ref.source_record),
        "reason": rejected.reason,
        "stage": "ingest",
        "file_sha256": file_sha,
        "stored_copy": stored,
        "ingest_id": ingest_id,
        "detected_at": now,
    }


def _quarantine_keys(quarantine: pd.DataFrame) -> set[tuple[str, str, str]]:
    if len(quarantine) == 0:
        return set()
    return set(zip(quarantine["source_record"], quarantine["file_sha256"], quarantine["reason"], strict=True))


def _open_or_create(root: Path, info: StoreInfo) -> DatasetStore:
    if not (root / "store.json").is_file():
        create_store(root, info)
    store = DatasetStore.open(root)
    if (store.info.fs, store.info.n_samples) != (info.fs, info.n_samples):
        raise StoreError(
            f"{root} holds {store.info.n_samples} samples at {store.info.fs} Hz but params.yaml asks for "
            f"{info.n_samples} at {info.fs} Hz; ingest into a new --dataset instead"
        )
    return store


def _new_ingest_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Keep the objects that exist now out of the garbage collector's sight while records stream: the
    collections ingest's many small objects trigger then scan only those, not the whole heap (pandas,
    Arrow, …), which cost ~5 % of ingest CPU; forked workers inherit the freeze."""
    if gc.get_freeze_count():  # the caller froze already
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _dataset_lock(path: Path) -> Iterator[None]:
    """One writer per dataset at a time, the dataset's lock file ``path`` (a second ingest waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
