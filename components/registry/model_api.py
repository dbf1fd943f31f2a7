"""Registry API for models: registration, metrics, gate decisions, Bentos, artifact checks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from components.registry import artifacts
from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, nonempty, one_of, serialize
from components.registry.errors import InvalidArgumentError, NotFoundError
from components.registry.models import (
    GATE_VERDICTS,
    MODEL_KINDS,
    STAGES,
    Bento,
    GateDecision,
    Metric,
    Model,
    StageAssignment,
    ValidationRun,
)
from components.registry.views import BentoInfo, GateDecisionInfo, MetricInfo, ModelInfo


class ModelAPI(RegistryBase):
    """Models, metrics, gate decisions and Bentos."""

    # ------------------------------------------------------------------ models

    def register_model(
        self,
        name: str,
        *,
        kind: Literal["foundation", "task"],
        artifact_uri: str,
        sha256: str | None = None,
        task: str | None = None,
        parent: ModelRef | None = None,
        dataset_version_md5: str | None = None,
        validation_run_id: int | None = None,
        run_id: int | None = None,
        actor: str | None = None,
    ) -> ModelInfo:
        """Register the next version of model ``name``; task models start as candidates.

        ``sha256`` is computed from the (local) artifact when not given. The dataset version defaults to
        the one the validation run validated.
        """
        nonempty("name", name)
        if "@" in name:
            raise InvalidArgumentError(f"model name {name!r} must not contain '@'")
        one_of("kind", kind, MODEL_KINDS)
        if (kind == "task") != (task is not None):
            raise InvalidArgumentError("task models need a task; foundation models have none")
        digest = artifacts.check_sha256(sha256 or artifacts.sha256_of(artifacts.local_path(artifact_uri)))
        who = actor or self.actor

        def op(s: Session) -> ModelInfo:
            parent_model = q.find_model(s, parent) if parent is not None else None
            dv_id = q.find_dv(s, dataset_version_md5).id if dataset_version_md5 is not None else None
            if validation_run_id is not None:
                vr = q.get(s, ValidationRun, validation_run_id, "validation run")
                if dv_id is not None and vr.dataset_version_id != dv_id:
                    raise InvalidArgumentError(
                        f"validation run {vr.id} validated another dataset version than {dataset_version_md5}"
                    )
                dv_id = vr.dataset_version_id
            serialize(s, "model", name)
            version = (s.scalar(select(func.max(Model.version)).where(Model.name == name)) or 0) + 1
            model = Model(
                name=name,
                version=version,
                kind=kind,
                task=task,
                artifact_uri=artifact_uri,
                sha256=digest,
                parent_model_id=parent_model.id if parent_model else None,
                dataset_version_id=dv_id,
                validation_run_id=validation_run_id,
                run_id=run_id,
                created_by=who,
            )
            s.add(model)
            s.flush()
            ref = f"{name}@{version}"
            self._audit(
                s,
                actor=who,
                action="model.registered",
                entity_type="model",
                entity_id=ref,
                summary=f"registered {kind} model {ref}" + (f" for task {task}" if task else ""),
                details={"artifact_uri": artifact_uri, "sha256": digest, "run_id": run_id},
            )
            if task is not None:
                s.add(StageAssignment(model_id=model.id, task=task, stage="candidate", assigned_by=who))
                self._audit(
                    s,
                    actor=who,
                    action="stage.changed",
                    entity_type="model",
                    entity_id=ref,
                    summary=f"{ref}: (new) -> candidate",
                    details={"task": task, "from": None, "to": "candidate", "forced": False},
                )
            s.flush()
            return q.model_info(s, model.id)

        return self._write(op)

    def model(self, ref: ModelRef) -> ModelInfo:
        """One model by ``name@version``, ``name`` (latest version) or id."""
        return self._read(lambda s: q.model_info(s, q.find_model(s, ref).id))

    def models(
        self,
        *,
        name: str | None = None,
        task: str | None = None,
        kind: str | None = None,
        stage: str | None = None,
        limit: int | None = None,
    ) -> list[ModelInfo]:
        """Models, newest first, filtered by name, task, kind and stage."""

        def op(s: Session) -> list[ModelInfo]:
            query = q.model_query().order_by(Model.id.desc()).limit(limit)
            if name is not None:
                query = query.where(Model.name == name)
            if task is not None:
                query = query.where(Model.task == task)
            if kind is not None:
                query = query.where(Model.kind == kind)
            if stage is not None:
                query = query.where(StageAssignment.stage == stage)
            return [q.model_row_info(*row) for row in s.execute(query)]

        return self._read(op)

    def model_at_stage(self, task: str, stage: str = "production") -> ModelInfo | None:
        """The model of ``task`` in ``stage`` (the newest one for stages that may hold several)."""
        one_of("stage", stage, STAGES)
        found = self.models(task=task, stage=stage, limit=1)
        return found[0] if found else None

    def verify_artifact(self, model: ModelRef) -> Path:
        """The local path of a model's artifact, after checking its sha256 against the registry."""
        info = self.model(model)
        return artifacts.verify(f"model {info.ref}", info.artifact_uri, info.sha256)

    # ------------------------------------------------------------------ metrics and gates

    def record_metrics(
        self, model: ModelRef, metrics: Iterable[MetricInfo], *, run_id: int | None = None
    ) -> int:
        """Store evaluation metrics of a model; returns how many."""
        rows = list(metrics)
        for m in rows:
            if not math.isfinite(m.value):
                raise InvalidArgumentError(
                    f"metric {m.name} on {m.split}/{m.cohort} is not finite: {m.value}"
                )

        def op(s: Session) -> int:
            target = q.find_model(s, model)
            s.add_all(
                Metric(
                    model_id=target.id,
                    split=m.split,
                    cohort=m.cohort,
                    name=m.name,
                    value=m.value,
                    ci_low=m.ci_low,
                    ci_high=m.ci_high,
                    n=m.n,
                    run_id=run_id,
                )
                for m in rows
            )
            return len(rows)

        return self._write(op)

    def metrics(self, model: ModelRef) -> list[MetricInfo]:
        """A model's metrics, sorted by split, cohort and name."""

        def op(s: Session) -> list[MetricInfo]:
            target = q.find_model(s, model)
            rows = s.scalars(
                select(Metric)
                .where(Metric.model_id == target.id)
                .order_by(Metric.split, Metric.cohort, Metric.name)
            )
            return [MetricInfo(r.split, r.cohort, r.name, r.value, r.ci_low, r.ci_high, r.n) for r in rows]

        return self._read(op)

    def record_gate_decision(
        self,
        model: ModelRef,
        *,
        policy: str,
        verdict: Literal["pass", "fail"],
        reasons: list[str],
        run_id: int | None = None,
        actor: str | None = None,
    ) -> GateDecisionInfo:
        """Record an evaluation gate's verdict on a model (the latest decision is the one that counts)."""
        one_of("verdict", verdict, GATE_VERDICTS)

        def op(s: Session) -> GateDecisionInfo:
            target = q.find_model(s, model)
            gate = GateDecision(
                model_id=target.id,
                policy=policy,
                verdict=verdict,
                reasons=list(reasons),
                run_id=run_id,
                decided_by=actor or self.actor,
            )
            s.add(gate)
            s.flush()
            ref = f"{target.name}@{target.version}"
            self._audit(
                s,
                actor=actor,
                action="gate.decided",
                entity_type="model",
                entity_id=ref,
                summary=f"gate {policy}: {verdict}",
                reason="; ".join(reasons) or None,
                details={"gate_decision_id": gate.id},
            )
            return q.gate_info(gate, ref)

        return self._write(op)

    def latest_gate_decision(self, model: ModelRef) -> GateDecisionInfo | None:
        """The gate decision that currently counts for a model."""

        def op(s: Session) -> GateDecisionInfo | None:
            target = q.find_model(s, model)
            gate = q.latest_gate(s, target.id)
            return None if gate is None else q.gate_info(gate, f"{target.name}@{target.version}")

        return self._read(op)

    # ------------------------------------------------------------------ bentos

    def register_bento(
        self,
        tag: str,
        *,
        model: ModelRef,
        artifact_uri: str,
        sha256: str | None = None,
        run_id: int | None = None,
        actor: str | None = None,
    ) -> BentoInfo:
        """Register a built Bento of a model (``sha256`` computed from the local artifact if not given)."""
        nonempty("tag", tag)
        digest = artifacts.check_sha256(sha256 or artifacts.sha256_of(artifacts.local_path(artifact_uri)))
        who = actor or self.actor

        def op(s: Session) -> BentoInfo:
            if s.scalar(select(Bento.id).where(Bento.tag == tag)) is not None:
                raise InvalidArgumentError(f"bento {tag} is already registered")
            target = q.find_model(s, model)
            bento = Bento(
                tag=tag,
                model_id=target.id,
                artifact_uri=artifact_uri,
                sha256=digest,
                run_id=run_id,
                created_by=who,
            )
            s.add(bento)
            s.flush()
            self._audit(
                s,
                actor=who,
                action="bento.registered",
                entity_type="bento",
                entity_id=tag,
                summary=f"bento {tag} of model {target.name}@{target.version}",
                details={"artifact_uri": artifact_uri, "sha256": digest},
            )
            return q.bento_info(s, bento.id)

        return self._write(op)

    def bento(self, tag: str) -> BentoInfo:
        """One Bento by tag."""
        return self._read(lambda s: q.bento_info(s, q.find_bento(s, tag).id))

    def bentos(self, *, model: ModelRef | None = None, task: str | None = None) -> list[BentoInfo]:
        """Bentos, newest first, of one model or one task."""

        def op(s: Session) -> list[BentoInfo]:
            query = select(Bento.id).join(Model, Model.id == Bento.model_id).order_by(Bento.id.desc())
            if model is not None:
                query = query.where(Bento.model_id == q.find_model(s, model).id)
            if task is not None:
                query = query.where(Model.task == task)
            return [q.bento_info(s, bento_id) for bento_id in s.scalars(query)]

        return self._read(op)

    def bento_for(self, task: str, stage: str = "production") -> BentoInfo:
        """The newest Bento of the model of ``task`` in ``stage`` (what ``bento pull TASK@STAGE`` fetches)."""
        current = self.model_at_stage(task, stage)
        if current is None:
            raise NotFoundError(f"no {stage} model for task {task!r}")
        found = self.bentos(model=current.id)
        if not found:
            raise NotFoundError(f"{stage} model {current.ref} of task {task!r} has no Bento")
        return found[0]

    def verify_bento(self, tag: str) -> Path:
        """The local path of a Bento's artifact, after checking its sha256 against the registry."""
        info = self.bento(tag)
        return artifacts.verify(f"bento {tag}", info.artifact_uri, info.sha256)
