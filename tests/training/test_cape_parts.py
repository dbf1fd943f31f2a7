"""CAPE's data side on real records: In-Distribution Batches under DDP, group keys, patient positives."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.training.batches import StoreRecords, batch_loader
from components.training.groups import record_groups
from components.training.patients import PartnerBatch, PatientPartners, patient_ids
from components.training.sampler import MERGED, EpochBatchSampler, SmallGroups


def _train(store: DatasetStore) -> tuple[np.ndarray, pd.DataFrame]:
    rows = np.flatnonzero(store.manifest["split"].to_numpy() == "train")
    return rows, store.manifest.iloc[rows].reset_index(drop=True)


def _ranks(groups: np.ndarray, batch_size: int, small_groups: SmallGroups = "merge") -> list[list[list[int]]]:
    """Every rank's batches of an epoch under a simulated world of 2."""
    return [
        list(
            EpochBatchSampler(
                len(groups),
                batch_size,
                seed=7,
                groups=groups,
                rank=r,
                world_size=2,
                small_groups=small_groups,
            )
        )
        for r in (0, 1)
    ]


def test_every_step_draws_all_ranks_from_one_site(demo_store: DatasetStore) -> None:
    groups = record_groups(_train(demo_store)[1], ["source", "site"])
    rank0, rank1 = _ranks(groups, 8, small_groups="pad")
    assert len(rank0) == len(rank1) > 0
    for a, b in zip(rank0, rank1, strict=True):
        assert len(a) == len(b) == 8
        assert len(set(groups[a + b].tolist())) == 1  # the global batch: one site on both ranks
    seen = [i for batch in rank0 + rank1 for i in batch]
    report = EpochBatchSampler(
        len(groups), 8, seed=7, groups=groups, world_size=2, small_groups="pad"
    ).report()
    assert report["padded"] == ["ptbxl/2"]  # 11 records, completed to one global batch of 16
    assert len(seen) - len(set(seen)) == report["repeats"] == 5  # the ranks share only those repeats


def test_small_sites_are_merged_not_dropped(demo_store: DatasetStore) -> None:
    groups = record_groups(_train(demo_store)[1], ["source", "site"])
    sizes = dict(zip(*np.unique(groups, return_counts=True), strict=True))
    small = sorted(g for g, n in sizes.items() if n < 16)
    assert small  # ptbxl/2 has 11 training records: fewer than a global batch of 2 x 8
    sampler = EpochBatchSampler(len(groups), 8, seed=7, groups=groups, world_size=2)
    report = sampler.report()
    assert json.loads(json.dumps(report)) == report
    assert report["merged"] == small and report["groups"] == {g: int(n) for g, n in sizes.items()}
    seen = {i for rank in _ranks(groups, 8) for batch in rank for i in batch}
    assert set(np.flatnonzero(np.isin(groups, small))) <= seen
    pools = {p["name"]: p for p in report["pools"]}
    assert pools[MERGED]["left_out"] == 0 and pools[MERGED]["batches"] >= 1
    assert report["records_left_out"] == sum(sizes[g] % 16 for g in sizes if g not in small)
    assert report["steps"] == len(sampler) == sum(p["batches"] for p in report["pools"])


@pytest.mark.parametrize("small_groups", ["merge", "pad"])
def test_a_tiny_group_is_seen_every_epoch_and_reported(small_groups: SmallGroups) -> None:
    groups = np.array(["a"] * 40 + ["b"] * 25 + ["c"] * 3 + ["d"] * 6)
    ranks = _ranks(groups, 4, small_groups=small_groups)
    seen = {i for rank in ranks for batch in rank for i in batch}
    assert set(range(65, 74)) <= seen  # every record of c and d
    report = EpochBatchSampler(74, 4, seed=7, groups=groups, world_size=2, small_groups=small_groups).report()
    pools = {p["name"]: p for p in report["pools"]}
    assert pools["b"]["left_out"] == 1 and report["records_left_out"] == 1
    if small_groups == "merge":
        assert report["merged"] == ["c", "d"] and report["padded"] == [MERGED]
        assert pools[MERGED] | {"groups": None} == {
            "name": MERGED,
            "groups": None,
            "records": 9,
            "batches": 2,
            "left_out": 0,
            "repeats": 7,
        }
        assert report["mixed_batches"] >= 1
    else:
        assert report["merged"] == [] and report["padded"] == ["c", "d"] and report["mixed_batches"] == 0
        assert pools["c"]["repeats"] == 5 and pools["d"]["repeats"] == 2
        for a, b in zip(*ranks, strict=True):
            assert len(set(groups[a + b].tolist())) == 1


def test_the_plan_is_the_same_on_every_rank_and_after_a_resume() -> None:
    groups = np.array(["x"] * 50 + ["y"] * 30 + ["z"] * 5)

    def sampler(rank: int, epoch: int = 3) -> EpochBatchSampler:
        return EpochBatchSampler(85, 4, seed=11, groups=groups, epoch=epoch, rank=rank, world_size=2)

    first = sampler(0)
    assert first.report() == sampler(1).report()
    assert [b.tolist() for b in first.global_batches()] == [b.tolist() for b in sampler(1).global_batches()]
    resumed = sampler(0)
    assert list(resumed) == list(first) and resumed.report() == first.report()
    moved = sampler(0, epoch=0)
    moved.set_epoch(3)
    assert list(moved) == list(first)
    assert list(sampler(0, epoch=4)) != list(first)


def test_record_groups_keys_and_unknown_columns(demo_store: DatasetStore) -> None:
    manifest = demo_store.manifest
    by_site = record_groups(manifest, ["source", "site"])
    assert set(by_site.tolist()) == {f"ptbxl/{s}" for s in manifest["site"].unique()}
    assert record_groups(manifest, ["device"]).tolist() == manifest["device"].astype(str).tolist()
    holes = manifest.head(3).assign(site=np.array([None, "", "4"], dtype=object))
    assert record_groups(holes, ["source", "site"]).tolist() == ["ptbxl/unknown", "ptbxl/unknown", "ptbxl/4"]
    with pytest.raises(ValueError, match=r"hospital.*patient_key.*device"):
        record_groups(manifest, ["source", "hospital"])


def test_partners_are_other_records_of_the_same_patient(demo_store: DatasetStore) -> None:
    _, train = _train(demo_store)
    keys = train["patient_key"].to_numpy()
    partners = PatientPartners(keys, seed=5)
    idx = np.arange(len(keys))
    partner = partners(idx, epoch=0)
    counts = train["patient_key"].map(train["patient_key"].value_counts()).to_numpy()
    assert (keys[partner] == keys).all()
    assert (counts >= 2).sum() >= 10  # the demo has patients with two training records
    assert ((partner != idx) == (counts >= 2)).all()
    assert partners.summary() == {
        "records": len(keys),
        "patients": len(set(keys)),
        "patients_with_several_records": int((train["patient_key"].value_counts() > 1).sum()),
        "records_with_partner": int((counts >= 2).sum()),
    }


def test_partners_are_reproducible_and_change_across_epochs() -> None:
    keys = np.array(["p"] * 6 + ["q"] * 3 + ["r"] + [None, None])
    idx = np.arange(len(keys))
    partners = PatientPartners(keys, seed=1)
    epochs = [partners(idx, epoch) for epoch in range(4)]
    assert np.array_equal(epochs[2], PatientPartners(keys, seed=1)(idx, 2))
    assert any(not np.array_equal(epochs[0], e) for e in epochs[1:])
    assert not np.array_equal(epochs[0], PatientPartners(keys, seed=2)(idx, 0))
    for partner in epochs:
        assert (partner[:9] != idx[:9]).all() and (partner[9:] == idx[9:]).all()
        assert (keys[partner[:9]] == keys[:9]).all()
    assert np.array_equal(partners(idx[[4, 0]], 1), epochs[1][[4, 0]])  # independent of the batch
    ids = patient_ids(keys)
    assert ids.dtype == np.int64 and len(set(ids[:6])) == 1 and ids[10] != ids[11]


def test_a_cape_batch_carries_the_partner_records(demo_store: DatasetStore) -> None:
    rows, train = _train(demo_store)
    masks = torch.from_numpy(demo_store.lead_masks()[rows])
    partners = PatientPartners(train["patient_key"], seed=3)
    extra = PartnerBatch(StoreView(demo_store.root), rows, masks, partners)
    records = StoreRecords(extra.view, rows, {"lead_mask": masks}, extra)
    groups = record_groups(train, ["source", "site"])
    extra.set_epoch(2)
    sampler = EpochBatchSampler(len(rows), 32, seed=3, groups=groups, epoch=2)
    batches = list(batch_loader(pickle.loads(pickle.dumps(records)), sampler, num_workers=0))
    paired = 0
    for indices, batch in zip(sampler, batches, strict=True):
        partner = partners(np.asarray(indices), 2)
        assert torch.equal(batch["partner_signal"], torch.from_numpy(demo_store.read(rows[partner])))
        assert torch.equal(batch["partner_lead_mask"], masks[partner])
        assert torch.equal(batch["patient_id"], torch.from_numpy(partners.patient_ids[indices]))
        assert batch["partner_is_self"].tolist() == (partner == np.asarray(indices)).tolist()
        paired += int((~batch["partner_is_self"]).sum())
    assert paired > 0
