"""Resuming a fine-tuning run that a killed ``retrain`` left behind.

The run directory's ``run.json`` says which task, data version, foundation model and parameters the run
had; when they are this run's and its registry run never finished, it continues from its last checkpoint
(same registry run, so no second run or model row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.runs import RunDir
from components.workspace import Workspace


@dataclass(frozen=True)
class ResumeDecision:
    action: Literal["start", "resume"]
    reason: str


def finetune_decision(
    workspace: Workspace, task: str, dataset: str, dataset_version: str, foundation_ref: str
) -> ResumeDecision:
    """What to do about the (task, dataset) fine-tuning run with the workspace's ``finetune:`` params."""
    params = workspace.params.finetune
    folder = RunDir(workspace.finetune_dir(task, dataset, params.mode, params.label_fraction))
    if not folder.exists():
        return ResumeDecision("start", "no earlier run")
    state = folder.load()
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
        if folder.has_checkpoint():
            return ResumeDecision("resume", f"fine-tuning run {run.id} was interrupted; resuming")
        if run.status == "running":
            registry.finish_run(run.id, status="failed", error="interrupted before its first checkpoint")
    return ResumeDecision("start", "the earlier run stopped before its first checkpoint")
