"""A scratch workspace with a task model in production, for the benchmarks that serve or score one.

Ingest samples/ (git + DVC), pretrain and fine-tune for one epoch each (speed does not depend on training
length), record a passing gate and promote the model; a workspace that already has one is reused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TASK = "ptbxl-superdiagnostic"


def benchmark_settings(root: Path) -> Any:
    """The settings of a scratch workspace at ``root`` (SQLite registry, local DVC remote)."""
    from components.config import Settings

    return Settings(
        workspace=root,
        registry_url=f"sqlite:///{root / 'registry.db'}",
        dvc_remote_url=str(root / "dvc-remote"),
        patient_salt="benchmark",  # type: ignore[arg-type]
    )


def production_model(settings: Any) -> str | None:
    """The task's production model in the workspace, if it has one."""
    from components.workspace import Workspace

    if not (settings.workspace / "registry.db").exists():
        return None
    with Workspace(settings).registry() as registry:
        current = registry.model_at_stage(TASK, "production")
    return current.ref if current is not None else None


def train_production_model(settings: Any, ecg: dict[str, int], recipe: str | None = None) -> str:
    """params.yaml's model (``ecg`` overrides the encoder's size, ``recipe`` the pretraining recipe and
    so its architecture), one epoch each, gated and in production; returns its reference."""
    import yaml

    from components.finetune.stage import FinetuneRequest, finetune
    from components.io.datasets import ingest_and_version
    from components.io.ingest import IngestOptions
    from components.runs.lifecycle import RunOptions
    from components.training.stage import pretrain
    from components.workspace import Workspace

    workspace = settings.workspace
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    subprocess.run(["git", "-C", str(workspace), "config", "user.email", "bench@ecgops.invalid"], check=True)
    subprocess.run(["git", "-C", str(workspace), "config", "user.name", "ecgops benchmark"], check=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["workers"] = 1
    params["pretrain"]["ecg"] |= ecg
    if recipe is not None:
        params["pretrain"]["recipe"] = recipe
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    ingest_and_version(Workspace(settings), REPO / "samples", options=IngestOptions(progress=False))
    one_epoch = RunOptions(max_epochs=1)
    foundation = pretrain(Workspace(settings), options=one_epoch)
    assert foundation is not None and foundation.model_ref is not None
    tuned = finetune(Workspace(settings), FinetuneRequest(TASK, from_model=foundation.model_ref), one_epoch)
    assert tuned.model_ref is not None
    with Workspace(settings).registry() as registry:
        registry.record_gate_decision(
            tuned.model_ref, policy="benchmark", verdict="pass", reasons=["benchmark"]
        )
        registry.promote(tuned.model_ref, "production")
    return tuned.model_ref
