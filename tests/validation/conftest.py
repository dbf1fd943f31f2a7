"""Fixtures for validation tests: a small real PTB-XL drop from samples/, ingested into a workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.store import DatasetStore
from components.quality.defects import DEFECTS, write_derived_store
from tests.conftest import QUIET, ingest_workspace

N_RECORDS = 80
PLANTED_PER_DEFECT = 2


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    """The first ``N_RECORDS`` sample records in the PTB-XL layout."""
    drop = tmp_path_factory.mktemp("drop")
    table = pd.read_csv(samples_dir / "ptbxl_database.csv")
    present = table["filename_lr"].map(lambda rel: (samples_dir / f"{rel}.hea").is_file())
    table = table[present].head(N_RECORDS)
    for rel in table["filename_lr"]:
        target = drop / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".hea", ".dat"):
            shutil.copy(samples_dir / f"{rel}{suffix}", target.with_name(target.name + suffix))
    table.to_csv(drop / "ptbxl_database.csv", index=False)
    shutil.copy(samples_dir / "scp_statements.csv", drop / "scp_statements.csv")
    return drop


@pytest.fixture(scope="session")
def sample_signals(samples_dir: Path) -> np.ndarray:
    """``(40, 12, 1000)`` float32 mV of real sample records, read with wfdb (no store involved)."""
    table = pd.read_csv(samples_dir / "ptbxl_database.csv")
    rels = [r for r in table["filename_lr"] if (samples_dir / f"{r}.hea").is_file()][:40]
    return np.stack([wfdb.rdsamp(str(samples_dir / r))[0].T.astype(np.float32) for r in rels])


@pytest.fixture
def demo(workspace: Settings, small_drop: Path, ingest_params: IngestParams) -> Settings:
    """A workspace whose ``demo`` dataset holds the small drop."""
    ingest(ingest_workspace(workspace, ingest_params), small_drop, dataset="demo", options=QUIET)
    return workspace


@pytest.fixture
def planted(demo: Settings) -> tuple[Settings, pd.DataFrame]:
    """Dataset ``planted``: every demo record plus ``PLANTED_PER_DEFECT`` defective copies per defect type."""
    source = DatasetStore.open(demo.data_dir / "demo")
    items: list[tuple[int, str | None]] = [(i, None) for i in range(len(source))]
    for k, name in enumerate(DEFECTS):
        items += [(k * PLANTED_PER_DEFECT + j, name) for j in range(PLANTED_PER_DEFECT)]
    truth = write_derived_store(source, demo.data_dir / "planted", items, seed=7)
    return demo, truth
