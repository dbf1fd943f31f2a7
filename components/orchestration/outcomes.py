"""The typed results the retraining flows pass each other.

Each holds a stage's own result and what the orchestration adds: where its task ran (``ran_on``: this
process or a Dask worker) and the decision it followed. :class:`RetrainOutcome` is the whole run: the run
summary, ``ecgops run`` and the cache checks read these attributes, and ``to_dict()`` is the JSON that
``ecgops run --json`` prints. Stage result types are imported for type checking only, so importing a flow
does not import torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.evaluation.release import GateSummary
    from components.evaluation.stage import EvaluationResult
    from components.finetune.stage import FinetuneResult
    from components.io.ingest import IngestSummary
    from components.io.versioning import DataVersion
    from components.runs.foundation import FoundationDecision
    from components.serving.package import PackageResult
    from components.validation import ValidationResult

RanOn = dict[str, Any]


@dataclass(frozen=True)
class IngestOutcome:
    """An ingest, the store state it left (a cached ingest counts while the store is still in it) and
    where its shards were prepared."""

    summary: IngestSummary
    store_after: str
    ran_on: RanOn
    shards: list[RanOn] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.summary.to_dict() | {
            "store_after": self.store_after,
            "ran_on": self.ran_on,
            "shards": self.shards,
        }


@dataclass(frozen=True)
class VersionOutcome:
    """The DVC dataset version and the validation run recorded against it."""

    version: DataVersion
    validation_run_id: int | None
    ran_on: RanOn

    @property
    def md5(self) -> str:
        return self.version.md5

    def to_dict(self) -> dict[str, Any]:
        return self.version.to_dict() | {"validation_run_id": self.validation_run_id, "ran_on": self.ran_on}


@dataclass(frozen=True)
class FoundationOutcome:
    """The run's foundation model — pretrained, resumed or reused — its test metrics, and why."""

    model_ref: str
    model_dir: str
    dataset: str
    dataset_version: str | None
    registry_run_id: int | None
    metrics: dict[str, float]
    decision: FoundationDecision | None = None
    trained: dict[str, Any] = field(default_factory=dict)  # the pretrain stage's result, when it ran
    ran_on: RanOn | None = None

    @classmethod
    def from_pretrain(cls, result: dict[str, Any], ran_on: RanOn) -> FoundationOutcome:
        """The outcome of a pretraining (the stage's result as a dict: it may come from a DDP child)."""
        return cls(
            model_ref=result["model_ref"],
            model_dir=str(result["model_dir"]),
            dataset=result["dataset"],
            dataset_version=result["dataset_version"],
            registry_run_id=result["registry_run_id"],
            metrics=dict(result["evaluation"]["metrics"]),
            trained=result,
            ran_on=ran_on,
        )

    def decided(self, decision: FoundationDecision) -> FoundationOutcome:
        return replace(self, decision=decision)

    def to_dict(self) -> dict[str, Any]:
        return self.trained | {
            "model_ref": self.model_ref,
            "model_dir": self.model_dir,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "registry_run_id": self.registry_run_id,
            "evaluation": self.trained.get("evaluation") or {"split": "test", "metrics": self.metrics},
            "decision": self.decision.to_dict() if self.decision else None,
            "ran_on": self.ran_on,
        }


@dataclass(frozen=True)
class TaskModelOutcome:
    """A fine-tuned task model, and the resume decision its run followed."""

    result: FinetuneResult
    decision: str
    ran_on: RanOn

    @property
    def model_ref(self) -> str | None:
        return self.result.model_ref

    @property
    def model_dir(self) -> Path:
        return self.result.model_dir

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict() | {"decision": self.decision, "ran_on": self.ran_on}


@dataclass(frozen=True)
class EvaluationOutcome:
    """An evaluation and the model's gate decision as the registry holds it."""

    result: EvaluationResult
    gate: GateSummary | None
    ran_on: RanOn

    @property
    def model_ref(self) -> str:
        return self.result.model_ref

    @property
    def passed(self) -> bool:
        return self.gate is not None and self.gate.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        gate = asdict(self.gate) if self.gate else None
        return self.result.to_dict() | {"model_ref": self.model_ref, "gate": gate, "ran_on": self.ran_on}


@dataclass(frozen=True)
class PackageOutcome:
    """A Bento built, exported and registered."""

    result: PackageResult
    ran_on: RanOn

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict() | {"ran_on": self.ran_on}


@dataclass(frozen=True)
class TaskOutcome:
    """One task of the run: its model, evaluation, Bento (when the gate passed) and stage."""

    finetune: TaskModelOutcome
    evaluation: EvaluationOutcome
    package: PackageOutcome | None
    promotion: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "finetune": self.finetune.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "package": self.package.to_dict() if self.package else None,
            "promotion": self.promotion,
        }


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retraining run did, stage by stage, and which stages came from the cache."""

    flow_run_id: str | None
    dataset: str
    ingest: IngestOutcome
    validation: ValidationResult
    version: VersionOutcome
    foundation: FoundationOutcome
    tasks: dict[str, TaskOutcome]
    cached: dict[str, bool]
    registry: str
    elapsed_s: float

    @property
    def all_passed(self) -> bool:
        """True when every task model passed its gate."""
        return all(task.evaluation.passed for task in self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow_run_id": self.flow_run_id,
            "dataset": self.dataset,
            "ingest": self.ingest.to_dict(),
            "validation": self.validation.to_dict(),
            "version": self.version.to_dict(),
            "foundation": self.foundation.to_dict(),
            "tasks": {task: outcome.to_dict() for task, outcome in self.tasks.items()},
            "cached": self.cached,
            "registry": self.registry,
            "elapsed_s": self.elapsed_s,
        }
