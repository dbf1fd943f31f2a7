"""Promotion, the one way every caller moves a model between stages (the registry's gate rules plus the
shadow rule of the model's gate policy), and what the release flows decide: a model's gate verdict as the
run summary shows it, and promoting a candidate whose gate passed without undoing a stage a person set
meanwhile."""

from __future__ import annotations

from dataclasses import dataclass

from components.registry import (
    ModelInfo,
    PromotionRefusedError,
    Registry,
    ShadowReportInfo,
    StageChangedError,
    StageChangeInfo,
)
from components.workspace import Workspace


class ShadowRequiredError(PromotionRefusedError):
    """A production promotion refused because the gate policy requires a passed shadow report the
    candidate lacks (or the policy cannot be found to tell)."""


@dataclass(frozen=True)
class ShadowCheck:
    """The shadow rule on one production promotion: ``policy`` whose rule applied (``None``: no rule),
    the task's ``production`` model when checked, and what is ``missing`` (``None``: nothing)."""

    policy: str | None = None
    production: str | None = None
    missing: str | None = None


def shadow_command(task: str, ref: str) -> str:
    """The command that makes the shadow report a promotion needs."""
    return f"ecgops shadow {task} --candidate {ref}"


def _missing_report(
    info: ModelInfo, policy: str, production: str, report: ShadowReportInfo | None
) -> str | None:
    """What the latest shadow report of ``info`` against ``production`` lacks (``None``: it passed)."""
    command = shadow_command(str(info.task), info.ref)
    if report is None:
        return (
            f"gate policy {policy} requires a passed shadow report of {info.ref} against the production "
            f"model {production} and there is none: run `{command}`"
        )
    if report.passed:
        return None
    failed = [r for r in report.reasons if not r.startswith("PASS")] or report.reasons
    return (
        f"gate policy {policy} requires a passed shadow report of {info.ref} against the production model "
        f"{production}, and the latest one (#{report.id}, {report.created_at:%Y-%m-%d %H:%M} UTC, "
        f"{report.n_records} records from {report.source}) failed: {'; '.join(failed)}; a passed report "
        f"(`{command}`) is needed"
    )


def shadow_check(workspace: Workspace, registry: Registry, info: ModelInfo) -> ShadowCheck:
    """The shadow rule on moving ``info`` to production.

    The rule is the ``shadow:`` section of the gate policy named by the model's latest gate decision (found
    as :func:`~components.evaluation.gates.policy_named` finds it, with ``evaluate.gate_policies``): with
    ``required: true``, the latest shadow report of the model against the task's current production model
    must have passed. No rule applies without a gate decision (the registry refuses that promotion unless
    forced), nor when the task has no production model yet: there is nothing to compare with, so no
    shadow report is needed. A policy that cannot be found leaves the rule unknown: that is missing too.
    """
    from components.evaluation.gates import policy_named  # pandas and the metrics: only when promoting

    gate = registry.latest_gate_decision(info.ref) if info.task is not None else None
    if gate is None or info.task is None:
        return ShadowCheck()
    production = registry.model_at_stage(info.task, "production")
    if production is not None and production.id == info.id:
        return ShadowCheck()
    policy = policy_named(gate.policy, workspace.params.evaluate.gate_policies.get(info.task))
    if policy is None:
        if production is None:
            return ShadowCheck()
        name = gate.policy.rpartition("@v")[0] or gate.policy
        return ShadowCheck(
            gate.policy,
            production.ref,
            f"the gate policy {gate.policy} of {info.ref} is neither evaluate.gate_policies[{info.task}] in "
            f"params.yaml nor schemas/gates/{name}.yaml, so whether production needs a shadow report is "
            f"unknown: gate it under a known policy (`ecgops gate {info.ref}`)",
        )
    if policy.shadow is None or not policy.shadow.required:
        return ShadowCheck()
    if production is None:
        return ShadowCheck(policy.ref)
    report = registry.latest_shadow_report(info.ref, production.ref)
    return ShadowCheck(policy.ref, production.ref, _missing_report(info, policy.ref, production.ref, report))


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
    (``ecgops registry promote``) is never undone: the model then stays where that person put it. A model
    whose gate policy wants a shadow report it lacks stays a candidate, and the answer says which command
    makes one."""
    reason = f"retrain flow run {flow_run_id}: gate passed"
    try:
        change = promote(workspace, model_ref, stage, reason=reason, expected_stage="candidate")
    except StageChangedError as exc:
        return f"{model_ref} stays in {exc.stage}"
    except ShadowRequiredError as exc:
        return f"{model_ref} stays a candidate: {exc}"
    return f"{change.model}: {change.from_stage} -> {change.to_stage}"


def kept_as_candidates(models: dict[str, str]) -> dict[str, str]:
    """What promotion says of each task's model when ``orchestration.promote_to`` is ``none``."""
    return {task: f"{ref} stays a candidate (orchestration.promote_to: none)" for task, ref in models.items()}


def promote(
    workspace: Workspace,
    model_ref: str,
    stage: str,
    *,
    reason: str | None = None,
    force: bool = False,
    expected_stage: str | None = None,
) -> StageChangeInfo:
    """Move a task model to ``stage`` — the one way every caller (CLI, flows) promotes.

    The registry's rules apply (staging and production need a passed gate; ``expected_stage`` is a
    check-and-set) and, for production, the shadow rule of :func:`shadow_check`: a model whose gate policy
    has ``shadow.required`` needs a passed shadow report against the task's current production model; when
    the task has no production model yet, no shadow report is needed. Without one the promotion is refused
    (:class:`ShadowRequiredError`, naming ``ecgops shadow TASK --candidate REF``) unless ``force`` with a
    ``reason``: then it goes ahead and an audit entry ``stage.shadow_overridden`` (the reason, what was
    missing) is written in the same transaction as the stage change. The check and the move are one
    transaction; should the production model change in between, nothing changes.
    """
    with workspace.registry() as registry, registry.atomic():
        info = registry.model(model_ref)
        check = shadow_check(workspace, registry, info) if stage == "production" else ShadowCheck()
        if check.missing is not None and not force:
            raise ShadowRequiredError(
                f"refusing to move {info.ref} to production: {check.missing} "
                "(or override with --force --reason)"
            )
        change = registry.promote(info.ref, stage, reason=reason, force=force, expected_stage=expected_stage)
        if check.policy is not None and change.demoted != ((check.production,) if check.production else ()):
            raise PromotionRefusedError(
                f"the production model of task {change.task} changed while {info.ref} was being promoted "
                f"(checked against {check.production or 'none'}): nothing was changed; promote it again"
            )
        if check.missing is not None:
            registry.record_audit(
                action="stage.shadow_overridden",
                entity_type="model",
                entity_id=change.model,
                summary=f"{change.model} moved to production without a passed shadow report (forced)",
                reason=reason,
                details={"missing": check.missing, "policy": check.policy, "production": check.production},
            )
    return change
