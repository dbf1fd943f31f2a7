"""Real records for the monitoring tests: the 393 PTB-XL samples in canonical form, their monitored
features, a seeded split into a reference and a disjoint window, and defects planted into the window."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from components.io.canonical import canonicalize
from components.io.wfdb_reader import read_record
from components.quality.monitored import monitored_features
from components.validation import load_policy as validation_policy

FS = 100
SAMPLES_PER_RECORD = 1000
SUPERCLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]


@dataclass(frozen=True)
class Records:
    """Canonical records with their metadata: ``table`` has ``site``, ``device`` and one 0/1 column per
    PTB-XL diagnostic superclass."""

    signals: np.ndarray
    masks: np.ndarray
    n_valid: np.ndarray
    table: pd.DataFrame

    def take(self, rows: np.ndarray) -> Records:
        return Records(
            self.signals[rows],
            self.masks[rows],
            self.n_valid[rows],
            self.table.iloc[rows].reset_index(drop=True),
        )


def _superclasses(table: pd.DataFrame, statements: pd.DataFrame) -> pd.DataFrame:
    classes = statements["diagnostic_class"].dropna().to_dict()
    codes = table["scp_codes"].map(ast.literal_eval)
    return pd.DataFrame(
        {name: codes.map(lambda c, n=name: any(classes.get(k) == n for k in c)) for name in SUPERCLASSES}
    )


@pytest.fixture(scope="session")
def records(samples_dir: Path) -> Records:
    """Every sample record, read and canonicalised as serving does (100 Hz, 10 s, mV, 12 leads)."""
    table = pd.read_csv(samples_dir / "ptbxl_database.csv")
    table = table[table["filename_lr"].map(lambda r: (samples_dir / f"{r}.hea").is_file())]
    canonical = []
    for rel in table["filename_lr"]:
        raw = read_record(samples_dir / rel)
        canonical.append(
            canonicalize(
                raw.signal.T,
                raw.fs,
                raw.sig_names,
                raw.units,
                target_fs=FS,
                target_samples=SAMPLES_PER_RECORD,
            )
        )
    meta = pd.DataFrame(
        {"site": table["site"].astype(int).astype(str).to_numpy(), "device": table["device"].to_numpy()}
    )
    statements = pd.read_csv(samples_dir / "scp_statements.csv", index_col=0)
    labels = _superclasses(table.reset_index(drop=True), statements)
    return Records(
        np.stack([c.signal for c in canonical]),
        np.stack([c.lead_mask for c in canonical]),
        np.array([c.n_valid_samples for c in canonical]),
        pd.concat([meta, labels], axis=1),
    )


def features_of(records: Records) -> pd.DataFrame:
    """The monitored features with the records' site and device, as monitoring compares them."""
    values = monitored_features(
        records.signals, records.masks, records.n_valid, float(FS), validation_policy().features
    )
    return pd.DataFrame(values).assign(site=records.table["site"], device=records.table["device"])


def spectral_embedding(signals: np.ndarray) -> np.ndarray:
    """A fixed low-dimensional projection of the signals standing in for a model's embedding: per lead,
    log10 power in ten equal bands from 0 to 50 Hz (``(b, 120)``)."""
    centred = signals - signals.mean(axis=-1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, axis=-1)) ** 2
    bands = np.array_split(np.arange(1, power.shape[-1]), 10)
    per_band = np.stack([power[..., band].mean(axis=-1) for band in bands], axis=-1)
    embedding: np.ndarray = np.log10(per_band + 1e-8).reshape(len(signals), -1)
    return embedding


Planter = Callable[
    [np.ndarray, dict[str, Any], float, np.random.Generator], tuple[np.ndarray, dict[str, Any]]
]


def planted(records: Records, defect: Planter, rows: np.ndarray, seed: int) -> Records:
    """A copy of ``records`` with ``defect`` planted into ``rows``."""
    rng = np.random.default_rng(seed)
    signals = records.signals.copy()
    for i in rows:
        row = {"lead_mask": records.masks[i], "n_valid_samples": int(records.n_valid[i])}
        signals[i], _ = defect(records.signals[i], row, float(FS), rng)
    return Records(signals, records.masks, records.n_valid, records.table)


@pytest.fixture(scope="session")
def split(records: Records) -> tuple[Records, Records]:
    """A seeded split of the samples into a reference (half) and a disjoint window (the other half)."""
    order = np.random.default_rng(0).permutation(len(records.signals))
    half = len(order) // 2
    return records.take(np.sort(order[:half])), records.take(np.sort(order[half:]))
