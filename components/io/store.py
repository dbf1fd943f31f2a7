"""The canonical store: one directory per dataset under the DVC-tracked ``data/``.

Layout of ``data/<dataset>/``::

    store.json                 target rate, samples per record, lead order, format version
    manifest.parquet           one row per record (see ``schemas/manifest.schema.json``)
    signals/shard-00000.npy    float32 (n, 12, samples) in mV, standard lead order, missing leads zero
    quarantine.parquet         every record that was not taken, with file and reason
    quarantine/files/<sha>/    byte copies of the files of quarantined records
    ingests.jsonl              one summary line per ingest that changed the store

Shards are written once and never modified; an ingest appends new shards and rewrites the (small)
manifest atomically, so a crash mid-ingest leaves the previous store intact. The new manifest, quarantine
and ingest log are all written to temporary files first (:class:`StagedFiles`) and only then renamed into
place, so a full disk fails the ingest before any of them changes; shards and quarantine copies no
manifest or quarantine row refers to are removed (:func:`remove_orphan_shards`,
:func:`remove_orphan_copies`).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components.errors import UserError
from components.io.leads import N_LEADS, STANDARD_LEADS

STORE_FORMAT_VERSION = 1
SIGNAL_DTYPE = np.dtype("<f4")
_NPY_HEADER_BYTES = 128

_MANIFEST_TYPES: dict[str, pa.DataType] = {
    "fs_original": pa.float64(),
    "n_samples_original": pa.int64(),
    "lead_mask": pa.list_(pa.bool_()),
    "n_valid_samples": pa.int64(),
    "age": pa.float64(),
    "shard_index": pa.int64(),
    "ingested_at": pa.timestamp("us", tz="UTC"),
}
MANIFEST_COLUMNS: tuple[str, ...] = (
    "record_id",
    "content_hash",
    "patient_key",
    "source",
    "site",
    "device",
    "source_record",
    "fs_original",
    "n_samples_original",
    "units_original",
    "storage_format",
    "lead_mask",
    "n_valid_samples",
    "age",
    "sex",
    "report",
    "labels",
    "label_system",
    "split",
    "shard",
    "shard_index",
    "ingest_id",
    "ingested_at",
    "annotations",
)
#: Arrow types of the manifest columns (``schemas/manifest.schema.json`` says what they mean)
MANIFEST_SCHEMA = pa.schema(
    [
        (name, pa.string()) if name not in _MANIFEST_TYPES else (name, _MANIFEST_TYPES[name])
        for name in MANIFEST_COLUMNS
    ]
)
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "source_record",
    "file",
    "reason",
    "stage",
    "file_sha256",
    "stored_copy",
    "ingest_id",
    "detected_at",
)


class StoreError(UserError, RuntimeError):
    """The store on disk is missing or inconsistent."""


@dataclass(frozen=True)
class StoreInfo:
    """What every record of a store shares."""

    fs: int
    n_samples: int
    leads: tuple[str, ...] = STANDARD_LEADS
    format_version: int = STORE_FORMAT_VERSION

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


class DatasetStore:
    """Read access to one dataset of the canonical store."""

    def __init__(self, root: Path, info: StoreInfo, manifest: pd.DataFrame, quarantine: pd.DataFrame):
        self.root = root
        self.info = info
        self.manifest = manifest
        self.quarantine = quarantine
        self._shards: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, root: Path, manifest_columns: list[str] | None = None) -> DatasetStore:
        """Open ``data/<dataset>``; :class:`StoreError` if it is not a store. ``manifest_columns``: read
        only these manifest columns (and no quarantine), for readers that need a few of them."""
        meta = root / "store.json"
        if not meta.is_file():
            raise StoreError(f"no canonical store at {root} (run `ecgops ingest` first)")
        raw = json.loads(meta.read_text())
        info = StoreInfo(
            fs=raw["fs"],
            n_samples=raw["n_samples"],
            leads=tuple(raw["leads"]),
            format_version=raw["format_version"],
        )
        if info.leads != STANDARD_LEADS:
            raise StoreError(f"{root}: lead order {info.leads} is not the standard order")
        manifest_path = root / "manifest.parquet"
        manifest = (
            pd.read_parquet(manifest_path, columns=manifest_columns)
            if manifest_path.is_file()
            else pd.DataFrame(columns=manifest_columns or list(MANIFEST_COLUMNS))
        )
        if manifest_columns is not None:
            return cls(root, info, manifest, pd.DataFrame(columns=list(QUARANTINE_COLUMNS)))
        quarantine_path = root / "quarantine.parquet"
        quarantine = (
            pd.read_parquet(quarantine_path)
            if quarantine_path.is_file()
            else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        )
        return cls(root, info, manifest, quarantine)

    def __len__(self) -> int:
        return len(self.manifest)

    def shard(self, name: str) -> np.ndarray:
        """The memory-mapped ``(n, 12, samples)`` array of one shard."""
        if name not in self._shards:
            array = np.load(self.root / name, mmap_mode="r")
            expected = (N_LEADS, self.info.n_samples)
            if array.ndim != 3 or array.shape[1:] != expected or array.dtype != SIGNAL_DTYPE:
                raise StoreError(
                    f"{name}: shape {array.shape} {array.dtype}, expected (n, *{expected}) float32"
                )
            self._shards[name] = array
        return self._shards[name]

    def lead_masks(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``(n, 12)`` bool lead-presence masks in manifest order (of the rows ``start:stop``)."""
        masks = self.manifest["lead_mask"].iloc[start:stop]
        if len(masks) == 0:
            return np.zeros((0, N_LEADS), dtype=bool)
        return np.stack([np.asarray(m, dtype=bool) for m in masks])

    def read(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """Signals of the given manifest row positions as a ``(k, 12, samples)`` float32 array."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), N_LEADS, self.info.n_samples), dtype=SIGNAL_DTYPE)
        shards = self.manifest["shard"].to_numpy()[rows]
        indices = self.manifest["shard_index"].to_numpy()[rows]
        for name in np.unique(shards):
            selected = shards == name
            out[selected] = self.shard(str(name))[indices[selected]]
        return out

    def iter_batches(
        self, batch_records: int = 1024, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
        """Yield ``(manifest slice, signals (b, 12, samples), masks (b, 12))`` in manifest order, for
        the rows ``start:stop`` (all by default)."""
        end = len(self.manifest) if stop is None else min(stop, len(self.manifest))
        masks = self.lead_masks(start, end)
        for first in range(start, end, batch_records):
            rows = np.arange(first, min(first + batch_records, end))
            yield self.manifest.iloc[rows], self.read(rows), masks[rows - start]


@dataclass
class _Shard:
    name: str
    fd: int
    reserved: int = 0  # records handed out (appended or reserved for a worker)
    count: int = 0  # records committed, packed from the start


class ShardWriter:
    """Writes records into ``.npy`` shards without holding them in memory.

    Two ways in: :meth:`append_batch` writes records the caller holds; :meth:`reserve` hands a reading
    worker a slot of ``slot_records`` records in a shard, the worker writes its accepted records there
    itself (:func:`write_slot`), and :meth:`commit` keeps the ones the parent accepts, packing them
    down when records were rejected or duplicated. Signals thus travel from worker to disk once.
    Each shard's ``.npy`` header has a fixed size and is rewritten with the final count on :meth:`close`.
    With ``flush_while_writing``, committed data is flushed to disk by a background thread as records
    arrive, so the final fsync in :meth:`close` has little left to wait for.
    """

    def __init__(
        self,
        root: Path,
        n_samples: int,
        max_records: int,
        slot_records: int = 1,
        flush_while_writing: bool = False,
    ):
        self.root = root
        self.n_samples = n_samples
        self.slot_records = max(1, slot_records)
        self.capacity = max(self.slot_records, max_records - max_records % self.slot_records)
        self.record_bytes = N_LEADS * n_samples * SIGNAL_DTYPE.itemsize
        self.written: list[str] = []
        self._shards: dict[str, _Shard] = {}
        self._current: _Shard | None = None
        self._lock = threading.Lock()  # a process pool's feeder thread reserves while the parent commits
        self._flusher = ThreadPoolExecutor(1, "shard-flush") if flush_while_writing else None
        self._flushing: dict[int, Future[None]] = {}  # fd → its pending background flush
        (root / "signals").mkdir(parents=True, exist_ok=True)

    def append_batch(self, signals: np.ndarray) -> list[tuple[str, int]]:
        """Append ``(k, 12, samples)`` records; returns each one's ``(shard name, index in shard)``."""
        records = np.ascontiguousarray(signals, dtype=SIGNAL_DTYPE)
        locations: list[tuple[str, int]] = []
        start = 0
        while start < len(records):
            shard = self._shard_with_room(1)
            if shard.count != shard.reserved:
                raise StoreError("append_batch while worker slots are outstanding")
            take = min(len(records) - start, self.capacity - shard.count)
            os.pwrite(shard.fd, records[start : start + take].data, self._offset(shard.count))
            locations.extend((shard.name, shard.count + i) for i in range(take))
            shard.count = shard.reserved = shard.count + take
            start += take
        return locations

    def reserve(self) -> tuple[str, int]:
        """A slot for a worker: ``(shard path, first record index)`` with room for ``slot_records``."""
        with self._lock:
            shard = self._shard_with_room(self.slot_records)
            first = shard.reserved
            shard.reserved += self.slot_records
        return str(self.root / shard.name), first

    def commit(self, shard_path: str, first: int, kept: list[int]) -> list[tuple[str, int]]:
        """Keep the slot's records at positions ``kept`` (in order); returns their final locations.

        Slots must be committed in the order they were reserved.
        """
        with self._lock:
            shard = self._shards[Path(shard_path).relative_to(self.root).as_posix()]
        locations: list[tuple[str, int]] = []
        for position in kept:
            source, target = first + position, shard.count
            if source != target:
                data = os.pread(shard.fd, self.record_bytes, self._offset(source))
                os.pwrite(shard.fd, data, self._offset(target))
            locations.append((shard.name, target))
            shard.count += 1
        self._flush_later(shard.fd)
        return locations

    def close(self) -> None:
        """Finish every shard: cut it to its committed records, rewrite its header, fsync."""
        self._stop_flushing()
        for shard in self._shards.values():
            os.ftruncate(shard.fd, self._offset(shard.count))
            os.pwrite(shard.fd, _npy_header((shard.count, N_LEADS, self.n_samples)), 0)
            os.fsync(shard.fd)
            os.close(shard.fd)
        for shard in [s for s in self._shards.values() if s.count == 0]:
            (self.root / shard.name).unlink()
            self.written.remove(shard.name)
        self._shards.clear()
        self._current = None

    def discard(self) -> None:
        """Remove every shard this writer created (used when an ingest fails)."""
        self._stop_flushing(report_errors=False)
        for shard in self._shards.values():
            os.close(shard.fd)
        self._shards.clear()
        self._current = None
        for name in self.written:
            (self.root / name).unlink(missing_ok=True)

    def _offset(self, record: int) -> int:
        return _NPY_HEADER_BYTES + record * self.record_bytes

    def _flush_later(self, fd: int) -> None:
        """Start writing a shard's data to disk in the background (one flush per shard at a time)."""
        if self._flusher is None:
            return
        pending = self._flushing.get(fd)
        if pending is None or pending.done():
            self._flushing[fd] = self._flusher.submit(os.fdatasync, fd)

    def _stop_flushing(self, report_errors: bool = True) -> None:
        if self._flusher is not None:
            self._flusher.shutdown(wait=True)
            self._flusher = None
        pending, self._flushing = list(self._flushing.values()), {}
        for flush in pending:
            if report_errors:
                flush.result()  # an I/O error surfaces here rather than being lost

    def _shard_with_room(self, records: int) -> _Shard:
        if self._current is None or self._current.reserved + records > self.capacity:
            existing = {p.name for p in (self.root / "signals").glob("shard-*.npy")}
            number = 0
            while f"shard-{number:05d}.npy" in existing:
                number += 1
            name = f"signals/shard-{number:05d}.npy"
            fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            os.pwrite(fd, _npy_header((0, N_LEADS, self.n_samples)), 0)
            self._current = self._shards[name] = _Shard(name, fd)
            self.written.append(name)
        return self._current


def write_slot(shard_path: str, first: int, signals: np.ndarray) -> None:
    """A worker writes its ``(k, 12, samples)`` float32 records into its reserved slot of a shard."""
    if len(signals) == 0:
        return
    records = np.ascontiguousarray(signals, dtype=SIGNAL_DTYPE)
    fd = os.open(shard_path, os.O_WRONLY)
    try:
        os.pwrite(fd, records.data, _NPY_HEADER_BYTES + first * records[0].nbytes)
    finally:
        os.close(fd)


def _npy_header(shape: tuple[int, int, int]) -> bytes:
    """A version-1.0 ``.npy`` header padded to a fixed size, so it can be rewritten in place."""
    descr = {"descr": SIGNAL_DTYPE.str, "fortran_order": False, "shape": shape}
    text = repr(descr).encode("latin1")
    pad = _NPY_HEADER_BYTES - 10 - len(text) - 1
    if pad < 0:
        raise StoreError(f"shape {shape} does not fit a fixed-size npy header")
    body = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def create_store(root: Path, info: StoreInfo) -> None:
    """Create an empty store directory (``store.json``, written atomically: never half a file)."""
    root.mkdir(parents=True, exist_ok=True)
    payload = asdict(info)
    payload["leads"] = list(info.leads)
    staged = StagedFiles()
    try:
        staged.text(root / "store.json", json.dumps(payload, indent=2) + "\n")
    except BaseException:
        staged.abandon()
        raise
    staged.publish()


class StagedFiles:
    """Files written next to their destination first and renamed into place together by :meth:`publish`.

    Writing is where a disk fills up; renaming needs no space. So a failure while staging (call
    :meth:`abandon`) leaves every destination as it was, and :meth:`publish` replaces them all.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary file, destination)

    def _tmp(self, path: Path) -> Path:
        tmp = path.with_name(path.name + ".tmp")
        self._pending.append((tmp, path))
        return tmp

    def table(self, table: pa.Table, path: Path) -> None:
        """Stage an Arrow table as Parquet (zstd)."""
        pq.write_table(table, self._tmp(path), compression="zstd")

    def frame(self, frame: pd.DataFrame, path: Path) -> None:
        """Stage a pandas frame as Parquet (zstd), without its index."""
        frame.to_parquet(self._tmp(path), index=False, compression="zstd")

    def text(self, path: Path, text: str) -> None:
        """Stage a text file (written and flushed to disk before it may replace ``path``)."""
        with self._tmp(path).open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def publish(self) -> None:
        """Rename every staged file into place, in the order staged."""
        for tmp, path in self._pending:
            os.replace(tmp, path)
        self._pending.clear()

    def abandon(self) -> None:
        """Remove the staged files; the destinations stay as they were."""
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()


def manifest_sha256(root: Path) -> str:
    """sha256 of the store's ``manifest.parquet``: which records a run saw (a resume needs the same)."""
    import hashlib

    return hashlib.sha256((root / "manifest.parquet").read_bytes()).hexdigest()


def append_manifest(
    root: Path, columns: Mapping[str, Sequence[Any]], common: Mapping[str, Any] | None = None
) -> None:
    """Append records to ``manifest.parquet`` atomically (see :func:`manifest_with`)."""
    staged = StagedFiles()
    try:
        staged.table(manifest_with(root, columns, common), root / "manifest.parquet")
    except BaseException:
        staged.abandon()
        raise
    staged.publish()


def manifest_with(
    root: Path, columns: Mapping[str, Sequence[Any]], common: Mapping[str, Any] | None = None
) -> pa.Table:
    """The manifest with new records appended, given column-wise (Arrow end to end: a pandas frame of
    strings, or Arrow built row by row, was slow).

    ``common``: values every new record shares (e.g. the ingest id and time), given once.
    """
    path = root / "manifest.parquet"
    common = common or {}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1 or set(columns) | set(common) != set(MANIFEST_COLUMNS):
        raise StoreError(f"manifest columns do not fit the schema: {sorted(columns)} + {sorted(common)}")
    n_rows = lengths.pop()
    arrays = [
        pa.repeat(pa.scalar(common[field.name], type=field.type), n_rows)
        if field.name in common
        else pa.array(columns[field.name], type=field.type)
        for field in MANIFEST_SCHEMA
    ]
    new = pa.Table.from_arrays(arrays, schema=MANIFEST_SCHEMA)
    return pa.concat_tables([pq.read_table(path).cast(MANIFEST_SCHEMA), new]) if path.is_file() else new


def write_table_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a Parquet table via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False, compression="zstd")
    os.replace(tmp, path)


def append_jsonl(path: Path, payload: dict[str, Any]) -> None:
    """Append one JSON line (the ingest log)."""
    with path.open("a") as handle:
        handle.write(json.dumps(payload, sort_keys=True, default=str) + "\n")


def remove_orphan_shards(root: Path, manifest: pd.DataFrame) -> list[str]:
    """Delete shard files no manifest row refers to (left by a crashed ingest); returns their names."""
    referenced = set(manifest["shard"].unique()) if len(manifest) else set()
    orphans = [
        f"signals/{p.name}"
        for p in (root / "signals").glob("shard-*.npy")
        if f"signals/{p.name}" not in referenced
    ]
    for name in orphans:
        (root / name).unlink()
    return orphans


def remove_orphan_copies(root: Path, quarantine: pd.DataFrame) -> list[str]:
    """Delete quarantine file copies no quarantine row refers to (left by a failed ingest)."""
    referenced = set(quarantine["stored_copy"]) if len(quarantine) else set()
    copies = root / "quarantine" / "files"
    orphans = [
        p.relative_to(root).as_posix()
        for p in (copies.iterdir() if copies.is_dir() else [])
        if p.relative_to(root).as_posix() not in referenced
    ]
    for name in orphans:
        shutil.rmtree(root / name)
    return orphans
