"""Pretraining speed of every recipe: the Lightning loop vs a bare PyTorch loop (same model, objectives,
batch, data, steps, this run).

Prints JSON, per recipe: samples/s of each loop, their ratio (target >= 0.90), and the share of each
loop's time spent waiting for the next batch (target <= 0.05). Samples per CPU-second and the rate of the
median step are printed too: on a shared machine they are less disturbed by bursts of other work than
mean wall-clock rates. Both loops call the same ``PretrainModule.losses`` on the same batches from the
same DataModule (memory-mapped store), with the same AdamW optimizer. The order alternates over rounds,
because the machine is shared. Uses ../shared/data/ptb-xl when present, else samples/. CPU only here: no
GPU figures (bf16 is used automatically when a GPU is present). The Lightning loop is the stage's own
Trainer (``pretrain_trainer``). The model's size is params.yaml's budget, the method each recipe's.

    python benchmarks/train_throughput.py [--recipes ecgclip cape ...] [--steps 30] [--rounds 4]
                                          [--batch-size 64] [--num-workers 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"


def _store(workspace: Path):
    from components.config import Settings, parse_params
    from components.io.ingest import IngestOptions, ingest
    from components.io.store import DatasetStore
    from components.workspace import Workspace

    drop = SHARED_PTBXL if SHARED_PTBXL.is_dir() else REPO / "samples"
    settings = Settings(workspace=workspace, patient_salt="benchmark")  # type: ignore[arg-type]
    ingest_workspace = Workspace(settings, parse_params({"ingest": {"workers": 1}}))
    ingest(ingest_workspace, drop, dataset="bench", options=IngestOptions(progress=False))
    return DatasetStore.open(settings.data_dir / "bench"), drop


def _module(store, tokenizer, params):
    import lightning as L

    from components.training.module import PretrainModule
    from components.training.stage import foundation_config

    L.seed_everything(params.seed, verbose=False)
    config = foundation_config(store, params, tokenizer)
    return PretrainModule(config.model_dump(mode="json"), params.model_dump(mode="json"))


def bare_loop(store, tokenizer, params, steps: int, warmup: int) -> dict[str, float]:
    """The same work without Lightning: fetch, losses, backward, AdamW step."""
    import torch

    from components.training.data import PretrainDataModule

    module = _module(store, tokenizer, params)
    data = PretrainDataModule(store.root, params, tokenizer=tokenizer, cache_dir=store.root.parent / "cache")
    data.setup("fit")
    optimizer = torch.optim.AdamW(module.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    module.train()
    waited = 0.0
    done = 0
    start = cpu_start = 0.0
    ends: list[float] = []
    while done < warmup + steps:
        iterator = iter(data.train_dataloader())
        while done < warmup + steps:
            if done == warmup:
                start, cpu_start, waited = time.perf_counter(), time.process_time(), 0.0
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            waited += time.perf_counter() - t0
            gen = torch.Generator().manual_seed(done)
            torch.manual_seed(done)
            loss = module.losses(batch, gen)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done >= warmup:
                ends.append(time.perf_counter())
    return _rates(
        params.batch_size, steps, time.perf_counter() - start, time.process_time() - cpu_start, waited, ends
    )


def _rates(
    batch: int, steps: int, wall: float, cpu: float, waited: float, ends: list[float]
) -> dict[str, float]:
    """Mean rates over the timed window, and the rate of the median step (robust to bursts of load)."""
    return {
        "samples_per_s": batch * steps / wall,
        "samples_per_cpu_s": batch * steps / cpu,
        "median_step_samples_per_s": batch / statistics.median(np.diff(ends)),
        "data_wait_share": waited / wall,
    }


def lightning_loop(store, tokenizer, params, steps: int, warmup: int, workdir: Path) -> dict[str, float]:
    """The pretrain stage's Trainer (CSV logs every step; no checkpoints, no validation), timed from the
    ``warmup``-th step."""
    import lightning as L
    from lightning.pytorch.profilers import SimpleProfiler

    from components.runs.trainer import TrainerSpec
    from components.training.data import PretrainDataModule
    from components.training.stage import pretrain_trainer

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.start = self.stop = self.cpu_start = self.cpu_stop = 0.0
            self.ends: list[float] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            if trainer.global_step == warmup:
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.stop, self.cpu_stop = time.perf_counter(), time.process_time()
            if trainer.global_step >= warmup:
                self.ends.append(self.stop)

    module = _module(store, tokenizer, params)
    data = PretrainDataModule(store.root, params, tokenizer=tokenizer, cache_dir=store.root.parent / "cache")
    clock, profiler = Clock(), SimpleProfiler(dirpath=workdir, filename="profile")
    trainer = pretrain_trainer(
        params,
        workdir,
        TrainerSpec(workdir, params.max_epochs, accelerator="cpu"),
        max_steps=warmup + steps,
        enable_checkpointing=False,
        callbacks=[clock],
        limit_val_batches=0,
        profiler=profiler,
    )
    trainer.fit(module, datamodule=data)
    fetches = next(v for k, v in profiler.recorded_durations.items() if k.endswith("train_dataloader_next"))
    waited = sum(fetches[warmup + 1 :])  # the fetch of the first timed batch happens before its start
    wall, cpu = clock.stop - clock.start, clock.cpu_stop - clock.cpu_start
    return _rates(params.batch_size, steps, wall, cpu, waited, clock.ends)


def recipe_throughput(store, params, args: argparse.Namespace, workdir: Path) -> dict:
    """Both loops, alternating over rounds, for one recipe's resolved parameters."""
    from components.training.stage import build_tokenizer

    tokenizer = build_tokenizer(store, params) if params.objectives.uses_text else None
    bare, light = [], []
    for round_ in range(args.rounds):
        order = ["bare", "lightning"] if round_ % 2 == 0 else ["lightning", "bare"]
        for which in order:
            if which == "bare":
                bare.append(bare_loop(store, tokenizer, params, args.steps, args.warmup))
            else:
                light.append(lightning_loop(store, tokenizer, params, args.steps, args.warmup, workdir))

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    weights = {k: v for k, v in params.objectives.weights().items() if v > 0}
    return {
        "encoder": params.ecg.arch,
        "objectives": weights,
        "bare_pytorch": {"samples_per_s": round(median(bare, "samples_per_s"), 1), "runs": bare},
        "lightning": {"samples_per_s": round(median(light, "samples_per_s"), 1), "runs": light},
        "ratio_lightning_to_bare": round(median(light, "samples_per_s") / median(bare, "samples_per_s"), 3),
        "ratio_lightning_to_bare_cpu_time": round(
            median(light, "samples_per_cpu_s") / median(bare, "samples_per_cpu_s"), 3
        ),
        "ratio_lightning_to_bare_median_step": round(
            median(light, "median_step_samples_per_s") / median(bare, "median_step_samples_per_s"), 3
        ),
        "data_wait_share_lightning": round(median(light, "data_wait_share"), 4),
        "data_wait_share_bare": round(median(bare, "data_wait_share"), 4),
    }


def main() -> None:
    from components.training.recipes import recipe_names

    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="+", default=recipe_names(), choices=recipe_names())
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args()

    import torch

    from components.config import raw_params
    from components.training.params import PretrainParams

    torch.set_num_threads(torch.get_num_threads())
    written = raw_params(args.params).get("pretrain") or {}
    budget = {"batch_size": args.batch_size, "num_workers": args.num_workers}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store, drop = _store(Path(tmp))
        for recipe in args.recipes:
            params = PretrainParams.model_validate(written | budget | {"recipe": recipe})
            results[recipe] = recipe_throughput(store, params, args, Path(tmp))
    print(
        json.dumps(
            {
                "data": str(drop),
                "device": "cpu",
                "torch_threads": torch.get_num_threads(),
                "gpu": "none on this machine: no GPU figures",
                "budget": {"ecg": written.get("ecg"), "text_width": (written.get("text") or {}).get("width")},
                "batch_size": args.batch_size,
                "steps_timed": args.steps,
                "warmup_steps": args.warmup,
                "rounds": args.rounds,
                "num_workers": args.num_workers,
                "target_ratio": 0.9,
                "target_data_wait_share": 0.05,
                "recipes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
