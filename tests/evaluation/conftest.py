"""Fixtures of the evaluation tests: the shared trained workspace and one evaluation of its task model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from components.config import Settings
from components.evaluation.stage import EvaluationResult, evaluate
from components.workspace import Workspace
from tests.finetune.workspace import copy_workspace, write_policy


@pytest.fixture
def lenient(tmp_path: Path) -> Path:
    """A gate policy file every better-than-chance model passes."""
    return write_policy(tmp_path / "gates")


@dataclass
class Evaluated:
    settings: Settings
    result: EvaluationResult
    policy: Path


@pytest.fixture(scope="session")
def evaluated(trained_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    """``ptbxl-superdiagnostic@1`` evaluated once (external cohort: the CinC records) under the lenient
    policy, in a workspace of its own that the tests only read."""
    root = tmp_path_factory.mktemp("evaluated")
    settings = copy_workspace(trained_base, root / "ws")
    policy = write_policy(root / "gates")
    result = evaluate(
        Workspace(settings), "ptbxl-superdiagnostic@1", external="cinc", gate_policy=str(policy)
    )
    return Evaluated(settings, result, policy)
