"""The model card a Bento carries (served at ``/model_card``): identity, data, labels, gate, metrics; for
a family Bento, the cards of its other task models too."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from components.models.task_model import TaskModelConfig
from components.registry import GateDecisionInfo, MetricInfo, ModelInfo
from components.serving.schemas import ModelCard, ModelIdentity, TaskCard
from components.tasks.windows import WindowParams


@dataclass(frozen=True)
class CardContext:
    """What the cards of one Bento share: its tag, the code, who packaged it, how long records are read."""

    bento_tag: str
    git_revision: str
    actor: str
    windows: WindowParams


def build_card(
    model: ModelInfo,
    cfg: TaskModelConfig,
    *,
    foundation: str,
    gate: GateDecisionInfo | None,
    forced: bool,
    metrics: list[MetricInfo],
    context: CardContext,
) -> TaskCard:
    """The card of task model ``model`` as packaged now (``meta`` of the task model may add intended use
    and limitations)."""
    duration = cfg.n_samples / cfg.fs
    identity = ModelIdentity(
        name=model.name,
        version=model.version,
        ref=model.ref,
        task=cfg.task,
        bento=context.bento_tag,
        dataset_version=model.dataset_version_md5 or "",
        foundation=foundation,
    )
    gate_summary = (
        {
            "policy": gate.policy,
            "verdict": gate.verdict,
            "reasons": "; ".join(gate.reasons),
            "decided_at": gate.decided_at.isoformat(),
            "decided_by": gate.decided_by,
        }
        if gate is not None
        else {"verdict": "none", "reasons": "no gate decision was recorded"}
    )
    windows = context.windows
    limitations = [str(x) for x in cfg.meta.get("limitations", [])] or [
        f"Trained on dataset version {model.dataset_version_md5 or '(unversioned)'} "
        f"({model.dataset or 'unknown dataset'}); other populations, devices and sites may differ.",
        f"Reads {duration:g} s at {cfg.fs} Hz at once; longer recordings are read in consecutive "
        f"{duration:g} s windows whose probabilities are aggregated ({windows.aggregate}), up to "
        f"{windows.max_windows} windows ({windows.max_windows * duration:g} s).",
        f"Needs the leads {cfg.needed_leads}; other leads present are ignored."
        if cfg.needed_leads != cfg.leads
        else f"Needs the leads {cfg.needed_leads}.",
    ]
    return TaskCard(
        model=identity,
        labels=list(cfg.labels),
        thresholds={k: float(v) for k, v in zip(cfg.labels, cfg.decision_thresholds, strict=True)},
        leads=list(cfg.leads),
        required_leads=list(cfg.needed_leads),
        fs=cfg.fs,
        duration_s=duration,
        mode=cfg.mode,
        gate=gate_summary,
        forced=forced,
        metrics={f"{m.split}/{m.cohort}/{m.name}": float(m.value) for m in metrics if math.isfinite(m.value)},
        git_revision=context.git_revision,
        packaged_at=datetime.now(UTC).isoformat(timespec="seconds"),
        packaged_by=context.actor,
        intended_use=str(
            cfg.meta.get("intended_use")
            or f"Decision support: {', '.join(cfg.labels)} from a resting ECG, for review by a clinician."
        ),
        limitations=limitations,
    )


def bento_card(base: TaskCard, members: Sequence[TaskCard] = ()) -> ModelCard:
    """The card a Bento serves: its base task model's, with the family's other members (none for a Bento of
    one task model)."""
    return ModelCard(**base.model_dump(), family=list(members))
