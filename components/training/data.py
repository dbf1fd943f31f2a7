"""Training data straight from the canonical store's memory-mapped shards (no per-record file opening)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from components.io.store import DatasetStore, manifest_sha256
from components.io.store_view import StoreView
from components.models.text import TextTokenizer
from components.training.batches import Batch, StoreRecords, batch_loader, sequential_batches
from components.training.groups import record_groups
from components.training.params import PretrainParams
from components.training.patients import PartnerBatch, PatientPartners, patient_ids
from components.training.reports import record_reports, report_ids
from components.training.rpeaks import rpeak_table
from components.training.sampler import EpochBatchSampler

#: adds fields to a batch from its indices (see :class:`StoreRecords`)
Extra = Callable[[np.ndarray], Batch]


class ReportDraw:
    """``extra_tokens`` for a batch: as many rows of ``pool`` (token ids of training-patient reports) as it
    has records, drawn as a function of the batch's indices and ``seed`` (so a resumed run draws the same).
    """

    def __init__(self, pool: np.ndarray, seed: int) -> None:
        self.pool = torch.from_numpy(pool)
        self.seed = seed

    def __call__(self, idx: np.ndarray) -> Batch:
        rng = np.random.default_rng([self.seed, *idx.tolist()])
        size = len(self.pool)
        draw = rng.choice(size, size=len(idx), replace=size < len(idx))
        return {"extra_tokens": self.pool[torch.from_numpy(draw)]}


class PretrainDataModule(L.LightningDataModule):
    """Train/val/test records of one store, batched as the run's ``params`` say.

    ``excluded`` record ids (quarantined or rejected by validation) are left out of every split. Every
    batch holds ``signal``, ``lead_mask`` and ``patient_id``. With a ``tokenizer`` (a recipe with a text
    space) it also holds the reports as token ids (``tokens``), or as embeddings (``text_features``, for a
    frozen report encoder: ``text_features`` turns report texts into them), and ``report_id``.
    ``text_pool``: reports of training-split patients for the text-only objective; training batches then
    carry ``extra_tokens`` (see :class:`ReportDraw`).
    """

    def __init__(
        self,
        root: Path,
        params: PretrainParams,
        *,
        tokenizer: TextTokenizer | None = None,
        excluded: frozenset[str] = frozenset(),
        text_features: Callable[[list[str]], np.ndarray] | None = None,
        text_pool: Sequence[str] | None = None,
        cache_dir: Path | None = None,
    ):
        super().__init__()
        self.cache_dir = cache_dir
        self.root = root
        self.params = params
        self.tokenizer = tokenizer
        self.excluded = excluded
        self.text_features = text_features
        self.text_pool = text_pool
        self.splits: dict[str, StoreRecords] = {}
        self.groups: np.ndarray | None = None
        self.partners: PartnerBatch | None = None
        self.sampler_report: dict[str, Any] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        store = DatasetStore.open(self.root)
        manifest = store.manifest
        view = StoreView(self.root)
        fields = {
            "lead_mask": torch.from_numpy(store.lead_masks()),
            "patient_id": torch.from_numpy(patient_ids(manifest["patient_key"])),
        } | self._report_fields(manifest)
        if self.params.augment.rpeak_crop:
            fields["rpeaks"] = torch.from_numpy(self._rpeaks(store, view))
        usable = ~manifest["record_id"].isin(self.excluded).to_numpy()  # validation's exclusions
        for split in ("train", "val", "test"):
            rows = np.flatnonzero((manifest["split"].to_numpy() == split) & usable)
            if split == "train" and self.params.limit_train_records is not None:
                rows = rows[: self.params.limit_train_records]
            extras = (
                self._training_extras(view, rows, fields["lead_mask"][rows], manifest)
                if split == "train"
                else []
            )
            self.splits[split] = StoreRecords(
                view, rows, {k: v[rows] for k, v in fields.items()}, BatchExtras(extras) if extras else None
            )
        train = manifest.iloc[self.splits["train"].rows]
        self.groups = record_groups(train, self.params.sampler.group_key)

    def _training_extras(
        self, view: StoreView, rows: np.ndarray, lead_masks: torch.Tensor, manifest: pd.DataFrame
    ) -> list[Extra]:
        """What training batches carry besides the records: training-patient reports (text-only
        objective), each record's partner of the same patient (CAPE)."""
        extras: list[Extra] = []
        pool = self._report_pool()
        if pool is not None:
            extras.append(ReportDraw(pool, self.params.seed))
        if self.params.objectives.patient > 0:
            partners = PatientPartners(manifest["patient_key"].to_numpy()[rows], self.params.seed)
            self.partners = PartnerBatch(view, rows, lead_masks, partners)
            extras.append(self.partners)
        return extras

    def _rpeaks(self, store: DatasetStore, view: StoreView) -> np.ndarray:
        """R-peak positions of every record (``rpeak_table``), computed once per dataset version and kept
        in ``cache_dir`` (keyed by the manifest's sha256)."""
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"{manifest_sha256(store.root)}-{store.info.fs}hz.npy"
            if path.is_file():
                cached: np.ndarray = np.load(path)
                return cached
        table = rpeak_table(view, np.arange(len(store.manifest)), store.info.fs)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.npy")
            np.save(partial, table)
            partial.replace(path)
        return table

    def _report_fields(self, manifest: pd.DataFrame) -> dict[str, torch.Tensor]:
        """``tokens`` (or ``text_features``) and ``report_id`` of every record; none without a tokenizer."""
        if self.tokenizer is None:
            return {}
        reports = record_reports(manifest)
        if self.text_features is not None:
            text, key = np.asarray(self.text_features(reports), dtype=np.float32), "text_features"
        else:
            text, key = self.tokenizer.encode(reports), "tokens"
        return {key: torch.from_numpy(text), "report_id": torch.from_numpy(report_ids(reports))}

    def _report_pool(self) -> np.ndarray | None:
        if not self.text_pool:
            return None
        assert self.tokenizer is not None, "the text-only objective needs the report tokenizer"
        return self.tokenizer.encode(sorted(set(self.text_pool)))

    def train_dataloader(self) -> DataLoader[Batch]:
        """This epoch's batches (the Trainer reloads them every epoch, see the stage)."""
        trainer = self.trainer
        p = self.params
        epoch = trainer.current_epoch if trainer else 0
        if self.partners is not None:  # before the loader is built: its workers copy it
            self.partners.set_epoch(epoch)
        sampler = EpochBatchSampler(
            len(self.splits["train"]),
            p.batch_size,
            seed=p.seed,
            groups=self.groups if p.sampler.in_distribution_batches else None,
            epoch=epoch,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            small_groups=p.sampler.small_groups,
        )
        self.sampler_report = sampler.report()
        return batch_loader(self.splits["train"], sampler, p.num_workers)

    def report(self) -> dict[str, Any]:
        """What the data side did (for the pretraining report): the last epoch's batch plan (groups,
        merged or padded small groups, records left out) and how many records had a patient partner."""
        out: dict[str, Any] = {"sampler": self.sampler_report}
        train = self.splits.get("train")
        if train is not None and "rpeaks" in train.fields:
            without = int((train.fields["rpeaks"] < 0).all(1).sum())
            out["rpeaks"] = {"records": len(train), "records_without_peaks": without}
        if self.partners is not None:
            out["patient_partners"] = self.partners.partners.summary()
        return out

    def val_dataloader(self) -> DataLoader[Batch]:
        batches = sequential_batches(len(self.splits["val"]), self.params.batch_size)
        return batch_loader(self.splits["val"], batches, self.params.num_workers)


class BatchExtras:
    """Several ``StoreRecords`` extras as one: each adds its fields to the batch."""

    def __init__(self, extras: Sequence[Extra]) -> None:
        self.extras = list(extras)

    def __call__(self, idx: np.ndarray) -> Batch:
        batch: Batch = {}
        for extra in self.extras:
            batch |= extra(idx)
        return batch
