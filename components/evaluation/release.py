"""What the release flows decide: a model's gate verdict as the run summary shows it, and promoting a
candidate whose gate passed without undoing a stage a person set meanwhile."""

from __future__ import annotations

from dataclasses import dataclass

from components.workspace import Workspace


@dataclass(frozen=True)
class GateSummary:
    """A model's latest gate decision as a run reports it."""

    verdict: str
    policy: str
    reasons: list[str]
    id: int

    def failed_checks(self) -> str:
        """The reasons that did not pass (all of them when none is marked ``PASS``)."""
        reasons = [r for r in self.reasons if not r.startswith("PASS")]
        return "; ".join(" ".join(r.split()) for r in reasons) or "no reasons given"


def gate_summary(workspace: Workspace, model_ref: str) -> GateSummary | None:
    """The latest gate decision of ``model_ref``, or None before any."""
    with workspace.registry() as registry:
        gate = registry.latest_gate_decision(model_ref)
    if gate is None:
        return None
    return GateSummary(gate.verdict, gate.policy, list(gate.reasons), gate.id)


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
