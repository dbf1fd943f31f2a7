"""Batch inference speed: ``ecgops predict`` end to end vs a bare batched forward of the same model.

Builds a scratch workspace (ingest samples/, pretrain and fine-tune the params.yaml model for one epoch
each — speed does not depend on training length —, gate, promote), then scores a drop (``--drop``:
../shared/data/ptb-xl, 1,987 records, when present, else samples/) with
:func:`components.inference.batch.predict_drop`: reading with ingest's readers in ``predict.workers``
processes, windows, one forward per chunk, Parquet output, prediction log. The bare forward is the same
model's ``predict_proba`` over the same records, already read and canonical in memory, in batches of
``predict.batch_size``, with the same torch threads. Both run ``--rounds`` times alternately; the median
ratio of records/s is compared with the target (>= 0.8). Prints one JSON object.

    python benchmarks/batch_predict.py [--drop DIR] [--encoder demo|default] [--recipe R] [--rounds 3]
                                       [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"
TASK = "ptbxl-superdiagnostic"
RATIO_TARGET = 0.8


ENCODERS: dict[str, dict[str, int]] = {"demo": {}, "default": {"width": 64, "depth": 4}}


def build(root: Path, ecg: dict[str, int], recipe: str | None) -> Any:
    """A workspace with the task's model in production (reused when ``root`` already has one); ``ecg``
    overrides the params.yaml encoder's size, ``recipe`` its pretraining recipe (and so its architecture)."""
    from benchmarks.production_model import benchmark_settings, production_model, train_production_model

    settings = benchmark_settings(root)
    if production_model(settings) is None:
        train_production_model(settings, ecg, recipe)
    return settings


def bare_forward(workspace: Any, drop: Path) -> tuple[Any, int]:
    """The model and a function timing its bare batched forward over the drop's records (read first)."""
    from components.inference.models import load_deployed
    from components.inference.reader import read_drop
    from components.io.canonical import split_windows
    from components.io.prepare import PreparedRecord

    with workspace.registry() as registry:
        deployed = load_deployed(registry, f"{TASK}@production")
    model = deployed.model
    _, chunks = read_drop(drop, "auto", model.cfg.fs, workers=0, chunk_records=256)
    records = [r for chunk in chunks for r in chunk if isinstance(r, PreparedRecord)]
    length = model.cfg.n_samples
    signals = np.concatenate([split_windows(r.signal, r.n_valid_samples, length) for r in records])
    masks = np.stack([r.lead_mask for r in records])
    batch = workspace.params.predict.batch_size

    def run() -> float:
        started = time.perf_counter()
        model.predict_proba(signals, masks, batch_size=batch)
        return len(records) / (time.perf_counter() - started)

    return run, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_drop = SHARED_PTBXL if SHARED_PTBXL.is_dir() else REPO / "samples"
    parser.add_argument("--drop", type=Path, default=default_drop)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--encoder", choices=list(ENCODERS), default="demo", help="demo: params.yaml's size")
    parser.add_argument("--recipe", default=None, help="pretraining recipe (default: params.yaml's)")
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the workspace here")
    args = parser.parse_args()

    import torch

    from components.inference.batch import BatchRequest, predict_drop
    from components.workspace import Workspace

    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch) / "ws"
        root.mkdir(parents=True, exist_ok=True)
        workspace = Workspace(build(root, ENCODERS[args.encoder], args.recipe))
        bare, n_records = bare_forward(workspace, args.drop)
        bare_rates: list[float] = []
        batch_rates: list[float] = []
        last = None
        for i in range(args.rounds):
            bare_rates.append(bare())
            out = str(Path(scratch) / f"out-{i}")
            request = BatchRequest(drop=args.drop, model=f"{TASK}@production", out=out)
            last = predict_drop(workspace, request)
            batch_rates.append(last.records_per_s)
        ratios = [b / f for b, f in zip(batch_rates, bare_rates, strict=True)]
        print(
            json.dumps(
                {
                    "drop": str(args.drop),
                    "encoder": args.encoder,
                    "recipe": args.recipe or "params.yaml",
                    "records": n_records,
                    "quarantined": last.n_quarantined if last else None,
                    "model": last.model_ref if last else None,
                    "workers": workspace.params.predict.workers,
                    "batch_size": workspace.params.predict.batch_size,
                    "torch_threads": torch.get_num_threads(),
                    "cores": len(os.sched_getaffinity(0)),
                    "bare_records_per_s": [round(r, 1) for r in bare_rates],
                    "batch_records_per_s": [round(r, 1) for r in batch_rates],
                    "ratio_median": round(statistics.median(ratios), 3),
                    "target": RATIO_TARGET,
                    "met": statistics.median(ratios) >= RATIO_TARGET,
                    "logged": last.n_logged if last else None,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
