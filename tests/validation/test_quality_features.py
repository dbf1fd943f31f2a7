"""Signal and metadata features on real PTB-XL records, with defects planted by the tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.quality import batch_features, metadata_features
from components.quality.defects import DEFECTS
from components.quality.features import record_columns
from components.quality.signal import aliased_frequency, longest_true_run
from components.validation import load_policy

FS = 100.0
#: the policy expectation each defect must fail (signal side; header defects show in the signal after ingest)
DEFECT_CHECK = {
    "lead_zeroed": "no_flat_line",
    "clipping": "no_clipping",
    "mains_hum_50hz": "no_mains_interference",
    "baseline_wander": "no_strong_baseline_wander",
    "la_ra_swap": "no_limb_lead_reversal",
    "nan_gap": "no_missing_samples",
    "wrong_sampling_rate": "enough_signal",
    "microvolts": "amplitude_in_mv",
}


def _table(x: np.ndarray, n_valid: np.ndarray, mask: np.ndarray | None = None) -> pd.DataFrame:
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    f = batch_features(x, FS, mask, n_valid, load_policy().features)
    return pd.DataFrame({**record_columns(f.per_lead), **f.per_record})


def _fails(values: pd.Series, expectation_id: str) -> np.ndarray:
    kwargs = load_policy().spec(expectation_id).kwargs
    v = values.to_numpy(dtype=float)
    bad = np.zeros(len(v), bool)
    if "max_value" in kwargs:
        bad |= v > kwargs["max_value"]
    if "min_value" in kwargs:
        bad |= v < kwargs["min_value"]
    return bad


def test_longest_true_run() -> None:
    m = np.array([[0, 1, 1, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], bool)
    assert longest_true_run(m).tolist() == [3, 0, 8]


def test_mains_frequencies_fold_into_the_stored_band() -> None:
    assert aliased_frequency(50, 100) == 50
    assert aliased_frequency(60, 100) == 40
    assert aliased_frequency(60, 500) == 60


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_planted_defect_crosses_policy_threshold(defect: str, sample_signals: np.ndarray) -> None:
    expectation = load_policy().spec(DEFECT_CHECK[defect])
    assert expectation.column is not None
    n = len(sample_signals)
    n_valid = np.full(n, sample_signals.shape[-1])
    clean = _table(sample_signals, n_valid)
    rng = np.random.default_rng(3)
    planted, planted_valid = [], []
    for x in sample_signals:
        y, row = DEFECTS[defect](x, {"lead_mask": [True] * 12, "n_valid_samples": 1000}, FS, rng)
        planted.append(y)
        planted_valid.append(row["n_valid_samples"])
    defective = _table(np.stack(planted), np.asarray(planted_valid))
    assert _fails(defective[expectation.column], expectation.id).mean() >= 0.95
    assert _fails(clean[expectation.column], expectation.id).mean() <= 0.05


def test_absent_leads_are_not_measured(sample_signals: np.ndarray) -> None:
    x = sample_signals[:4].copy()
    x[:, 6:] = 0.0
    mask = np.zeros((4, 12), bool)
    mask[:, :6] = True
    f = batch_features(x, FS, mask, np.full(4, 1000), load_policy().features)
    assert np.isnan(f.per_lead["flat_run_s"][:, 6:]).all()
    assert (f.per_lead["flat_run_s"][:, :6] < 1.0).all()
    assert np.isnan(f.per_record["limb_reversal_score"]).all()
    assert (f.per_record["einthoven_residual"] < 0.05).all()


def test_zero_padding_is_not_a_flat_line(sample_signals: np.ndarray) -> None:
    x = sample_signals[:3].copy()
    x[:, :, 700:] = 0.0
    f = batch_features(x, FS, np.ones((3, 12), bool), np.full(3, 700), load_policy().features)
    assert (f.per_lead["flat_run_s"] < 1.0).all()
    assert np.allclose(f.per_record["valid_duration_s"], 7.0)


def test_metadata_features() -> None:
    manifest = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d"],
            "content_hash": ["h1", "h2", "h1", "h3"],
            "patient_key": ["p1", "p2", "p2", "p3"],
            "split": ["train", "train", "test", "val"],
            "fs_original": [100.0, 500.0, 0.0, 250.0],
            "n_samples_original": [1000, 5000, 1000, 2500],
            "units_original": ["mV", "mV", "uV", "mV"],
            "age": [50.0, None, 300.0, 20.0],
            "sex": ["male", "female", None, "other"],
            "report": ["sinus rhythm", None, "  ", "normal"],
            "labels": [
                json.dumps({"NORM": 100.0}),
                json.dumps({"XYZ": 50.0}),
                json.dumps({"426783006": 100.0}),
                "",
            ],
            "label_system": ["SCP", "SCP", "SNOMED", ""],
        }
    )
    m = metadata_features(manifest, load_policy().vocabulary_codes)
    assert m["duplicate_content"].tolist() == [False, False, True, False]
    assert m["patient_split_conflict"].tolist() == [False, True, True, False]
    assert m["n_unknown_labels"].tolist() == [0, 1, 0, 0]
    assert m["unknown_labels"].tolist() == ["", "XYZ", "", ""]
    assert m["report_present"].tolist() == [True, False, False, True]
    assert m["duration_original_s"].iloc[:2].tolist() == [10.0, 10.0]
    assert np.isnan(m["duration_original_s"].iloc[2])
