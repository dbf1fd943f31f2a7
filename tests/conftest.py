"""Shared fixtures: real records shipped in the repo, optional shared data, isolated workspaces."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from components.config import IngestParams, Settings, parse_params
from components.io.ingest import IngestOptions
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.io.store import DatasetStore
    from components.models.task_model import TaskModel

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
#: ingest without a progress bar
QUIET = IngestOptions(progress=False)


#: the test files that take longest (module fixtures included), longest first: collected first, so that the
#: two xdist workers (``--dist loadfile`` hands out whole files in collection order) start with them and
#: finish together instead of one working through a long file while the other idles
LONGEST_FILES = (
    "flows/test_schedule.py",
    "faults/test_killed_stages.py",
    "flows/test_retrain.py",
    "dashboard/test_browser.py",
    "flows/test_dvc_pipeline.py",
    "flows/test_dask.py",
    "faults/test_registry_disconnect.py",
    "ingest/test_wfdb_reader.py",
    "training/test_stage.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (stable: every other test keeps its place); a random order
    (``make test-random``) is left to pytest-randomly."""
    if config.pluginmanager.hasplugin("randomly"):
        return
    rank = {REPO_ROOT / "tests" / name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


def pytest_configure(config: pytest.Config) -> None:
    """Rich reads the terminal width from ``COLUMNS`` when the CLI's consoles are made (at import): tests
    read its tables as text, so they get one width whatever the caller's environment exports."""
    os.environ["COLUMNS"] = "200"


@pytest.fixture(autouse=True)
def _process_state_as_found() -> Iterator[None]:
    """Each test leaves the process as it found it, whatever order tests run in: the environment (a local
    Dask cluster exports ``OMP_NUM_THREADS=1`` and a hash seed into it, and every later subprocess would
    inherit them), torch's thread count (float reductions, so weights compared bit for bit, depend on
    it) and the working directory."""
    import torch

    from components.process_env import environ_restored

    threads, cwd = torch.get_num_threads(), Path.cwd()
    with environ_restored():
        yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if Path.cwd() != cwd:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The embedded demo drop: real PTB-XL records at 100 Hz in the PTB-XL layout."""
    return SAMPLES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def demo_store_root(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    """``data/demo`` ingested once from the 393 real PTB-XL records in samples/ (shared by test packages)."""
    from components.io.ingest import ingest

    root = tmp_path_factory.mktemp("demo-store")
    settings = Settings(workspace=root, registry_url=f"sqlite:///{root}/r.db", patient_salt="x")  # type: ignore[arg-type]
    ingest(ingest_workspace(settings, IngestParams(workers=1)), samples_dir, dataset="demo", options=QUIET)
    return root / "data" / "demo"


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory: pytest.TempPathFactory, demo_store_root: Path, fixtures_dir: Path) -> Path:
    """The fine-tuning and evaluation tests' trained workspace, built once (tests/finetune/workspace.py)."""
    from tests.finetune.workspace import build_base

    return build_base(
        tmp_path_factory.getbasetemp() / "finetune-base", demo_store_root, fixtures_dir / "cinc"
    )


@pytest.fixture
def ft_settings(trained_base: Path, tmp_path: Path) -> Settings:
    """A copy of the trained workspace: ecg-fm@1 and ptbxl-superdiagnostic@1 registered, data validated."""
    from tests.finetune.workspace import copy_workspace

    return copy_workspace(trained_base, tmp_path / "ws")


@pytest.fixture(scope="session")
def demo_store(demo_store_root: Path) -> DatasetStore:
    from components.io.store import DatasetStore

    return DatasetStore.open(demo_store_root)


@pytest.fixture
def workspace(tmp_path: Path) -> Settings:
    """A fresh git + DVC workspace with its own registry and local DVC remote."""
    root = tmp_path / "workspace"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "config", "user.email", "test@ecgops.invalid"], check=True)
    subprocess.run(["git", "-C", str(root), "config", "user.name", "ecgops test"], check=True)
    return Settings(
        workspace=root,
        registry_url=f"sqlite:///{tmp_path / 'registry.db'}",
        dvc_remote_url=str(tmp_path / "dvc-remote"),
        patient_salt="test-salt",  # type: ignore[arg-type]
    )


@pytest.fixture
def ingest_params() -> IngestParams:
    """Demo parameters, one worker (tests run on 2 cores next to each other)."""
    return IngestParams(workers=1)


def ingest_workspace(settings: Settings, params: IngestParams) -> Workspace:
    """The workspace ``settings`` with ``params`` as its ``ingest:`` parameters (the other sections:
    defaults; its params.yaml is not read)."""
    return Workspace(settings, parse_params({"ingest": params.model_dump()}))


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for running ``python -m components.cli …`` against the workspace ``settings``."""
    env = {
        **os.environ,
        "ECGOPS_WORKSPACE": str(settings.workspace),
        "ECGOPS_REGISTRY_URL": settings.resolved_registry_url,
        "ECGOPS_DVC_REMOTE_URL": settings.resolved_dvc_remote_url,
        "ECGOPS_PATIENT_SALT": "cli-salt",
        **extra,
    }
    env.pop("PREFECT_API_URL", None)  # Prefect starts its own temporary server for the test
    return env


def zero_lead_in_drop(drop: Path, rel: str, lead: str) -> None:
    """Rewrite one WFDB record of ``drop`` with ``lead`` all zero (a disconnected electrode: validation
    quarantines it)."""
    import wfdb

    record = wfdb.rdrecord(str(drop / rel))
    signal = record.p_signal.copy()
    signal[:, record.sig_name.index(lead)] = 0.0
    wfdb.wrsamp(
        Path(rel).name,
        fs=record.fs,
        units=record.units,
        sig_name=record.sig_name,
        p_signal=signal,
        fmt=record.fmt,
        adc_gain=record.adc_gain,
        baseline=record.baseline,
        write_dir=str((drop / rel).parent),
    )


def untrained_task_model(
    arch: str = "resnet", leads: list[str] | None = None, task: str = "superdiagnostic"
) -> TaskModel:
    """A small task model (three superclasses, 10 s at 100 Hz) with seeded random weights, in eval mode:
    for tests of what is computed around a model (tracing, windows), not of what it learned."""
    import torch

    from components.io.leads import STANDARD_LEADS
    from components.models.config import EcgEncoderConfig
    from components.models.task_model import TaskModel, TaskModelConfig

    torch.manual_seed(0)
    cfg = TaskModelConfig(
        task=task,
        labels=["NORM", "MI", "STTC"],
        leads=list(STANDARD_LEADS) if leads is None else leads,
        fs=100,
        n_samples=1000,
        ecg=EcgEncoderConfig(arch=arch, width=16, depth=2),
    )
    return TaskModel(cfg).eval()
