"""The one resume decision: continue the run a killed ``retrain`` left behind, or start afresh.

A run folder's ``run.json`` says which data, parameters (and, for fine-tuning, which foundation model)
the run had. When they are this run's, its registry run never succeeded and it has a checkpoint, it
continues from that checkpoint under the same registry run, so no second run or model row appears. A
registry run still marked running without a checkpoint is finished as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.runs.folder import FinetuneRunState, RunDir, RunState
from components.workspace import Workspace


@dataclass(frozen=True)
class ResumeDecision:
    action: Literal["start", "resume"]
    reason: str


def resume_decision(
    workspace: Workspace, folder: RunDir, state_type: type[RunState], expected: dict[str, Any]
) -> ResumeDecision:
    """Resume the run in ``folder`` when its state has the ``expected`` values (field name → value)."""
    if not folder.exists():
        return ResumeDecision("start", "no earlier run")
    state = folder.load(state_type)
    if state.registry_run_id is None or any(getattr(state, k) != v for k, v in expected.items()):
        differing = sorted(k for k, v in expected.items() if getattr(state, k) != v)
        return ResumeDecision("start", f"the earlier run had other {', '.join(differing) or 'registry run'}")
    with workspace.registry() as registry:
        run = registry.get_run(state.registry_run_id)
        if run.status == "succeeded":
            return ResumeDecision("start", f"the earlier run (registry run {run.id}) finished")
        if folder.has_checkpoint():
            reason = f"registry run {run.id} was interrupted; continuing from its last checkpoint"
            return ResumeDecision("resume", reason)
        if run.status == "running":
            registry.finish_run(run.id, status="failed", error="interrupted before its first checkpoint")
    return ResumeDecision("start", "the earlier run stopped before its first checkpoint")


def finetune_decision(
    workspace: Workspace, task: str, dataset: str, dataset_version: str, foundation_ref: str
) -> ResumeDecision:
    """What to do about the (task, dataset) fine-tuning run with the workspace's ``finetune:`` params."""
    params = workspace.params.finetune
    folder = RunDir(workspace.finetune_dir(task, dataset, params.mode, params.label_fraction))
    expected = {
        "dataset_version": dataset_version,
        "foundation": foundation_ref,
        "params": params.model_dump(mode="json"),
    }
    return resume_decision(workspace, folder, FinetuneRunState, expected)
