"""Augmentations, samplers and losses on real records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.io.store import DatasetStore
from components.training.augment import augment, lead_dropout
from components.training.objectives import clip_loss, grouped_nt_xent, nt_xent, patch_time_mask
from components.training.params import AugmentParams
from components.training.reports import composed_report, record_reports, report_ids, training_patient_reports
from components.training.sampler import EpochBatchSampler


def test_augment_keeps_shapes_and_at_least_one_present_lead(demo_store: DatasetStore) -> None:
    signal = torch.from_numpy(demo_store.read(np.arange(32)))
    mask = torch.from_numpy(demo_store.lead_masks()[:32])
    mask[0, 1:] = False  # a single-lead record stays single-lead
    gen = torch.Generator().manual_seed(0)
    view, view_mask, start = augment(signal, mask, AugmentParams(crop_fraction=0.8), demo_store.info.fs, gen)
    assert view.shape == (32, 12, int(0.8 * signal.shape[-1]))
    assert (
        int(start.min()) >= 0 and int(start.max()) <= 0.2 * signal.shape[-1] and len(set(start.tolist())) > 1
    )
    assert (view_mask.sum(1) >= 1).all() and not (view_mask & ~mask).any()
    assert view_mask[0].tolist() == mask[0].tolist()
    assert (view[~view_mask] == 0).all()
    many = lead_dropout(mask.repeat(20, 1), 0.3, 0.1, gen)
    assert (many.sum(1) == 1).float().mean() > 0.05  # single-lead views really occur


def test_same_generator_seed_same_view(demo_store: DatasetStore) -> None:
    signal = torch.from_numpy(demo_store.read(np.arange(8)))
    mask = torch.from_numpy(demo_store.lead_masks()[:8])
    a = augment(signal, mask, AugmentParams(), 100, torch.Generator().manual_seed(3))
    b = augment(signal, mask, AugmentParams(), 100, torch.Generator().manual_seed(3))
    c = augment(signal, mask, AugmentParams(), 100, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


def test_in_distribution_batches_hold_one_group_and_ranks_are_disjoint() -> None:
    groups = ["a"] * 40 + ["b"] * 25 + ["c"] * 3
    sampler = EpochBatchSampler(len(groups), 8, seed=1, groups=groups)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 + 3 + 1  # c (3 records) is completed to one batch, not dropped
    assert all(len({groups[i] for i in batch}) == 1 for batch in batches)
    ranks = [list(EpochBatchSampler(68, 8, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    seen = [i for rank in ranks for batch in rank for i in batch]
    assert len(seen) == len(set(seen)) == 64
    assert list(EpochBatchSampler(68, 8, seed=1, epoch=1)) != list(EpochBatchSampler(68, 8, seed=1, epoch=0))
    assert list(EpochBatchSampler(68, 8, seed=1, epoch=1)) == list(EpochBatchSampler(68, 8, seed=1, epoch=1))


def test_clip_loss_treats_identical_reports_as_positives() -> None:
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    aligned = clip_loss(text.clone(), text, scale, torch.arange(4))
    shuffled = clip_loss(text.flip(0), text, scale, torch.arange(4))
    assert aligned < shuffled
    # two records with the same report: matching either of their texts costs the same
    ids = torch.tensor([0, 0, 1, 2])
    swapped = text[[1, 0, 2, 3]]
    assert torch.isclose(clip_loss(text, text, scale, ids), clip_loss(swapped, text, scale, ids), atol=1e-5)


def test_records_without_a_report_are_never_clip_positives_of_each_other(demo_store: DatasetStore) -> None:
    reports = record_reports(demo_store.manifest)[:6]
    reports[1] = reports[0]
    reports[3] = reports[4] = reports[5] = ""
    ids = report_ids(reports)
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert len({ids[3], ids[4], ids[5]}) == 3 and not {ids[3], ids[4], ids[5]} & {ids[0], ids[2]}
    # in the loss: swapping the texts of two report-less records changes it (neither is the other's positive)
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    swapped = text[[0, 1, 2, 4, 3, 5]]
    scale = torch.tensor(2.0)
    tensor_ids = torch.from_numpy(ids)
    assert not torch.isclose(
        clip_loss(text, text, scale, tensor_ids), clip_loss(swapped, text, scale, tensor_ids)
    )


def test_nt_xent_and_patch_mask() -> None:
    torch.manual_seed(0)
    z = torch.randn(6, 16)
    assert nt_xent(z, z + 0.01 * torch.randn_like(z), 0.1) < nt_xent(z, torch.randn(6, 16), 0.1)
    mask = patch_time_mask(3, 1000, 32, 0.3, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert mask.shape == (3, 1, 1000)
    assert abs(mask.float().mean().item() - 0.3) < 0.05


def test_grouped_nt_xent_makes_every_view_of_a_group_a_positive() -> None:
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 16), torch.randn(6, 16)
    alone = torch.arange(6)
    assert torch.allclose(grouped_nt_xent(z1, z2, alone, 0.1), nt_xent(z1, z2, 0.1))  # distinct groups
    # records 0 and 1 are one patient's two ECGs: the grouped loss is lower when they are alike (they are
    # positives), the plain one higher (they would be each other's hardest negatives)
    noise = 0.05 * torch.randn(6, 16)
    alike = z1.clone()
    alike[1] = z1[0] + 0.01 * torch.randn(16)
    patients = torch.tensor([0, 0, 1, 2, 3, 4])
    assert grouped_nt_xent(alike, alike + noise, patients, 0.1) < grouped_nt_xent(
        z1, z1 + noise, patients, 0.1
    )
    assert grouped_nt_xent(alike, alike + noise, alone, 0.1) > grouped_nt_xent(z1, z1 + noise, alone, 0.1)


def test_every_record_gets_a_report(demo_store: DatasetStore) -> None:
    reports = record_reports(demo_store.manifest)
    assert all(reports) and len(reports) == len(demo_store)
    assert composed_report('{"164889003": 1.0, "426783006": 1.0}', "SNOMED") == (
        "atrial fibrillation. sinus rhythm."
    )
    assert composed_report('{"NORM": 100.0}', "SCP") == "normal ECG."


def test_training_patient_reports_exclude_validation_and_test_patients(tmp_path) -> None:
    csv = tmp_path / "db.csv"
    csv.write_text("patient_id,strat_fold,report\n1,1,alpha\n1,9,beta\n2,3,gamma\n3,10,delta\n4,2,\n")
    assert training_patient_reports(csv, list(range(1, 9))) == ["gamma"]


@pytest.mark.parametrize("n", [2, 3])
def test_sampler_refuses_too_little_data(n: int) -> None:
    with pytest.raises(ValueError):
        EpochBatchSampler(n * 4, 8, seed=0, world_size=n)


def test_prompt_languages_follow_the_reports(demo_store: DatasetStore) -> None:
    from components.training.evaluate import detect_languages, prompt_spec

    german = ["sinusrhythmus linkstyp sonst normales ekg", "sinusrhythmus lagetyp normal"]
    english = ["sinus rhythm. normal ecg.", "sinus rhythm. st segments are depressed in i, avl."]
    assert detect_languages(german * 5) == ["de"]
    assert detect_languages(english * 5) == ["en"]
    assert detect_languages(german * 5 + english) == ["de"]  # English under 20%
    assert detect_languages(record_reports(demo_store.manifest))[0] == "de"
    spec = prompt_spec()
    for language in spec["languages"].values():
        assert set(language["prompts"]) == set(spec["classes"])
