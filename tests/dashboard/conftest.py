"""Dashboard fixtures: workspaces (empty, registry only, populated from real records) and AppTest runs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
import yaml
from streamlit.testing.v1 import AppTest

from components.config import Settings
from components.dashboard.launch import app_path
from components.io.store import DatasetStore
from components.registry import ModelInfo
from components.validation import latest_run_dir
from components.workspace import Workspace
from tests.conftest import SAMPLES
from tests.dashboard import populate
from tests.dashboard.traffic import Traffic, add_traffic
from tests.registry.conftest import artifact, db_url, pg_available, pg_url, reg, sqlite_url  # noqa: F401 (fixtures)

PAGES = (
    "views/data_quality.py",
    "views/datasets.py",
    "views/models.py",
    "views/deployments.py",
    "views/monitoring.py",
)
FIRST_VERSION_RECORDS = 200
APP_TIMEOUT_S = 60.0


def new_workspace(root: Path) -> Settings:
    """A git workspace with one ingest worker (tests share 2 cores) and its registry in ``.ecgops``."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "params.yaml").write_text(yaml.safe_dump({"ingest": {"workers": 1}}))
    return Settings(workspace=root, patient_salt="dashboard-test-salt")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Populated:
    """A workspace with two dataset versions, their validations and three task models."""

    settings: Settings
    first_md5: str
    second_md5: str
    models: list[ModelInfo]


@pytest.fixture(scope="session")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """200 sample records, then all 393 (two DVC versions, each validated), probe task models on top."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dashboard")
    settings = new_workspace(root / "workspace")
    first = populate.ptbxl_drop(SAMPLES, root / "drop-1", FIRST_VERSION_RECORDS)
    second = populate.ptbxl_drop(SAMPLES, root / "drop-2", None)
    first_md5, _ = populate.ingest_validate(settings, first)
    second_md5, validation_run = populate.ingest_validate(settings, second)
    data = populate.quality_task_data(settings, latest_run_dir(Workspace(settings), "demo"))
    models = populate.register_probe_models(
        settings,
        data,
        name="superdiag-probe",
        parent=None,
        dataset_version_md5=second_md5,
        validation_run_id=validation_run,
    )
    return Populated(settings, first_md5, second_md5, models)


@pytest.fixture(scope="session")
def traffic(populated: Populated) -> Traffic:
    """Two days of production traffic on the populated workspace (``traffic.add_traffic``): the prediction
    log with a corrupt part, an ok and a breach monitoring run, the staging model's shadow report."""
    production = next(m.ref for m in populated.models if m.stage == "production")
    candidate = next(m.ref for m in populated.models if m.stage == "staging")
    store = DatasetStore.open(populated.settings.data_dir / "demo")
    ws = Workspace(populated.settings)
    return add_traffic(ws, store, production=production, candidate=candidate, now=datetime.now(UTC))


@pytest.fixture
def use_workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Point the app (which reads ``ECGOPS_*`` on every run) at a workspace: ``use_workspace(settings)``."""

    def point(settings: Settings) -> None:
        monkeypatch.setenv("ECGOPS_WORKSPACE", str(settings.workspace))
        monkeypatch.delenv("ECGOPS_REGISTRY_URL", raising=False)
        monkeypatch.setenv("ECGOPS_USER", "steward-test")

    yield point


def open_page(page: str) -> AppTest:
    """Run the app and switch to ``page`` (one of :data:`PAGES`)."""
    at = AppTest.from_file(str(app_path()), default_timeout=APP_TIMEOUT_S).run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
