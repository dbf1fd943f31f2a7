"""The feature table of a dataset: per-record signal aggregates + metadata, and per-lead detail.

Signal features are computed record by record (vectorized over a batch, but no value depends on the
other records of the batch), so they can be computed over ranges of records in different processes and
concatenated: :func:`signal_tables` on each range, then :func:`combine`. Metadata features look at the
whole manifest (duplicates, patients) and are computed once, in :func:`combine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from components.quality.metadata import metadata_features
from components.quality.params import SignalFeatureParams
from components.quality.signal import LEAD_INDEX, PER_LEAD_FEATURES, BatchFeatures, batch_features

LEADS = tuple(LEAD_INDEX)


class _Info(Protocol):
    @property
    def fs(self) -> int: ...

    @property
    def n_samples(self) -> int: ...


class SignalSource(Protocol):
    """What feature extraction reads: satisfied by :class:`components.io.store.DatasetStore`."""

    @property
    def info(self) -> _Info: ...

    @property
    def manifest(self) -> pd.DataFrame: ...

    def iter_batches(
        self, batch_records: int = ..., start: int = ..., stop: int | None = ...
    ) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray]]: ...


@dataclass(frozen=True)
class FeatureTables:
    """``records``: one row per record (manifest order). ``leads``: per-lead values, ``<feature>__<lead>``."""

    records: pd.DataFrame
    leads: pd.DataFrame


def _worst(values: np.ndarray, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Worst value over present leads (NaN = absent) and the name of that lead ('' if none)."""
    present = ~np.isnan(values)
    filled = np.where(present, values, -np.inf if largest else np.inf)
    idx = filled.argmax(axis=1) if largest else filled.argmin(axis=1)
    any_present = present.any(axis=1)
    worst = np.where(any_present, filled[np.arange(len(values)), idx], np.nan)
    names = np.where(any_present, np.asarray(LEADS, dtype=object)[idx], "")
    return worst, names


def record_columns(per_lead: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-record aggregates of per-lead features: worst value, worst lead, median baseline RMS."""
    out: dict[str, np.ndarray] = {}
    for name in PER_LEAD_FEATURES:
        out[f"{name}_max"], out[f"{name}_max_lead"] = _worst(per_lead[name], largest=True)
    out["range_mv_min"], out["range_mv_min_lead"] = _worst(per_lead["range_mv"], largest=False)
    baseline = per_lead["baseline_rms_mv"]
    counts = (~np.isnan(baseline)).sum(axis=1)
    ordered = np.sort(np.where(np.isnan(baseline), np.inf, baseline), axis=1)
    middle = np.clip((counts - 1) / 2, 0, None)
    lo = ordered[np.arange(len(baseline)), np.floor(middle).astype(int)]
    hi = ordered[np.arange(len(baseline)), np.ceil(middle).astype(int)]
    out["baseline_rms_mv_median"] = np.where(counts > 0, (lo + hi) / 2, np.nan)
    return out


def _tables(feats: BatchFeatures) -> tuple[pd.DataFrame, pd.DataFrame]:
    records = pd.DataFrame({**record_columns(feats.per_lead), **feats.per_record})
    leads = pd.DataFrame(
        {
            f"{name}__{lead}": feats.per_lead[name][:, j]
            for name in PER_LEAD_FEATURES
            for j, lead in enumerate(LEADS)
        }
    )
    return records, leads


def signal_tables(
    source: SignalSource, params: SignalFeatureParams, start: int = 0, stop: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-record and per-lead signal features of the records ``start:stop`` of ``source`` (row order)."""
    fs = float(source.info.fs)
    parts = [
        _tables(batch_features(signals, fs, masks, rows["n_valid_samples"].to_numpy(), params))
        for rows, signals, masks in source.iter_batches(params.batch_records, start, stop)
    ]
    if not parts:
        empty = np.zeros((0, len(LEADS), source.info.n_samples), dtype=np.float32)
        parts.append(
            _tables(batch_features(empty, fs, np.zeros((0, len(LEADS)), bool), np.zeros(0, int), params))
        )
    if len(parts) == 1:
        return parts[0]
    return (
        pd.concat([p[0] for p in parts], ignore_index=True),
        pd.concat([p[1] for p in parts], ignore_index=True),
    )


def record_ranges(n_records: int, shard_records: int, batch_records: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``n_records`` rows, for :func:`signal_tables` on shards.

    Shards of at least a batch are cut at multiples of ``batch_records``, so they see the very batches
    an unsharded run sees."""
    size = max(1, shard_records)
    if size >= batch_records:
        size -= size % batch_records
    return [(start, min(start + size, n_records)) for start in range(0, n_records, size)]


def combine(
    manifest: pd.DataFrame,
    signal_parts: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    vocabularies: Mapping[str, Set[str]],
) -> FeatureTables:
    """The feature tables from the signal tables of consecutive record ranges (in order) and the
    metadata features of the whole ``manifest``."""
    parts = list(signal_parts)
    meta = metadata_features(manifest, vocabularies)
    signal = pd.concat([p[0] for p in parts], ignore_index=True)
    leads = pd.concat([p[1] for p in parts], ignore_index=True)
    if len(signal) != len(meta):
        raise ValueError(f"signal features of {len(signal)} records for a manifest of {len(meta)}")
    records = pd.concat([meta.reset_index(drop=True), signal], axis=1)
    leads.insert(0, "record_id", meta["record_id"].to_numpy())
    return FeatureTables(records=records, leads=leads)


def extract_features(
    source: SignalSource, params: SignalFeatureParams, vocabularies: Mapping[str, Set[str]]
) -> FeatureTables:
    """Signal and metadata features of every record of ``source``, batch by batch, in this process."""
    return combine(source.manifest, [signal_tables(source, params)], vocabularies)
