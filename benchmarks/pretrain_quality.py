"""Does pretraining learn? Zero-shot, linear probe vs a random encoder, retrieval — with bootstrap 95% CIs.

Prints JSON. Ingests ../shared/data/ptb-xl (1,987 records: train 1,490 / val 242 / test 255 by strat_fold)
into a temporary workspace, pretrains with the real stage (``params.yaml`` ``pretrain:`` plus the budget
given here; the tokenizer also learns from the reports of training-fold patients in the full
ptbxl_database.csv), then on the test split:

(a) zero-shot macro AUROC over NORM/MI/STTC/CD/HYP from the prompts in schemas/prompts/zero_shot.yaml;
(b) a linear probe (logistic regression, L2 chosen on validation) on the frozen pretrained encoder vs the
    same probe on a frozen randomly initialised encoder of the same architecture, with a paired bootstrap
    CI of the difference;
(c) ECG→report recall@10 vs chance (unique test reports as candidates);
plus zero-shot per prompt language, and zero-shot + the probe comparison with lead II alone (single-lead).
The 1,987 staged records (ecg_id 1-1999) hold more English than German reports, so `auto` picks both.

    python benchmarks/pretrain_quality.py [--epochs 30] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"


def _ci(values: tuple[float, float]) -> list[float]:
    return [round(values[0], 4), round(values[1], 4)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--drop", type=Path, default=SHARED_PTBXL)
    args = parser.parse_args()

    import numpy as np
    import torch

    from components.config import Settings, load_params, parse_params
    from components.io.ingest import IngestOptions, ingest
    from components.io.store import DatasetStore
    from components.metrics.bootstrap import bootstrap_ci
    from components.metrics.classification import macro_auroc
    from components.models.checkpoint import load_foundation
    from components.models.foundation import SignalLanguageModel
    from components.runs.lifecycle import RunOptions
    from components.training.evaluate import embed_ecgs, evaluate
    from components.training.probe import linear_probe
    from components.training.reports import superdiagnostic_targets
    from components.training.stage import pretrain
    from components.workspace import Workspace

    params = load_params(args.params).pretrain
    text = params.text.model_copy(update={"extra_reports_csv": args.drop / "ptbxl_database.csv"})
    params = params.model_copy(update={"max_epochs": args.epochs, "text": text})

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(workspace=root, patient_salt="benchmark")  # type: ignore[arg-type]
        ingest_workspace = Workspace(settings, parse_params({"ingest": {"workers": 1}}))
        ingest(ingest_workspace, args.drop, dataset="ptbxl", options=IngestOptions(progress=False))
        started = time.perf_counter()
        result = pretrain(
            Workspace(settings).with_params(pretrain=params), "ptbxl", RunOptions(accelerator="cpu")
        )
        train_seconds = time.perf_counter() - started
        assert result is not None
        store = DatasetStore.open(settings.data_dir / "ptbxl")
        model, tokenizer = load_foundation(result.model_dir)
        if tokenizer is None:
            raise SystemExit(f"recipe {params.recipe} learns no text space: this benchmark needs zero-shot")
        evaluation = evaluate(model, tokenizer, store, split="test", language=params.prompt_language)

        torch.manual_seed(12345)
        random_model = SignalLanguageModel(model.cfg).eval()
        manifest = store.manifest
        splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in ("train", "val", "test"):
            rows = np.flatnonzero(manifest["split"].to_numpy() == split)
            targets = superdiagnostic_targets(manifest.iloc[rows])
            keep = targets.sum(1) > 0
            splits[split] = (rows[keep], targets[keep])
        by_language = {
            lang: round(evaluate(model, tokenizer, store, language=lang).zero_shot_macro_auroc, 4)
            for lang in ("de", "en", "de+en")
        }
        lead_ii = evaluate(model, tokenizer, store, language=params.prompt_language, leads=["II"])

        def probes_for(leads: list[str] | None) -> dict:
            out = {}
            for name, encoder in (("pretrained", model), ("random_init", random_model)):
                feats = {s: embed_ecgs(encoder, store, r, leads=leads)[1] for s, (r, _) in splits.items()}
                out[name] = linear_probe(
                    (feats["train"], splits["train"][1]), (feats["val"], splits["val"][1]), feats["test"]
                )
            return out

        probes, probes_ii = probes_for(None), probes_for(["II"])
    y_test = splits["test"][1]
    n_test = len(y_test)

    def probe_auc(name: str, which: dict | None = None):
        chosen = probes if which is None else which
        return lambda idx: macro_auroc(y_test[idx], chosen[name].test_scores[idx])

    def difference(idx: np.ndarray) -> float:
        return probe_auc("pretrained")(idx) - probe_auc("random_init")(idx)

    def difference_ii(idx: np.ndarray) -> float:
        return probe_auc("pretrained", probes_ii)(idx) - probe_auc("random_init", probes_ii)(idx)

    text = evaluation.text
    assert text is not None and lead_ii.text is not None
    zs_targets, zs_scores = text.targets, text.zero_shot_scores
    hits10 = text.hits[10]
    full = np.arange(n_test)
    diff_ci = bootstrap_ci(difference, n_test, rounds=args.rounds, seed=1)
    diff_ii_ci = bootstrap_ci(difference_ii, n_test, rounds=args.rounds, seed=1)
    out = {
        "data": str(args.drop),
        "records": {s: len(r) for s, (r, _) in splits.items()} | {"test_all": evaluation.n_records},
        "budget": {
            "device": "cpu (2 shared cores, no GPU)",
            "epochs": result.epochs,
            "steps": result.steps,
            "batch_size": params.batch_size,
            "train_records": result.train_records,
            "train_and_eval_seconds": round(train_seconds, 1),
            "ecg_encoder": params.ecg.model_dump(),
            "ecg_encoder_parameters": sum(p.numel() for p in model.ecg.parameters()),
            "text_encoder_parameters": sum(p.numel() for p in model.text.parameters()),
            "objectives": params.objectives.model_dump(),
            "extra_text": "reports of training-fold patients from the full ptbxl_database.csv (tokenizer)",
        },
        "zero_shot": {
            "language": text.language,
            "macro_auroc": round(evaluation.zero_shot_macro_auroc, 4),
            "ci95": _ci(
                bootstrap_ci(
                    lambda idx: macro_auroc(zs_targets[idx], zs_scores[idx]),
                    len(zs_targets),
                    rounds=args.rounds,
                    seed=0,
                )
            ),
            "per_class": {k: round(v, 4) for k, v in text.zero_shot_auroc.items()},
            "n": len(zs_targets),
            "macro_auroc_by_prompt_language": by_language,
        },
        "linear_probe": {
            "pretrained_macro_auroc": round(probe_auc("pretrained")(full), 4),
            "pretrained_ci95": _ci(bootstrap_ci(probe_auc("pretrained"), n_test, rounds=args.rounds, seed=1)),
            "random_init_macro_auroc": round(probe_auc("random_init")(full), 4),
            "random_init_ci95": _ci(
                bootstrap_ci(probe_auc("random_init"), n_test, rounds=args.rounds, seed=1)
            ),
            "difference": round(difference(full), 4),
            "difference_ci95": _ci(diff_ci),
            "pretrained_wins": bool(diff_ci[0] > 0),
            "weight_decay": {k: p.weight_decay for k, p in probes.items()},
            "n": n_test,
        },
        "single_lead_II": {
            "zero_shot_macro_auroc": round(lead_ii.zero_shot_macro_auroc, 4),
            "linear_probe_pretrained_macro_auroc": round(probe_auc("pretrained", probes_ii)(full), 4),
            "linear_probe_random_init_macro_auroc": round(probe_auc("random_init", probes_ii)(full), 4),
            "difference": round(difference_ii(full), 4),
            "difference_ci95": _ci(diff_ii_ci),
            "recall_at_10": round(lead_ii.text.recall_at[10], 4),
        },
        "retrieval": {
            "recall_at": {str(k): round(v, 4) for k, v in text.recall_at.items()},
            "recall_at_10_ci95": _ci(
                bootstrap_ci(lambda idx: float(hits10[idx].mean()), len(hits10), rounds=args.rounds, seed=2)
            ),
            "chance_at": {str(k): round(v, 4) for k, v in text.chance_at.items()},
            "unique_reports": text.n_unique_reports,
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
