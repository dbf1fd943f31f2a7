"""A catalogue of recording defects planted into real records to measure the detectors.

Each planter takes one record ``(12, T)`` in mV at ``fs`` and its manifest row (dict) and returns the
defective copy of both, as the canonical store would hold them after ingest (ingest converts units by
the header and resamples by the header's rate, so a lying header shows up in the signal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.signal import resample_poly

if TYPE_CHECKING:
    from components.io.store import DatasetStore

Record = tuple[np.ndarray, dict[str, Any]]
Planter = Callable[[np.ndarray, dict[str, Any], float, np.random.Generator], Record]


def _present(row: dict[str, Any]) -> np.ndarray:
    return np.flatnonzero(np.asarray(row["lead_mask"], dtype=bool))


def lead_zeroed(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """One present lead reads exactly zero (disconnected electrode reported as a present lead)."""
    x = x.copy()
    x[rng.choice(_present(row))] = 0.0
    return x, row


def clipping(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """Two to six leads saturate at 30–60 % of their excursion (flat tops at the ADC rail)."""
    x = x.copy()
    leads = rng.choice(_present(row), size=int(rng.integers(2, 7)), replace=False)
    for lead in leads:
        lo, hi = np.percentile(x[lead], [0.0, 100.0])
        mid = float(np.median(x[lead]))
        level = float(rng.uniform(0.3, 0.6))
        x[lead] = np.clip(x[lead], mid - level * (mid - lo), mid + level * (hi - mid))
    return x, row


def mains_hum(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """50 Hz interference of 0.1–0.5 mV on every lead; grid frequency drifts ±0.2 Hz, phase random."""
    t = np.arange(x.shape[-1]) / fs
    f = 50.0 + float(rng.uniform(-0.2, 0.2))
    amp = float(rng.uniform(0.1, 0.5))
    hum = amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (x + hum[None, :]).astype(np.float32), row


def baseline_wander(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """Respiration/motion drift: 0.05–0.4 Hz, 1–3 mV, independent phase per lead."""
    t = np.arange(x.shape[-1]) / fs
    f = rng.uniform(0.05, 0.4)
    amp = rng.uniform(1.0, 3.0)
    phase = rng.uniform(0, 2 * np.pi, size=(x.shape[0], 1))
    return (x + amp * np.sin(2 * np.pi * f * t[None, :] + phase)).astype(np.float32), row


def la_ra_swap(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """Left- and right-arm electrodes exchanged: I → −I, II ↔ III, aVR ↔ aVL; aVF and V leads unchanged."""
    y = x.copy()
    y[0] = -x[0]
    y[1], y[2] = x[2], x[1]
    y[3], y[4] = x[4], x[3]
    return y, row


def nan_gap(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """A 0.2–2 s gap of missing samples (NaN) in one to twelve leads."""
    x = x.copy()
    n = int(rng.uniform(0.2, 2.0) * fs)
    start = int(rng.integers(0, int(row["n_valid_samples"]) - n))
    leads = rng.choice(_present(row), size=int(rng.integers(1, len(_present(row)) + 1)), replace=False)
    x[np.ix_(leads, np.arange(start, start + n))] = np.nan
    return x, row


def wrong_sampling_rate(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """The header claims 250, 500 or 1000 Hz for data sampled at ``fs``; ingest resamples by the claim."""
    claimed = float(rng.choice([250.0, 500.0, 1000.0]))
    n_orig = int(row["n_valid_samples"])
    # ingest resamples from the claimed rate to fs: n_orig samples become n_orig * fs / claimed
    squeezed = resample_poly(x[:, :n_orig], up=int(fs), down=int(claimed), axis=-1).astype(np.float32)
    y = np.zeros_like(x)
    y[:, : squeezed.shape[-1]] = squeezed
    row = {**row, "fs_original": claimed, "n_samples_original": n_orig, "n_valid_samples": squeezed.shape[-1]}
    return y, row


def microvolts(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """Samples written in µV while the header says mV: every amplitude is 1000× too large."""
    return (x * 1000.0).astype(np.float32), row


DEFECTS: dict[str, Planter] = {
    "lead_zeroed": lead_zeroed,
    "clipping": clipping,
    "mains_hum_50hz": mains_hum,
    "baseline_wander": baseline_wander,
    "la_ra_swap": la_ra_swap,
    "nan_gap": nan_gap,
    "wrong_sampling_rate": wrong_sampling_rate,
    "microvolts": microvolts,
}


def time_shifted(x: np.ndarray, row: dict[str, Any], fs: float, rng: np.random.Generator) -> Record:
    """Not a defect: the record rotated in time by 0.1–5 s, a distinct but realistic copy (load tests)."""
    n = int(row["n_valid_samples"])
    y = x.copy()
    y[:, :n] = np.roll(x[:, :n], int(rng.integers(int(0.1 * fs), int(5 * fs))), axis=-1)
    return y, row


def _hash(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


def write_derived_store(
    source: DatasetStore,
    target: Path,
    items: Iterable[tuple[int, str | None]],
    *,
    seed: int = 0,
    shard_records: int = 8192,
) -> pd.DataFrame:
    """Write a new store at ``target`` whose records are transformed copies of ``source`` records.

    ``items`` are ``(manifest row position, transform)`` with a name from :data:`DEFECTS`,
    ``"time_shifted"`` or None (an exact copy). Record ids and content hashes are recomputed from the
    written signal, as ingest does; a transform that repeats content already written is drawn again
    (up to 20 times). Returns ``record_id, source_row, transform`` per written record.
    """
    from components.io.ingest import record_id
    from components.io.store import MANIFEST_COLUMNS, ShardWriter, StoreInfo, create_store, write_table_atomic

    transforms: dict[str, Planter] = {**DEFECTS, "time_shifted": time_shifted}
    rng = np.random.default_rng(seed)
    fs = float(source.info.fs)
    items = list(items)
    create_store(target, StoreInfo(fs=source.info.fs, n_samples=source.info.n_samples))
    writer = ShardWriter(target, source.info.n_samples, shard_records)
    manifest = source.manifest.reset_index(drop=True)
    rows_out: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    seen: set[str] = set()
    order = np.argsort([pos for pos, _ in items], kind="stable")
    for start in range(0, len(order), 1024):
        chunk = order[start : start + 1024]
        positions = np.asarray([items[i][0] for i in chunk])
        signals = source.read(positions)
        for k, i in enumerate(chunk):
            pos, name = items[i]
            original = manifest.iloc[pos].to_dict()
            x, row = signals[k], original
            content_hash = _hash(x)
            for _ in range(20 if name is not None else 0):
                x, row = transforms[name](signals[k], original, fs, rng)
                content_hash = _hash(x)
                if content_hash not in seen:
                    break
            seen.add(content_hash)
            ((shard, index),) = writer.append_batch(x[None])
            suffix = f"#{name}" if name else ""
            row.update(
                content_hash=content_hash,
                record_id=record_id(content_hash),
                shard=shard,
                shard_index=index,
                source_record=f"{row['source_record']}{suffix}",
            )
            rows_out.append(row)
            truth.append({"record_id": row["record_id"], "source_row": int(pos), "transform": name or ""})
    writer.close()
    write_table_atomic(pd.DataFrame(rows_out, columns=list(MANIFEST_COLUMNS)), target / "manifest.parquet")
    return pd.DataFrame(truth)
