"""Does pretraining pay? Label efficiency on PTB-XL superdiagnostic: scratch vs pretrained (linear probe and
full fine-tune) at 1 %, 10 % and 100 % of the training labels, all on the same test split. Prints JSON.

Ingests ../shared/data/ptb-xl (1,987 records; train = strat_fold 1-8, validation 9, test 10) into a temporary
workspace. The foundation model is pretrained with the real stage (params.yaml ``pretrain:`` plus the
budget given here, tokenizer also fed the training-fold patients' reports — as benchmarks/pretrain_quality.py)
and cached under ``.ecgops/benchmarks/label_efficiency/`` keyed by its parameters and the data, so re-runs
only fine-tune. Every model is trained by the real finetune stage (``finetune:`` parameters, overridable
here): label fractions are patient-level and seeded, the best validation epoch is kept, the validation
split is always complete. Scratch uses the foundation's encoder architecture with random weights.

Test metrics: macro AUROC over NORM/MI/STTC/CD/HYP with 95 % patient-level bootstrap CIs, per-class AUROC,
and paired bootstrap differences against scratch at 100 % (and against scratch at the same fraction).
The claim checked: "pretrained with 10 % of the labels matches or beats scratch with 100 %".

    python benchmarks/label_efficiency.py [--pretrain-epochs 30] [--epochs 15] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"
TASK = "ptbxl-superdiagnostic"
MODES = ("scratch", "linear_probe", "finetune")


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _ci(est) -> dict:
    return {"value": _round(est.value), "ci95": [_round(est.ci_low), _round(est.ci_high)]}


def _foundation(args, settings, cache_root: Path) -> tuple[Path, dict]:
    """The cached foundation model for these pretraining parameters and data, pretrained when missing."""
    from components.config import load_params
    from components.runs.lifecycle import RunOptions
    from components.training.stage import pretrain
    from components.workspace import Workspace

    params = load_params(args.params).pretrain
    text = params.text.model_copy(update={"extra_reports_csv": args.drop / "ptbxl_database.csv"})
    params = params.model_copy(update={"max_epochs": args.pretrain_epochs, "text": text})
    import pandas as pd

    manifest = pd.read_parquet(
        settings.data_dir / "ptbxl" / "manifest.parquet", columns=["content_hash", "split"]
    )
    data = "\n".join(sorted(manifest["content_hash"] + ":" + manifest["split"]))
    key = hashlib.sha256(
        (json.dumps(params.model_dump(mode="json"), sort_keys=True) + data).encode()
    ).hexdigest()[:16]
    cached = cache_root / f"foundation-{key}"
    info_file = cached / "benchmark.json"
    if info_file.is_file():
        return cached, json.loads(info_file.read_text()) | {"cached": True}
    started = time.perf_counter()
    cpu = RunOptions(register=False, accelerator="cpu")
    result = pretrain(Workspace(settings).with_params(pretrain=params), "ptbxl", cpu)
    assert result is not None
    info = {
        "epochs": result.epochs,
        "steps": result.steps,
        "train_records": result.train_records,
        "seconds": round(time.perf_counter() - started, 1),
        "zero_shot_macro_auroc": round(result.evaluation["metrics"]["zero_shot_macro_auroc"], 4),
        "ecg_encoder": params.ecg.model_dump(),
        "objectives": params.objectives.model_dump(),
        "batch_size": params.batch_size,
    }
    tmp = cached.with_name(cached.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(result.model_dir, tmp)
    (tmp / "benchmark.json").write_text(json.dumps(info, indent=2))
    tmp.rename(cached)
    return cached, info | {"cached": False}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: params.yaml)")
    parser.add_argument("--min-steps-per-epoch", type=int, default=10)
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--drop", type=Path, default=SHARED_PTBXL)
    parser.add_argument("--cache", type=Path, default=REPO / ".ecgops" / "benchmarks" / "label_efficiency")
    args = parser.parse_args()

    import numpy as np

    from components.config import Settings, load_params, parse_params
    from components.evaluation.predict import score, select_cohort
    from components.finetune.stage import FinetuneRequest, finetune
    from components.io.ingest import IngestOptions, ingest
    from components.io.store import DatasetStore
    from components.metrics.bootstrap import estimate, patient_weights
    from components.metrics.classification import auroc, macro
    from components.models.task_model import load_task_model
    from components.runs.lifecycle import RunOptions
    from components.tasks.spec import load_task
    from components.workspace import Workspace

    wall_started = time.perf_counter()
    fractions = [float(f) for f in args.fractions.split(",")]
    ft_params = load_params(args.params).finetune.model_copy(
        update={"min_steps_per_epoch": args.min_steps_per_epoch}
        | ({"max_epochs": args.epochs} if args.epochs else {})
    )
    spec = load_task(TASK)
    args.cache.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    scores: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(workspace=root, patient_salt="benchmark")  # type: ignore[arg-type]
        (root / "params.yaml").write_text(args.params.read_text())
        ingest_workspace = Workspace(settings, parse_params({"ingest": {"workers": 1}}))
        ingest(ingest_workspace, args.drop, dataset="ptbxl", options=IngestOptions(progress=False))
        foundation_dir, pretrain_info = _foundation(args, settings, args.cache)
        workspace = Workspace(settings).with_params(finetune=ft_params)
        store = DatasetStore.open(settings.data_dir / "ptbxl")
        test = select_cohort(store, spec, split="test", excluded_ids=frozenset())
        patients = store.manifest["patient_key"].to_numpy()[test.rows]
        for fraction in fractions:
            for mode in MODES:
                name = f"{mode}@{fraction:g}"
                started = time.perf_counter()
                request = FinetuneRequest(TASK, "ptbxl", str(foundation_dir), mode, fraction)
                result = finetune(workspace, request, RunOptions(register=False, accelerator="cpu"))
                seconds = time.perf_counter() - started
                scores[name] = score(load_task_model(result.model_dir), test, workspace.params.windows)
                print(f"{name}: {seconds:.0f} s", file=sys.stderr)
                runs[name] = {
                    "mode": mode,
                    "label_fraction": fraction,
                    "train_records": result.train_records,
                    "train_patients": result.train_patients,
                    "train_positives": result.train_positives,
                    "epochs": result.epochs,
                    "best_epoch": result.best_epoch,
                    "steps": result.steps,
                    "seconds": round(seconds, 1),
                    "val_macro_auroc": _round(result.val_metrics["macro_auroc"]),
                }
    y = test.targets
    weights = patient_weights(patients, args.rounds, seed=0)

    def per_label(proba: np.ndarray, w=None) -> np.ndarray:
        values = [auroc(y[:, j], proba[:, j], w) for j in range(y.shape[1])]
        return np.stack(values, axis=-1)

    boot = {name: macro(per_label(p, weights)) for name, p in scores.items()}
    point = {name: float(macro(per_label(p))) for name, p in scores.items()}
    for name, p in scores.items():
        runs[name]["test_macro_auroc"] = _ci(estimate(point[name], boot[name]))
        runs[name]["test_auroc_per_class"] = {
            lab: _round(v) for lab, v in zip(spec.label_names, per_label(p), strict=True)
        }

    def diff(a: str, b: str) -> dict:
        return _ci(estimate(point[a] - point[b], boot[a] - boot[b]))

    full = "scratch@1"
    comparisons = {f"{n} - {full}": diff(n, full) for n in scores if n != full and full in scores}
    comparisons |= {
        f"{m}@{f:g} - scratch@{f:g}": diff(f"{m}@{f:g}", f"scratch@{f:g}")
        for f in fractions
        for m in ("linear_probe", "finetune")
    }
    claim = {}
    if 0.1 in fractions and 1.0 in fractions:
        best = max(("linear_probe@0.1", "finetune@0.1"), key=lambda n: point[n])
        d = diff(best, full)
        claim = {
            "statement": "pretrained with 10 % of the labels matches or beats scratch with 100 %",
            "best_pretrained_at_10pct": best,
            "difference_vs_scratch_100pct": d,
            "holds_on_point_estimate": bool(point[best] >= point[full]),
            "holds_significantly": bool(d["ci95"][0] is not None and d["ci95"][0] > 0),
            "non_inferior_margin_0.02": bool(d["ci95"][0] is not None and d["ci95"][0] >= -0.02),
        }
    out = {
        "data": str(args.drop),
        "task": TASK,
        "test": {
            "records": len(test.rows),
            "patients": len(set(patients)),
            "positives": test_positives(spec, y),
        },
        "budget": {
            "device": "cpu (2 shared cores, no GPU)",
            "pretrain": pretrain_info,
            "finetune": {
                "max_epochs": ft_params.max_epochs,
                "min_steps_per_epoch": ft_params.min_steps_per_epoch,
                "batch_size": ft_params.batch_size,
                "lr": ft_params.lr,
                "encoder_lr_factor": ft_params.encoder_lr_factor,
                "selection": "best validation macro AUROC epoch (full validation split, strat_fold 9)",
                "seeds": 1,
            },
            "total_finetune_seconds": round(sum(r["seconds"] for r in runs.values()), 1),
            "benchmark_wall_seconds": round(time.perf_counter() - wall_started, 1),
            "bootstrap_rounds": args.rounds,
        },
        "runs": runs,
        "paired_differences": comparisons,
        "claim": claim,
    }
    print(json.dumps(out, indent=2))


def test_positives(spec, y) -> dict:
    return {lab: int(y[:, j].sum()) for j, lab in enumerate(spec.label_names)}


if __name__ == "__main__":
    main()
