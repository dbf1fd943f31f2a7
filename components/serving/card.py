"""The model card a Bento carries (served at ``/model_card``): identity, data, labels, gate, metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from components.models.task_model import TaskModelConfig
from components.registry import GateDecisionInfo, MetricInfo, ModelInfo
from components.serving.schemas import ModelCard, ModelIdentity


def build_card(
    model: ModelInfo,
    cfg: TaskModelConfig,
    *,
    bento_tag: str,
    foundation: str,
    gate: GateDecisionInfo | None,
    forced: bool,
    metrics: list[MetricInfo],
    git_revision: str,
    actor: str,
) -> ModelCard:
    """The card of ``model`` as packaged now (``meta`` of the task model may add intended use and
    limitations)."""
    duration = cfg.n_samples / cfg.fs
    identity = ModelIdentity(
        name=model.name,
        version=model.version,
        ref=model.ref,
        task=cfg.task,
        bento=bento_tag,
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
    limitations = [str(x) for x in cfg.meta.get("limitations", [])] or [
        f"Trained on dataset version {model.dataset_version_md5 or '(unversioned)'} "
        f"({model.dataset or 'unknown dataset'}); other populations, devices and sites may differ.",
        f"Reads {duration:g} s at {cfg.fs} Hz; longer recordings are cut to their first {duration:g} s.",
        f"Needs the leads {cfg.needed_leads}; other leads present are ignored."
        if cfg.needed_leads != cfg.leads
        else f"Needs the leads {cfg.needed_leads}.",
    ]
    return ModelCard(
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
        git_revision=git_revision,
        packaged_at=datetime.now(UTC).isoformat(timespec="seconds"),
        packaged_by=actor,
        intended_use=str(
            cfg.meta.get("intended_use")
            or f"Decision support: {', '.join(cfg.labels)} from a resting ECG, for review by a clinician."
        ),
        limitations=limitations,
    )
