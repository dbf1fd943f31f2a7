"""Registry API for stages: promotion under the gate rules, and what each task's stages deploy."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, one_of
from components.registry.errors import (
    InvalidArgumentError,
    NotFoundError,
    PromotionRefusedError,
    StageChangedError,
)
from components.registry.models import STAGES, Bento, GateDecision, Model, StageAssignment, utcnow
from components.registry.views import DeploymentSlotInfo, StageChangeInfo, aware


class StageAPI(RegistryBase):
    """Stage changes under the gate rules, and the deployment slots they fill."""

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
            ref = q.model_ref(target)
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
            demoted = self._archive_production(s, rows, current, ref, who) if stage == "production" else []
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

    def _archive_production(
        self, s: Session, rows: Sequence[StageAssignment], keep: StageAssignment, ref: str, actor: str
    ) -> list[str]:
        """Archive every production model of a task's ``rows`` but ``keep`` (replaced by ``ref``)."""
        demoted: list[str] = []
        for other in rows:
            if other.stage == "production" and other.model_id != keep.model_id:
                other_ref = q.ref_of(s, other.model_id)
                self._set_stage(s, other, other_ref, "archived", actor, f"replaced by {ref}", False)
                demoted.append(other_ref)
        s.flush()
        return demoted

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

    # ------------------------------------------------------------------ deployment slots

    def deployment_slots(
        self, *, stages: tuple[str, ...] = ("production", "staging")
    ) -> list[DeploymentSlotInfo]:
        """Per task and stage: the newest model there, how many models the stage holds, and its newest Bento.

        The Bento is exactly what ``ecgops bento pull TASK@STAGE`` fetches (``bento_for``); ``None``
        when that model has not been packaged. Sorted by task, then in the order of ``stages``.
        """
        for stage in stages:
            one_of("stage", stage, STAGES)
        query = (
            select(
                StageAssignment.task,
                StageAssignment.stage,
                func.max(StageAssignment.model_id),
                func.count(),
            )
            .where(StageAssignment.stage.in_(stages))
            .group_by(StageAssignment.task, StageAssignment.stage)
        )

        def op(s: Session) -> list[DeploymentSlotInfo]:
            slots = [(task, stage, model_id, int(n)) for task, stage, model_id, n in s.execute(query)]
            return sorted(_slot_infos(s, slots), key=lambda slot: (slot.task, stages.index(slot.stage)))

        return self._read(op)


def _slot_infos(s: Session, slots: list[tuple[str, str, int, int]]) -> list[DeploymentSlotInfo]:
    """Views of ``(task, stage, newest model id, number of models)`` slots, each with its newest Bento."""
    model_ids = [model_id for _, _, model_id, _ in slots]
    newest_bento = dict(
        s.execute(
            select(Bento.model_id, func.max(Bento.id))
            .where(Bento.model_id.in_(model_ids))
            .group_by(Bento.model_id)
        ).all()
    )
    models = {
        row[0].id: q.model_row_info(*row) for row in s.execute(q.model_query().where(Model.id.in_(model_ids)))
    }
    assignments = {
        a.model_id: a
        for a in s.scalars(select(StageAssignment).where(StageAssignment.model_id.in_(model_ids)))
    }
    return [
        DeploymentSlotInfo(
            task=task,
            stage=stage,
            model=models[model_id],
            n_models=count,
            bento=q.bento_info(s, newest_bento[model_id]) if model_id in newest_bento else None,
            forced=assignments[model_id].forced,
            stage_reason=assignments[model_id].reason,
            assigned_at=aware(assignments[model_id].assigned_at),
            assigned_by=assignments[model_id].assigned_by,
        )
        for task, stage, model_id, count in slots
    ]


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
