"""Registry API for stages (promotion rules) and the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, one_of
from components.registry.errors import (
    InvalidArgumentError,
    NotFoundError,
    PromotionRefusedError,
    StageChangedError,
)
from components.registry.models import STAGES, GateDecision, StageAssignment, utcnow
from components.registry.views import AuditEntryInfo, StageChangeInfo


class StageAPI(RegistryBase):
    """Stage changes under the gate rules, and audit log queries."""

    # ------------------------------------------------------------------ stages

    def promote(
        self,
        model: ModelRef,
        stage: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        force: bool = False,
        expected_stage: str | None = None,
    ) -> StageChangeInfo:
        """Move a task model to ``stage``; the previous production model of its task is archived.

        Staging and production need the model's latest gate decision to have passed, unless ``force``
        with a ``reason``. Stage rows and their audit entries are written in one transaction.
        ``expected_stage``: a check-and-set — the model must still be in that stage when its row is
        locked, otherwise nothing changes and :class:`StageChangedError` says where it is.
        """
        one_of("stage", stage, STAGES)
        if force and not (reason and reason.strip()):
            raise InvalidArgumentError("--force needs a --reason")
        who = actor or self.actor

        def op(s: Session) -> StageChangeInfo:
            target = q.find_model(s, model)
            ref = f"{target.name}@{target.version}"
            if target.task is None:
                raise PromotionRefusedError(f"{ref} is a foundation model; only task models have stages")
            rows = s.scalars(
                select(StageAssignment)
                .where(StageAssignment.task == target.task)
                .order_by(StageAssignment.model_id)
                .with_for_update()
            ).all()
            current = next((r for r in rows if r.model_id == target.id), None)
            if current is None:
                raise NotFoundError(f"{ref} has no stage assignment")
            if expected_stage is not None and current.stage != expected_stage:
                raise StageChangedError(
                    f"{ref} is in {current.stage}, not {expected_stage}: left as it is", current.stage
                )
            if current.stage == stage:
                raise PromotionRefusedError(f"{ref} is already in {stage}")
            gate = q.latest_gate(s, target.id)
            overridden = _overrides_gate(ref, stage, gate, force)
            demoted: list[str] = []
            if stage == "production":
                for other in rows:
                    if other.stage == "production" and other.model_id != target.id:
                        other_ref = q.ref_of(s, other.model_id)
                        self._set_stage(s, other, other_ref, "archived", who, f"replaced by {ref}", False)
                        demoted.append(other_ref)
                s.flush()
            previous = current.stage
            self._set_stage(s, current, ref, stage, who, reason, overridden, gate)
            return StageChangeInfo(
                model=ref,
                task=target.task,
                from_stage=previous,
                to_stage=stage,
                forced=overridden,
                reason=reason,
                actor=who,
                demoted=tuple(demoted),
            )

        return self._write(op)

    def _set_stage(
        self,
        s: Session,
        row: StageAssignment,
        ref: str,
        stage: str,
        actor: str,
        reason: str | None,
        forced: bool,
        gate: GateDecision | None = None,
    ) -> None:
        previous = row.stage
        row.stage = stage
        row.forced = forced
        row.reason = reason
        row.assigned_at = utcnow()
        row.assigned_by = actor
        if gate is not None:
            row.gate_decision_id, row.gate_verdict = gate.id, gate.verdict
        self._audit(
            s,
            actor=actor,
            action="stage.changed",
            entity_type="model",
            entity_id=ref,
            summary=f"{ref}: {previous} -> {stage}" + (" (forced)" if forced else ""),
            reason=reason,
            details={
                "task": row.task,
                "from": previous,
                "to": stage,
                "forced": forced,
                "gate_decision_id": row.gate_decision_id,
                "gate_verdict": row.gate_verdict,
            },
        )

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int | None = 100,
    ) -> list[AuditEntryInfo]:
        """Audit log entries, newest first."""

        def op(s: Session) -> list[AuditEntryInfo]:
            query = q.audit_query(entity_type, entity_id, action, actor).limit(limit)
            return [q.audit_info(e) for e in s.scalars(query)]

        return self._read(op)


def _overrides_gate(ref: str, stage: str, gate: GateDecision | None, force: bool) -> bool:
    """Whether moving ``ref`` to ``stage`` overrides its gate (``force``); refused when it would without."""
    if stage not in ("staging", "production") or (gate is not None and gate.verdict == "pass"):
        return False
    problem = (
        "has no gate decision"
        if gate is None
        else f"failed gate {gate.policy}: {'; '.join(gate.reasons) or 'no reasons given'}"
    )
    if not force:
        raise PromotionRefusedError(
            f"refusing to move {ref} to {stage}: it {problem} (use --force --reason to override)"
        )
    return True
