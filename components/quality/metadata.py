"""Metadata features of a manifest: header sanity, demographics, labels, duplicates and split leakage."""

from __future__ import annotations

import json
from collections.abc import Mapping, Set

import numpy as np
import pandas as pd


def _label_codes(raw: object) -> list[str]:
    if not isinstance(raw, str) or not raw.strip():
        return []
    parsed = json.loads(raw)
    return [str(code) for code in (parsed.keys() if isinstance(parsed, dict) else parsed)]


def metadata_features(manifest: pd.DataFrame, vocabularies: Mapping[str, Set[str]]) -> pd.DataFrame:
    """One row per manifest row (same order) with the metadata features the policy checks.

    ``vocabularies`` maps a label system (``'SCP'``, ``'SNOMED'``) to its known codes; codes of an
    unknown system all count as unknown.
    """
    fs = manifest["fs_original"].astype(float)
    n_orig = manifest["n_samples_original"].astype(float)
    unknown: list[str] = []
    n_labels: list[int] = []
    for raw, system in zip(manifest["labels"], manifest["label_system"], strict=True):
        codes = _label_codes(raw)
        known = vocabularies.get(str(system or ""), frozenset())
        unknown.append(",".join(sorted(c for c in codes if c not in known)))
        n_labels.append(len(codes))
    patients = manifest[["patient_key", "split"]]
    splits_per_patient = patients.groupby("patient_key")["split"].nunique()
    conflict = manifest["patient_key"].map(splits_per_patient).fillna(1).to_numpy() > 1
    report = manifest["report"]
    report_present = report.notna() & (report.astype(str).str.strip() != "")
    sex = manifest["sex"].astype("object").where(manifest["sex"].notna(), None)
    return pd.DataFrame(
        {
            "record_id": manifest["record_id"].astype(str).to_numpy(),
            "split": manifest["split"].astype(str).to_numpy(),
            "fs_original": fs.to_numpy(),
            "duration_original_s": (n_orig / fs.where(fs > 0)).to_numpy(),
            "units_original": manifest["units_original"].astype(str).to_numpy(),
            "age": pd.to_numeric(manifest["age"], errors="coerce").to_numpy(dtype=float),
            "sex": sex.to_numpy(),
            "report_present": report_present.to_numpy(dtype=bool),
            "label_system": manifest["label_system"].fillna("").astype(str).to_numpy(),
            "n_labels": np.asarray(n_labels, dtype=np.int32),
            "n_unknown_labels": np.asarray([len(u.split(",")) if u else 0 for u in unknown], dtype=np.int32),
            "unknown_labels": unknown,
            "duplicate_content": manifest["content_hash"].duplicated(keep="first").to_numpy(dtype=bool),
            "patient_split_conflict": conflict,
        }
    )
