"""Serving fixtures: one workspace with a tiny foundation model and real task models, packaged once.

Session-scoped: ingest samples/ (git + DVC), pretrain the TINY foundation, fine-tune (linear probe,
one epoch) the 12-lead and the lead-I superdiagnostic tasks, record passing gates, package both into a
build ``BENTOML_HOME``, promote them to production and pull them into an empty ``BENTOML_HOME`` the
servers run from; and the two as one family Bento, recorded in a copy of the registry.
"""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import Settings
from components.finetune.stage import FinetuneRequest, finetune
from components.io.datasets import ingest_and_version
from components.registry import ModelInfo, open_registry
from components.runs.lifecycle import RunOptions
from components.serving.bentostore import bentoml_home
from components.serving.package import PackageOptions, PackageResult, package
from components.serving.pull import PullResult, pull
from components.training.stage import pretrain
from components.workspace import Workspace
from tests.conftest import QUIET
from tests.training.conftest import TINY

API_KEY = "serving-test-key"
#: small enough that a 3 MiB body is refused, large enough for a 12-lead 10 s record at 500 Hz as JSON
MAX_BODY = 2 * 1024 * 1024
#: concurrent test requests wait this long for each other, so the served batching is exercised for sure
BATCH_WAIT_MS = 25.0
TASK = "ptbxl-superdiagnostic"
LEAD_I_TASK = "ptbxl-superdiagnostic-lead-i"


@dataclass(frozen=True)
class Packaged:
    model: ModelInfo
    package: PackageResult
    pulled: PullResult


def pretrained_workspace(root: Path, samples_dir: Path, params: dict[str, Any], salt: str) -> Settings:
    """A git + DVC workspace at ``root`` with ``params``, samples/ ingested and versioned, and a foundation
    model pretrained with its ``pretrain:`` parameters."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "config", "user.email", "test@ecgops.invalid"], check=True)
    subprocess.run(["git", "-C", str(root), "config", "user.name", "ecgops test"], check=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    settings = Settings(
        workspace=root,
        registry_url=f"sqlite:///{root / 'registry.db'}",
        dvc_remote_url=str(root / "dvc-remote"),
        patient_salt=salt,  # type: ignore[arg-type]
    )
    ingest_and_version(Workspace(settings), samples_dir, options=QUIET)
    result = pretrain(Workspace(settings))
    assert result is not None and result.model_ref is not None
    return settings


@pytest.fixture(scope="session")
def serving_settings(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Settings:
    """A git + DVC workspace with samples/ ingested and versioned and a TINY foundation model."""
    serve = {"max_body_bytes": MAX_BODY, "batch_wait_ms": BATCH_WAIT_MS}
    params = {"ingest": {"workers": 1}, "pretrain": TINY, "serve": serve}
    return pretrained_workspace(tmp_path_factory.mktemp("serving-ws"), samples_dir, params, "serving-salt")


@pytest.fixture(scope="session")
def foundation_ref(serving_settings: Settings) -> str:
    with open_registry(serving_settings.resolved_registry_url) as registry:
        return registry.models(kind="foundation", limit=1)[0].ref


@pytest.fixture(scope="session")
def build_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BENTOML_HOME Bentos are built in (the packaging machine's)."""
    return tmp_path_factory.mktemp("bentoml-build")


@pytest.fixture(scope="session")
def serve_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty BENTOML_HOME the Bentos are pulled into (the deployment machine's)."""
    return tmp_path_factory.mktemp("bentoml-serve")


def _gated_package_pull(settings: Settings, foundation: str, build: Path, serve: Path, task: str) -> Packaged:
    request = FinetuneRequest(task, from_model=foundation, mode="linear_probe")
    tuned = finetune(Workspace(settings), request, RunOptions(max_epochs=1))
    assert tuned.model_ref is not None
    with open_registry(settings.resolved_registry_url) as registry:
        model = registry.model(tuned.model_ref)
        registry.record_gate_decision(
            model.ref, policy="serving-test", verdict="pass", reasons=["floors met"]
        )
    with bentoml_home(build):
        packaged = package(Workspace(settings), model.ref)
    with open_registry(settings.resolved_registry_url) as registry:
        registry.promote(model.ref, "production")
    pulled = pull(Workspace(settings), f"{task}@production", home=serve)
    return Packaged(model, packaged, pulled)


@pytest.fixture(scope="session")
def twelve_lead(
    serving_settings: Settings, foundation_ref: str, build_home: Path, serve_home: Path
) -> Packaged:
    """The 12-lead superdiagnostic model: gated, packaged, in production, pulled."""
    return _gated_package_pull(serving_settings, foundation_ref, build_home, serve_home, TASK)


@pytest.fixture(scope="session")
def lead_i(serving_settings: Settings, foundation_ref: str, build_home: Path, serve_home: Path) -> Packaged:
    """The lead-I superdiagnostic model: gated, packaged, in production, pulled."""
    return _gated_package_pull(serving_settings, foundation_ref, build_home, serve_home, LEAD_I_TASK)


def _with_registry_copy(settings: Settings, directory: Path) -> Settings:
    """``settings`` with a copy of its SQLite registry (in ``directory``) as they are now."""
    copy = directory / "registry.db"
    with (
        closing(sqlite3.connect(settings.resolved_registry_url.removeprefix("sqlite:///"))) as src,
        closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
    return settings.model_copy(update={"registry_url": f"sqlite:///{copy}"})


@pytest.fixture(scope="session")
def family(
    serving_settings: Settings,
    twelve_lead: Packaged,
    lead_i: Packaged,
    build_home: Path,
    serve_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Packaged, Settings]:
    """The 12-lead model packaged as a family Bento with the lead-I model (the production model of the
    family's other tasks; lead II and limb have none), pulled; and the workspace settings it was recorded
    in: a copy of the registry, so that this Bento of the production 12-lead model stays out of the other
    tests' ``bento pull TASK@production``."""
    settings = _with_registry_copy(serving_settings, tmp_path_factory.mktemp("family-registry"))
    with bentoml_home(build_home):
        packaged = package(
            Workspace(settings), twelve_lead.model.ref, PackageOptions(family=True, stage="production")
        )
    pulled = pull(Workspace(settings), packaged.tag, home=serve_home)
    return Packaged(twelve_lead.model, packaged, pulled), settings
