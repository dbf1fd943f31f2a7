"""Fixtures of the fine-tuning tests: the shared trained workspace (see tests/finetune/workspace.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import Settings
from tests.finetune.workspace import build_base, copy_workspace


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory: pytest.TempPathFactory, demo_store_root: Path, fixtures_dir: Path) -> Path:
    return build_base(
        tmp_path_factory.getbasetemp() / "finetune-base", demo_store_root, fixtures_dir / "cinc"
    )


@pytest.fixture
def ft_settings(trained_base: Path, tmp_path: Path) -> Settings:
    """A copy of the trained workspace: ecg-fm@1 and ptbxl-superdiagnostic@1 registered, data validated."""
    return copy_workspace(trained_base, tmp_path / "ws")
