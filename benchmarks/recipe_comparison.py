"""A first comparison of the pretraining recipes: each pretrained on the same PTB-XL records at the same
budget, then linear-probed on PTB-XL superdiagnostic (NORM, MI, STTC, CD, HYP).

Prints JSON. Ingests ../shared/data/ptb-xl (1,987 records: train 1,490 / val 242 / test 255 by strat_fold)
into a temporary workspace and pretrains every recipe with the real stage: params.yaml's ``pretrain:``
budget (encoder width and depth, batch size) over each recipe, for the same number of epochs, so every
recipe sees the same number of training samples. Each foundation model's frozen encoder is then probed
(logistic regression, L2 chosen on validation) and scored on the test split: macro AUROC and macro PR-AUC
with patient-level bootstrap 95 % CIs, per-class AUROC, and the paired difference to the probe of the same
architecture with random weights. Wall time and device are reported with each recipe. This is the small
first look issue 17 asks for, not the locked bake-off protocol (issue 19).

    python benchmarks/recipe_comparison.py [--recipes ...] [--epochs 10] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"


def probe_report(
    model, store, rounds: int, baseline: np.ndarray | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """The probe's test metrics with patient-level bootstrap CIs, and the paired difference to the
    ``baseline`` probabilities, computed as the evaluation stage computes them
    (:mod:`components.evaluation.compute`); returns the report and the probe's probabilities."""
    import pandas as pd

    from components.evaluation.compute import BootstrapSettings, Predictions, compare, label_metrics
    from components.metrics.bootstrap import patient_weights
    from components.training.evaluate import probe_scores
    from components.training.reports import SUPERCLASSES

    rows, targets, scores = probe_scores(model, store, "test")
    proba = 1.0 / (1.0 + np.exp(-scores))  # the probe is a logistic regression
    patients = store.manifest["patient_key"].astype(str).to_numpy()[rows]
    labels, settings = list(SUPERCLASSES), BootstrapSettings(rounds=rounds, seed=1)
    weights = patient_weights(patients, settings.rounds, settings.seed)
    per_label, macro = label_metrics(targets, proba, [0.5] * len(labels), labels, weights, settings)
    out: dict[str, Any] = {
        "n_test": len(rows),
        "macro_auroc": macro["auroc"].to_dict(),
        "macro_pr_auc": macro["pr_auc"].to_dict(),
        "auroc_per_class": {label: round(per_label[label]["auroc"].value, 4) for label in labels},
    }
    if baseline is not None:
        cohort = Predictions(rows, patients, targets, proba, pd.DataFrame(index=range(len(rows))))
        paired = compare(cohort, baseline, production="random init", labels=labels, settings=settings)
        out["minus_random_init_macro_auroc"] = paired.difference.to_dict()
    return out, proba


def main() -> None:
    from components.training.recipes import recipe_names

    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="+", default=recipe_names(), choices=recipe_names())
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--drop", type=Path, default=SHARED_PTBXL)
    args = parser.parse_args()

    import torch

    from components.config import Settings, parse_params, raw_params
    from components.io.ingest import IngestOptions, ingest
    from components.io.store import DatasetStore
    from components.models.checkpoint import load_foundation
    from components.models.foundation import SignalLanguageModel
    from components.runs.lifecycle import RunOptions
    from components.training.params import PretrainParams
    from components.training.stage import pretrain
    from components.workspace import Workspace

    written = (raw_params(args.params) or {}).get("pretrain") or {}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp), patient_salt="benchmark")  # type: ignore[arg-type]
        ingest(
            Workspace(settings, parse_params({"ingest": {"workers": 1}})),
            args.drop,
            dataset="ptbxl",
            options=IngestOptions(progress=False),
        )
        store = DatasetStore.open(settings.data_dir / "ptbxl")
        for recipe in args.recipes:
            params = PretrainParams.model_validate(written | {"recipe": recipe, "max_epochs": args.epochs})
            started = time.perf_counter()
            result = pretrain(
                Workspace(settings).with_params(pretrain=params),
                "ptbxl",
                RunOptions(accelerator="cpu", register=False, progress=False),
            )
            assert result is not None
            wall = time.perf_counter() - started
            model, _ = load_foundation(result.model_dir)
            torch.manual_seed(12345)
            random_init = SignalLanguageModel(model.cfg).eval()
            baseline, baseline_scores = probe_report(random_init, store, args.rounds)
            trained, _ = probe_report(model, store, args.rounds, baseline_scores)
            results[recipe] = {
                "encoder": params.ecg.arch,
                "encoder_parameters": sum(p.numel() for p in model.ecg.parameters()),
                "objectives": {k: v for k, v in params.objectives.weights().items() if v > 0},
                "config_sha256": params.config_sha256,
                "epochs": result.epochs,
                "steps": result.steps,
                "samples_seen": result.steps * params.batch_size,
                "pretrain_and_eval_wall_s": round(wall, 1),
                "probe": trained,
                "random_init_probe": baseline,
            }
            print(json.dumps({recipe: results[recipe]["probe"]}), file=sys.stderr, flush=True)
    print(
        json.dumps(
            {
                "data": str(args.drop),
                "device": "cpu (no GPU on this machine)",
                "torch_threads": torch.get_num_threads(),
                "budget": {
                    "epochs": args.epochs,
                    "batch_size": written.get("batch_size"),
                    "ecg": written.get("ecg"),
                },
                "bootstrap": f"{args.rounds} patient-level resamples (case weights), percentile 95 % CIs",
                "recipes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
