"""One trained workspace shared by the finetune and evaluation tests, built once per test session.

``data/demo`` is the 393 real PTB-XL records of samples/, ``data/cinc`` the six real PhysioNet/CinC records
of tests/fixtures/cinc (an external cohort). The registry holds the rows DVC versioning and validation
write for ``data/demo`` (a dataset version whose validation passed; ``data.dvc`` names it), a tiny
foundation model ``ecg-fm@1`` pretrained by the real stage, and ``ptbxl-superdiagnostic@1`` fine-tuned from
it by the real stage. Each test gets its own copy of the registry, state directory and artifact store.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import yaml

from components.config import IngestParams, Settings
from components.finetune.params import FinetuneParams
from components.finetune.stage import FinetuneRequest, finetune
from components.io.ingest import ingest
from components.registry import open_registry
from components.training.params import PretrainParams
from components.training.stage import pretrain
from components.workspace import Workspace
from tests.conftest import QUIET, ingest_workspace
from tests.training.conftest import TINY

TASK = "ptbxl-superdiagnostic"
#: a few seconds on 2 shared cores
TINY_FINETUNE: dict[str, Any] = {"max_epochs": 2, "batch_size": 16, "warmup_steps": 2}
PARAMS = {"pretrain": TINY, "finetune": TINY_FINETUNE, "evaluate": {"bootstrap_rounds": 200}}
#: a gate every sensible model passes: its floors only rule out worse-than-chance models
LENIENT_POLICY: dict[str, Any] = {
    "name": "lenient-test",
    "version": 1,
    "tasks": [TASK],
    "description": "test policy",
    "min_test_records": 10,
    "floors": {"bound": "point", "macro_auroc": 0.3},
    "data": {"require_validation": True, "allowed_verdicts": ["pass", "warn"]},
}


def settings_for(root: Path, registry: Path) -> Settings:
    return Settings(workspace=root, registry_url=f"sqlite:///{registry}", patient_salt="x")  # type: ignore[arg-type]


def _record_dataset_version(root: Path, settings: Settings) -> str:
    manifest = (root / "data" / "demo" / "manifest.parquet").read_bytes()
    md5 = hashlib.md5(manifest).hexdigest() + ".dir"
    (root / "data.dvc").write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": "data"}]}))
    with open_registry(settings.resolved_registry_url) as registry:
        registry.record_dataset_version(
            "demo",
            md5,
            git_rev=None,
            n_records=393,
            n_quarantined=0,
            n_patients=364,
            statistics={},
            parent_md5=None,
        )
        registry.record_validation_run(
            md5, policy_version="test", verdict="pass", report_uri=str(root / "summary.html"), statistics={}
        )
    return md5


def build_base(base: Path, demo_store_root: Path, cinc_dir: Path) -> Path:
    """Build the shared workspace once (a marker file says it is complete)."""
    if (base / "ready").is_file():
        return base
    shutil.rmtree(base, ignore_errors=True)
    (base / "data").mkdir(parents=True)
    (base / "data" / "demo").symlink_to(demo_store_root)
    (base / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    settings = settings_for(base, base / "registry.db")
    ingest(ingest_workspace(settings, IngestParams(workers=1)), cinc_dir, dataset="cinc", options=QUIET)
    _record_dataset_version(base, settings)
    workspace = Workspace(settings).with_params(
        pretrain=PretrainParams.model_validate(TINY), finetune=FinetuneParams.model_validate(TINY_FINETUNE)
    )
    pretrain(workspace, "demo")
    finetune(workspace, FinetuneRequest(TASK))
    (base / "ready").write_text("ok")
    return base


def copy_workspace(base: Path, root: Path) -> Settings:
    """A workspace over the shared data and artifacts with its own registry and state directory."""
    root.mkdir(parents=True)
    (root / "data").mkdir()
    for name in ("demo", "cinc"):
        (root / "data" / name).symlink_to((base / "data" / name).resolve())
    for name in ("params.yaml", "data.dvc"):
        shutil.copy(base / name, root / name)
    for suffix in ("", "-wal", "-shm"):
        source = base / f"registry.db{suffix}"
        if source.exists():
            shutil.copy(source, root / f"registry.db{suffix}")
    return settings_for(root, root / "registry.db")


def write_policy(directory: Path, **overrides: Any) -> Path:
    """A gate policy file: the lenient one with some sections replaced."""
    policy = LENIENT_POLICY | overrides
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{policy['name']}.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def run_cli(args: list[str], settings: Settings | None = None) -> tuple[int, str, str]:
    """Run ``ecgops ARGS`` in this process (the console script's ``main``), against ``settings``' workspace.

    Returns ``(exit code, stdout, stderr)``. In-process because importing the whole CLI in a fresh
    interpreter costs more than the commands under test.
    """
    import contextlib
    import io
    import os
    import sys

    from components.cli import main
    from components.config import get_settings

    env = {}
    if settings is not None:
        env = {
            "ECGOPS_WORKSPACE": str(settings.workspace),
            "ECGOPS_REGISTRY_URL": settings.resolved_registry_url,
            "ECGOPS_PATIENT_SALT": "x",
        }
        if settings.artifact_store:
            env["ECGOPS_ARTIFACT_STORE"] = settings.artifact_store
    saved = {k: os.environ.get(k) for k in env}
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    code = 0
    try:
        os.environ.update(env)
        get_settings.cache_clear()
        sys.argv = ["ecgops", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    return code, out.getvalue(), err.getvalue()
