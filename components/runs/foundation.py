"""Whether ``retrain`` pretrains a new foundation model, resumes an interrupted pretraining, or reuses one.

Resume comes first: a pretraining run of the same data and parameters that was interrupted (its registry
run never finished) continues from its last checkpoint under the same registry run, so a killed and
restarted ``retrain`` leaves no second run or model behind. Then the policy in ``params.yaml``
(``orchestration.foundation``) decides between pretraining and reusing the dataset's newest foundation
model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from components.io.store import manifest_sha256
from components.runs.folder import PretrainRunState, RunDir
from components.runs.resume import resume_decision
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.registry import ModelInfo, Registry
    from components.training.params import PretrainParams

Action = Literal["pretrain", "resume", "reuse"]


@dataclass(frozen=True)
class FoundationDecision:
    """What to do about the foundation model, and why (shown in the run summary)."""

    action: Action
    reason: str
    model_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_foundation(workspace: Workspace, dataset: str, dataset_version: str) -> FoundationDecision:
    """The decision for ``dataset`` at ``dataset_version`` under the workspace's ``orchestration.foundation``
    policy with its ``pretrain:`` parameters."""
    policy, params = workspace.params.orchestration, workspace.params.pretrain
    interrupted = _interrupted_run(workspace, dataset, params)
    if interrupted is not None:
        return interrupted
    with workspace.registry() as registry:
        current = current_foundation(registry, dataset, params.model_name)
        if current is None:
            return FoundationDecision("pretrain", f"no foundation model for dataset {dataset} yet")
        if policy.foundation == "reuse":
            return FoundationDecision("reuse", "orchestration.foundation is reuse", current.ref)
        if policy.foundation == "always":
            return FoundationDecision("pretrain", "orchestration.foundation is always")
        if _pretrain_params(registry, current) != params.model_dump(mode="json"):
            return FoundationDecision("pretrain", f"pretrain parameters differ from those of {current.ref}")
        if current.dataset_version_md5 == dataset_version:
            return FoundationDecision(
                "reuse",
                f"{current.ref} was pretrained on this dataset version with these parameters",
                current.ref,
            )
        growth = _growth(registry, current.dataset_version_md5, dataset_version)
        if growth is None or growth >= policy.pretrain_growth:
            shown = "unknown" if growth is None else f"{growth:.0%}"
            return FoundationDecision(
                "pretrain",
                f"the dataset grew by {shown} since {current.ref} (threshold {policy.pretrain_growth:.0%})",
            )
        return FoundationDecision(
            "reuse",
            f"the dataset grew by {growth:.0%} since {current.ref}, below the "
            f"{policy.pretrain_growth:.0%} that warrants pretraining again",
            current.ref,
        )


def current_foundation(registry: Registry, dataset: str, name: str) -> ModelInfo | None:
    """The newest foundation model ``name`` trained on ``dataset`` whose artifact is still there."""
    for info in registry.models(name=name, kind="foundation"):
        if info.dataset == dataset and Path(info.artifact_uri).is_dir():
            return info
    return None


def _pretrain_params(registry: Registry, info: ModelInfo) -> dict[str, Any] | None:
    """The pretraining parameters a model was trained with, from its registry run."""
    if info.run_id is None:
        return None
    parameters = registry.get_run(info.run_id).parameters
    if "params" in parameters:
        return dict(parameters["params"])
    return {k: v for k, v in parameters.items() if k != "resumes_run"}


def _growth(registry: Registry, before: str | None, now: str) -> float | None:
    """Relative growth in records between two registered dataset versions (None if unknown)."""
    if before is None:
        return None
    n_before = registry.find_dataset_version(before).n_records
    n_now = registry.find_dataset_version(now).n_records
    return (n_now - n_before) / n_before if n_before else None


def _interrupted_run(workspace: Workspace, dataset: str, params: PretrainParams) -> FoundationDecision | None:
    """Resume the dataset's last pretraining run if it is this data and these parameters and it never
    finished."""
    expected = {
        "params": params.model_dump(mode="json"),
        "manifest_sha256": manifest_sha256(workspace.store_dir(dataset)),
    }
    folder = RunDir(workspace.pretrain_dir(dataset))
    decision = resume_decision(workspace, folder, PretrainRunState, expected)
    return FoundationDecision("resume", decision.reason) if decision.action == "resume" else None
