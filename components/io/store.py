"""The canonical store: one directory per dataset under the DVC-tracked ``data/``.

Layout of ``data/<dataset>/``::

    store.json                 target rate, samples per record, lead order, format version
    manifest.parquet           one row per record (see ``schemas/manifest.schema.json``)
    signals/shard-00000.npy    float32 (n, 12, samples) in mV, standard lead order, missing leads zero
    quarantine.parquet         every record that was not taken, with file and reason
    quarantine/files/<sha>/    byte copies of the files of quarantined records
    ingests.jsonl              one summary line per ingest that changed the store

Shards are written once and never modified; an ingest appends new shards and rewrites the (small)
manifest atomically, so a crash mid-ingest leaves the previous store intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from components.io.leads import N_LEADS, STANDARD_LEADS

STORE_FORMAT_VERSION = 1
SIGNAL_DTYPE = np.dtype("<f4")
_NPY_HEADER_BYTES = 128

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


class StoreError(RuntimeError):
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
    def open(cls, root: Path) -> DatasetStore:
        """Open ``data/<dataset>``; :class:`StoreError` if it is not a store."""
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
            pd.read_parquet(manifest_path)
            if manifest_path.is_file()
            else pd.DataFrame(columns=list(MANIFEST_COLUMNS))
        )
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

    def lead_masks(self) -> np.ndarray:
        """``(n, 12)`` bool lead-presence masks in manifest order."""
        if len(self.manifest) == 0:
            return np.zeros((0, N_LEADS), dtype=bool)
        return np.stack([np.asarray(m, dtype=bool) for m in self.manifest["lead_mask"]])

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
        self, batch_records: int = 1024
    ) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
        """Yield ``(manifest slice, signals (b, 12, samples), masks (b, 12))`` in manifest order."""
        masks = self.lead_masks()
        for start in range(0, len(self.manifest), batch_records):
            rows = np.arange(start, min(start + batch_records, len(self.manifest)))
            yield self.manifest.iloc[rows], self.read(rows), masks[rows]


class ShardWriter:
    """Streams records into ``.npy`` shards without holding them in memory.

    The ``.npy`` header is written with a fixed size first and rewritten with the final record count
    when the shard is closed, so records go straight to disk as they arrive.
    """

    def __init__(self, root: Path, n_samples: int, max_records: int):
        self.root = root
        self.n_samples = n_samples
        self.max_records = max_records
        self.written: list[str] = []
        self._file: BinaryIO | None = None
        self._name = ""
        self._count = 0
        (root / "signals").mkdir(parents=True, exist_ok=True)

    def append_batch(self, signals: np.ndarray) -> list[tuple[str, int]]:
        """Append ``(k, 12, samples)`` records; returns each one's ``(shard name, index in shard)``."""
        records = np.ascontiguousarray(signals, dtype=SIGNAL_DTYPE)
        return self._append(len(records), lambda start, count: self._write(records[start : start + count]))

    def append_npy(self, path: Path, rows: list[int]) -> list[tuple[str, int]]:
        """Append the given rows of a ``(n, 12, samples)`` float32 ``.npy`` file, copied by the kernel.

        Contiguous runs of rows go from file to shard with ``os.copy_file_range``: no user-space buffer,
        hence no fresh pages to fault in for every chunk.
        """
        record_bytes = N_LEADS * self.n_samples * SIGNAL_DTYPE.itemsize
        locations: list[tuple[str, int]] = []
        with open(path, "rb") as source:
            version = np.lib.format.read_magic(source)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(source) if version == (1, 0) else (
                np.lib.format.read_array_header_2_0(source))
            if tuple(shape[1:]) != (N_LEADS, self.n_samples) or fortran or dtype != SIGNAL_DTYPE:
                raise StoreError(f"{path}: {shape} {dtype} does not fit this store")
            data_offset = source.tell()

            def copy(first_row: int, count: int) -> None:
                assert self._file is not None
                self._file.flush()
                offset, remaining = data_offset + first_row * record_bytes, count * record_bytes
                while remaining:
                    done = os.copy_file_range(source.fileno(), self._file.fileno(), remaining, offset)
                    offset, remaining = offset + done, remaining - done
                self._file.seek(0, os.SEEK_END)

            for first, length in _runs(rows):
                locations += self._append(length, partial(_shifted, copy, first))
        return locations

    def _write(self, records: np.ndarray) -> None:
        assert self._file is not None
        self._file.write(records.tobytes())

    def _append(self, total: int, write: Callable[[int, int], None]) -> list[tuple[str, int]]:
        """Write ``total`` records in pieces that fit the current shard, opening new shards as needed."""
        locations: list[tuple[str, int]] = []
        start = 0
        while start < total:
            if self._file is None or self._count >= self.max_records:
                self._open_next()
            take = min(total - start, self.max_records - self._count)
            write(start, take)
            locations.extend((self._name, self._count + i) for i in range(take))
            self._count += take
            start += take
        return locations

    def close(self) -> None:
        """Finish the current shard (rewrite its header with the final count)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.write(_npy_header((self._count, N_LEADS, self.n_samples)))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def discard(self) -> None:
        """Remove every shard this writer created (used when an ingest fails)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for name in self.written:
            (self.root / name).unlink(missing_ok=True)

    def _open_next(self) -> None:
        self.close()
        existing = {p.name for p in (self.root / "signals").glob("shard-*.npy")}
        number = 0
        while f"shard-{number:05d}.npy" in existing:
            number += 1
        self._name = f"signals/shard-{number:05d}.npy"
        self._file = open(self.root / self._name, "wb")  # noqa: SIM115 - closed in close()/discard()
        self._file.write(_npy_header((0, N_LEADS, self.n_samples)))
        self._count = 0
        self.written.append(self._name)


def _shifted(copy: Callable[[int, int], None], first: int, start: int, count: int) -> None:
    copy(first + start, count)


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """``[3, 4, 5, 9]`` → ``[(3, 3), (9, 1)]``: contiguous runs as (first, length)."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and sum(runs[-1]) == row:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((row, 1))
    return runs


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
    """Create an empty store directory (``store.json``)."""
    root.mkdir(parents=True, exist_ok=True)
    payload = asdict(info)
    payload["leads"] = list(info.leads)
    (root / "store.json").write_text(json.dumps(payload, indent=2) + "\n")


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
    """Delete shard/part files no manifest row refers to (left by a crashed ingest); returns their names."""
    referenced = set(manifest["shard"].unique()) if len(manifest) else set()
    candidates = [*(root / "signals").glob("shard-*.npy"), *(root / "signals").glob(".part-*.npy")]
    orphans = [f"signals/{p.name}" for p in candidates if f"signals/{p.name}" not in referenced]
    for name in orphans:
        (root / name).unlink()
    return orphans
