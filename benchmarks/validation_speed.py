"""Speed of `ecgops validate` on a 20,000-record drop at 100 Hz.

Ingests the shared PTB-XL records with the real ingest, derives a store of ``--records`` records (the
originals plus time-rotated copies, so every record is distinct content), then times feature
extraction alone and the whole validate stage (features, GX checkpoints and Data Docs, quarantine,
plots, steward summary). Prints JSON with records/s and the GX share of the total.

Usage: python benchmarks/validation_speed.py [--data ../shared/data/ptb-xl] [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from components.config import Settings, parse_params
from components.io.ingest import IngestOptions, ingest
from components.io.store import DatasetStore
from components.quality import extract_features
from components.quality.defects import write_derived_store
from components.validation import load_policy, validate
from components.workspace import Workspace

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ecgops-vs-") as tmp:
        settings = Settings(workspace=Path(tmp))
        workspace = Workspace(settings, parse_params({"ingest": {"dataset": "ptbxl"}}))
        ingest(workspace, args.data, dataset="ptbxl", options=IngestOptions(progress=False))
        source = DatasetStore.open(settings.data_dir / "ptbxl")
        n = len(source)
        items = [(i % n, None if i < n else "time_shifted") for i in range(args.records)]
        write_derived_store(source, settings.data_dir / "drop", items, seed=1)
        store = DatasetStore.open(settings.data_dir / "drop")
        policy = load_policy()

        t = time.perf_counter()
        extract_features(store, policy.features, policy.vocabulary_codes)
        features_s = time.perf_counter() - t

        t = time.perf_counter()
        result = validate(workspace, "drop")
        validate_s = time.perf_counter() - t

    timings = result.timings_s
    print(
        json.dumps(
            {
                "records": result.n_records,
                "fs": store.info.fs,
                "samples_per_record": store.info.n_samples,
                "cpu_count": os.cpu_count(),
                "feature_extraction": {
                    "seconds": round(features_s, 2),
                    "records_per_s": round(result.n_records / features_s),
                },
                "validate": {
                    "seconds": round(validate_s, 2),
                    "records_per_s": round(result.n_records / validate_s),
                    "verdict": result.verdict,
                    "n_quarantined": result.n_quarantined,
                },
                "stage_seconds": timings,
                "gx_share_of_total": round(timings["gx"] / timings["total"], 3),
                "targets_met": bool(validate_s < 60 and timings["gx"] / timings["total"] < 0.25),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
