"""Fixtures for the pretraining tests: one real PTB-XL store (samples/), tiny models, isolated workspaces."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import Settings
from components.training.params import PretrainParams

REPO_ROOT = Path(__file__).resolve().parents[2]

#: small enough for 2 shared CPU cores: a few seconds per epoch
TINY: dict[str, Any] = {
    "batch_size": 16,
    "max_epochs": 2,
    "limit_train_records": 64,
    "embed_dim": 32,
    "warmup_steps": 2,
    "ecg": {"arch": "resnet", "width": 16, "depth": 2},
    "text": {"width": 32, "depth": 1, "heads": 2, "vocab_size": 300, "max_tokens": 32},
}


@pytest.fixture
def tiny_params() -> PretrainParams:
    return PretrainParams.model_validate(TINY)


@pytest.fixture
def train_workspace(tmp_path: Path, demo_store_root: Path) -> Settings:
    """A workspace whose ``data/demo`` is the shared demo store, with a tiny ``pretrain:`` in params.yaml."""
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "data" / "demo").symlink_to(demo_store_root)
    (root / "params.yaml").write_text(yaml.safe_dump({"pretrain": TINY}))
    return Settings(workspace=root, registry_url=f"sqlite:///{tmp_path}/registry.db", patient_salt="x")  # type: ignore[arg-type]


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running ``python -m components.cli.pretrain_cmd`` against ``settings``."""
    env = dict(os.environ)
    env |= {
        "ECGOPS_WORKSPACE": str(settings.workspace),
        "ECGOPS_REGISTRY_URL": settings.resolved_registry_url,
        "ECGOPS_PATIENT_SALT": "x",
        "PYTHONPATH": str(REPO_ROOT),
    }
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "components.cli.pretrain_cmd", *args]
