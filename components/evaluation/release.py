"""What the release flows decide: a model's gate verdict as the run summary shows it, and promoting a
candidate whose gate passed without undoing a stage a person set meanwhile."""

from __future__ import annotations

from typing import Any

from components.workspace import Workspace


def gate_summary(workspace: Workspace, model_ref: str) -> dict[str, Any] | None:
    """The latest gate decision of ``model_ref`` (verdict, policy, reasons, id), or None before any."""
    with workspace.registry() as registry:
        gate = registry.latest_gate_decision(model_ref)
    if gate is None:
        return None
    return {"verdict": gate.verdict, "policy": gate.policy, "reasons": list(gate.reasons), "id": gate.id}


def promote_candidate(workspace: Workspace, model_ref: str, stage: str, flow_run_id: str | None) -> str:
    """Move a model whose gate passed from candidate to ``stage`` (audited); say what happened. The check
    and the move are one registry transaction (``expected_stage``), so a stage a person set meanwhile
    (``ecgops registry promote``) is never undone: the model then stays where that person put it."""
    from components.registry import StageChangedError

    reason = f"retrain flow run {flow_run_id}: gate passed"
    with workspace.registry() as registry:
        try:
            change = registry.promote(model_ref, stage, reason=reason, expected_stage="candidate")
        except StageChangedError as exc:
            return f"{model_ref} stays in {exc.stage}"
    return f"{change.model}: {change.from_stage} -> {change.to_stage}"


def kept_as_candidates(models: dict[str, str]) -> dict[str, str]:
    """What promotion says of each task's model when ``orchestration.promote_to`` is ``none``."""
    return {task: f"{ref} stays a candidate (orchestration.promote_to: none)" for task, ref in models.items()}
