"""What validation keeps out of training stays out of pretraining."""

from __future__ import annotations

import numpy as np
import pytest

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.store import DatasetStore
from components.runs.lifecycle import RunOptions
from components.training.data import PretrainDataModule
from components.training.errors import PretrainError
from components.training.params import PretrainParams
from components.training.stage import build_tokenizer, pretrain
from components.workspace import Workspace
from tests.conftest import FIXTURES, QUIET, ingest_workspace


def test_excluded_records_are_in_no_split(demo_store: DatasetStore, tiny_params: PretrainParams) -> None:
    manifest = demo_store.manifest
    excluded = frozenset(manifest["record_id"].iloc[::7])  # every 7th record, across all splits
    tokenizer = build_tokenizer(demo_store, tiny_params)
    params = tiny_params.model_copy(update={"limit_train_records": None})
    data = PretrainDataModule(demo_store.root, params, tokenizer=tokenizer, excluded=excluded)
    data.setup("fit")
    used = np.concatenate([records.rows for records in data.splits.values()])
    assert not set(manifest["record_id"].iloc[used]) & excluded
    assert len(used) == len(manifest) - len(excluded)


def test_a_store_too_small_to_train_is_refused_clearly(
    workspace: Settings, ingest_params: IngestParams
) -> None:
    ingest(ingest_workspace(workspace, ingest_params), FIXTURES / "cinc", dataset="tiny", options=QUIET)
    with pytest.raises(PretrainError, match="fewer than one batch"):
        pretrain(Workspace(workspace), "tiny", RunOptions(register=False))
