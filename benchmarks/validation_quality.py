"""Detection quality of `ecgops validate`: recall per planted defect, false-positive rate on real records.

Ingests the shared PTB-XL records (100 Hz) with the real ingest, derives a store holding every
original record plus one copy of every record per defect type (components/quality/defects.py), runs
the real validate stage and prints JSON:

* recall per defect: fraction of planted copies quarantined (and, stricter, quarantined for a reason
  that names the defect);
* false-positive rate: fraction of untouched originals quarantined, overall and split by PTB-XL's own
  signal-quality annotations (baseline_drift, static_noise, burst_noise, electrodes_problems).

Usage: python benchmarks/validation_quality.py [--data ../shared/data/ptb-xl] [--limit N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from components.config import Settings, parse_params
from components.io.ingest import IngestOptions, ingest
from components.io.store import DatasetStore
from components.quality.defects import DEFECTS, write_derived_store
from components.validation import ValidateOptions, validate
from components.workspace import Workspace

# The expectations whose failure names each defect (for the stricter "right reason" recall).
EXPECTED_REASONS = {
    "lead_zeroed": {"no_flat_line"},
    "clipping": {"no_clipping"},
    "mains_hum_50hz": {"no_mains_interference"},
    "baseline_wander": {"no_strong_baseline_wander"},
    "la_ra_swap": {"no_limb_lead_reversal"},
    "nan_gap": {"no_missing_samples"},
    "wrong_sampling_rate": {"duration_allowed", "enough_signal", "plausible_heart_rate"},
    "microvolts": {"amplitude_in_mv"},
}
ANNOTATIONS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"


def _annotated(manifest: pd.DataFrame) -> pd.DataFrame:
    notes = manifest["annotations"].map(json.loads)
    out = pd.DataFrame({a: notes.map(lambda d, a=a: bool(str(d.get(a) or "").strip())) for a in ANNOTATIONS})
    out["record_id"] = manifest["record_id"].to_numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N originals (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ecgops-vq-") as tmp:
        settings = Settings(workspace=Path(tmp))
        workspace = Workspace(settings, parse_params({"ingest": {"dataset": "ptbxl"}}))
        t = time.perf_counter()
        ingest(workspace, args.data, dataset="ptbxl", options=IngestOptions(progress=False))
        ingest_s = time.perf_counter() - t
        source = DatasetStore.open(settings.data_dir / "ptbxl")
        n = len(source) if not args.limit else min(args.limit, len(source))
        items: list[tuple[int, str | None]] = [(i, None) for i in range(n)]
        items += [(i, name) for name in DEFECTS for i in range(n)]
        truth = write_derived_store(source, settings.data_dir / "planted", items, seed=args.seed)
        t = time.perf_counter()
        result = validate(workspace, "planted", options=ValidateOptions(plots=False))
        validate_s = time.perf_counter() - t
        quarantine = pd.read_parquet(result.quarantine_path)

    reasons = {
        rid: set(ids.split(","))
        for rid, ids in zip(quarantine["record_id"], quarantine["reason_ids"], strict=True)
    }
    truth["flagged"] = truth["record_id"].map(lambda r: r in reasons)
    recall = {}
    for name in DEFECTS:
        planted = truth[truth["transform"] == name]
        right = planted["record_id"].map(
            lambda r, name=name: bool(reasons.get(r, set()) & EXPECTED_REASONS[name])
        )
        recall[name] = {
            "n": len(planted),
            "recall": round(float(planted["flagged"].mean()), 4),
            "recall_right_reason": round(float(right.mean()), 4),
        }
    originals = truth[truth["transform"] == ""].reset_index(drop=True)
    notes = _annotated(source.manifest.iloc[:n].reset_index(drop=True))
    any_note = notes[list(ANNOTATIONS)].any(axis=1).to_numpy()
    flagged = originals["flagged"].to_numpy()
    by_reason: dict[str, int] = {}
    for rid in originals.loc[flagged, "record_id"]:
        for r in reasons[rid]:
            by_reason[r] = by_reason.get(r, 0) + 1
    fpr = {
        "n_untouched": len(originals),
        "false_positive_rate": round(float(flagged.mean()), 4),
        "fpr_without_quality_annotation": round(float(flagged[~any_note].mean()), 4),
        "flag_rate_with_quality_annotation": round(float(flagged[any_note].mean()), 4)
        if any_note.any()
        else None,
        "flag_rate_per_annotation": {
            a: {
                "n": int(notes[a].sum()),
                "flagged": round(float(flagged[notes[a].to_numpy()].mean()), 4) if notes[a].any() else None,
            }
            for a in ANNOTATIONS
        },
        "false_positives_by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
    }
    print(
        json.dumps(
            {
                "data": str(args.data),
                "policy_version": result.policy_version,
                "seed": args.seed,
                "n_records_validated": result.n_records,
                "recall": recall,
                "untouched": fpr,
                "targets_met": bool(
                    all(v["recall"] >= 0.95 for v in recall.values()) and fpr["false_positive_rate"] <= 0.05
                ),
                "seconds": {
                    "ingest": round(ingest_s, 2),
                    "validate": round(validate_s, 2),
                    **result.timings_s,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
