"""Resuming a fine-tuning run that a killed ``retrain`` left behind.

The run directory's ``run.json`` says which task, data version, foundation model and parameters the run
had; when they are this run's and its registry run never finished, it continues from its last checkpoint
(same registry run, so no second run or model row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from components.workspace import Workspace


@dataclass(frozen=True)
class ResumeDecision:
    action: Literal["start", "resume"]
    reason: str


def finetune_decision(
    workspace: Workspace, task: str, dataset: str, dataset_version: str, foundation_ref: str
) -> ResumeDecision:
    """What to do about the (task, dataset) fine-tuning run with the workspace's ``finetune:`` params."""
    from components.finetune.stage import LAST_CKPT, RUN_FILE

    params = workspace.params.finetune
    run_dir = workspace.finetune_dir(task, dataset, params.mode, params.label_fraction)
    if not (run_dir / RUN_FILE).is_file():
        return ResumeDecision("start", "no earlier run")
    state: dict[str, Any] = json.loads((run_dir / RUN_FILE).read_text())
    expected = {
        "dataset_version": dataset_version,
        "foundation": foundation_ref,
        "params": params.model_dump(mode="json"),
    }
    if any(state.get(k) != v for k, v in expected.items()) or state.get("registry_run_id") is None:
        return ResumeDecision("start", "the earlier run had other data, foundation or parameters")
    with workspace.registry() as registry:
        run = registry.get_run(int(state["registry_run_id"]))
        if run.status == "succeeded":
            return ResumeDecision("start", f"fine-tuning run {run.id} finished")
        if (run_dir / LAST_CKPT).is_file():
            return ResumeDecision("resume", f"fine-tuning run {run.id} was interrupted; resuming")
        if run.status == "running":
            registry.finish_run(run.id, status="failed", error="interrupted before its first checkpoint")
    return ResumeDecision("start", "the earlier run stopped before its first checkpoint")
