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


def macro_pr_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    from components.metrics.classification import average_precision

    values = [float(average_precision(targets[:, j], scores[:, j])) for j in range(targets.shape[1])]
    return float(np.nanmean(values))


def patient_bootstrap(statistic, patients: np.ndarray, rounds: int, seed: int) -> list[float]:
    """Percentile 95 % CI of ``statistic(rows)`` with patients resampled with replacement."""
    unique, inverse = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(unique))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(unique), len(unique))])
        values.append(statistic(rows))
    kept = np.asarray(values)[~np.isnan(values)]
    return [round(float(np.quantile(kept, 0.025)), 4), round(float(np.quantile(kept, 0.975)), 4)]


def probe_report(
    model, store, rounds: int, baseline: np.ndarray | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """The probe's test metrics with CIs (and the paired difference to ``baseline`` scores)."""
    from components.metrics.classification import auroc, macro_auroc
    from components.training.evaluate import probe_scores
    from components.training.reports import SUPERCLASSES

    rows, targets, scores = probe_scores(model, store, "test")
    patients = store.manifest["patient_key"].astype(str).to_numpy()[rows]
    out: dict[str, Any] = {
        "n_test": len(rows),
        "macro_auroc": round(macro_auroc(targets, scores), 4),
        "macro_auroc_ci95": patient_bootstrap(
            lambda r: macro_auroc(targets[r], scores[r]), patients, rounds, 1
        ),
        "macro_pr_auc": round(macro_pr_auc(targets, scores), 4),
        "macro_pr_auc_ci95": patient_bootstrap(
            lambda r: macro_pr_auc(targets[r], scores[r]), patients, rounds, 2
        ),
        "auroc_per_class": {
            c: round(float(auroc(targets[:, j], scores[:, j])), 4) for j, c in enumerate(SUPERCLASSES)
        },
    }
    if baseline is not None:

        def difference(r: np.ndarray) -> float:
            return macro_auroc(targets[r], scores[r]) - macro_auroc(targets[r], baseline[r])

        out["minus_random_init_macro_auroc"] = round(difference(np.arange(len(rows))), 4)
        out["minus_random_init_ci95"] = patient_bootstrap(difference, patients, rounds, 3)
    return out, scores


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
                "bootstrap": f"{args.rounds} patient-level resamples, percentile 95 % CIs",
                "recipes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
