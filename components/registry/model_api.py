"""Registry API for models: registration, listing, their evaluation metrics and gate decisions."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from components.registry import artifacts
from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, check_window, nonempty, one_of, serialize
from components.registry.errors import InvalidArgumentError
from components.registry.models import (
    GATE_VERDICTS,
    MODEL_KINDS,
    STAGES,
    GateDecision,
    Metric,
    Model,
    StageAssignment,
    ValidationRun,
)
from components.registry.views import GateDecisionInfo, MetricInfo, MetricPointInfo, ModelInfo, aware

Ts = TypeVarTuple("Ts")


def _model_filter(
    query: Select[*Ts],
    *,
    name: str | None = None,
    task: str | None = None,
    kind: str | None = None,
    stage: str | None = None,
) -> Select[*Ts]:
    """``query`` restricted to the models of every filter given (``stage`` needs the stage assignment
    joined)."""
    for column, value in (
        (Model.name, name),
        (Model.task, task),
        (Model.kind, kind),
        (StageAssignment.stage, stage),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def _model_count() -> Select[Any]:
    """Counts models, outer-joined to their (at most one) stage assignment like ``q.model_query()``."""
    return select(func.count(Model.id)).outerjoin(StageAssignment, StageAssignment.model_id == Model.id)


class ModelAPI(RegistryBase):
    """Models, their metrics and their gate decisions."""

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
        _check_new_model(name, kind, task)
        digest = artifacts.check_sha256(sha256 or artifacts.sha256_of(artifacts.local_path(artifact_uri)))
        who = actor or self.actor

        def op(s: Session) -> ModelInfo:
            parent_model = q.find_model(s, parent) if parent is not None else None
            dv_id = _training_data(s, dataset_version_md5, validation_run_id)
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
            self._audit(
                s,
                actor=who,
                action="model.registered",
                entity_type="model",
                entity_id=q.model_ref(model),
                summary=f"registered {kind} model {q.model_ref(model)}"
                + (f" for task {task}" if task else ""),
                details={"artifact_uri": artifact_uri, "sha256": digest, "run_id": run_id},
            )
            if task is not None:
                self._enter_candidate(s, model, task, who)
            s.flush()
            return q.model_info(s, model.id)

        return self._write(op)

    def _enter_candidate(self, s: Session, model: Model, task: str, actor: str) -> None:
        """Put a newly registered task model in the candidate stage of its task, audited."""
        s.add(StageAssignment(model_id=model.id, task=task, stage="candidate", assigned_by=actor))
        self._audit(
            s,
            actor=actor,
            action="stage.changed",
            entity_type="model",
            entity_id=q.model_ref(model),
            summary=f"{q.model_ref(model)}: (new) -> candidate",
            details={"task": task, "from": None, "to": "candidate", "forced": False},
        )

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
        query = _model_filter(q.model_query(), name=name, task=task, kind=kind, stage=stage)
        return self._model_window(query, 0, limit)

    def model_page(
        self,
        *,
        name: str | None = None,
        task: str | None = None,
        kind: str | None = None,
        stage: str | None = None,
        offset: int = 0,
        limit: int = 25,
    ) -> list[ModelInfo]:
        """One page of models, newest first, with the filters of :meth:`models`."""
        check_window(offset, limit)
        query = _model_filter(q.model_query(), name=name, task=task, kind=kind, stage=stage)
        return self._model_window(query, offset, limit)

    def count_models(
        self,
        *,
        name: str | None = None,
        task: str | None = None,
        kind: str | None = None,
        stage: str | None = None,
    ) -> int:
        """How many models match the filters of :meth:`model_page`."""
        query = _model_filter(_model_count(), name=name, task=task, kind=kind, stage=stage)
        return self._read(lambda s: int(s.scalar(query) or 0))

    def _model_window(self, query: Select[Any], offset: int, limit: int | None) -> list[ModelInfo]:
        """The rows of a filtered ``q.model_query()``, newest first, ``offset``/``limit`` applied."""
        query = query.order_by(Model.id.desc()).offset(offset).limit(limit)
        return self._read(lambda s: [q.model_row_info(*row) for row in s.execute(query)])

    def model_at_stage(self, task: str, stage: str = "production") -> ModelInfo | None:
        """The model of ``task`` in ``stage`` (the newest one for stages that may hold several)."""
        one_of("stage", stage, STAGES)
        found = self.models(task=task, stage=stage, limit=1)
        return found[0] if found else None

    def model_tasks(self) -> list[str]:
        """Tasks that have at least one model, sorted."""
        query = select(Model.task).where(Model.task.is_not(None)).distinct().order_by(Model.task)
        return self._read(lambda s: [str(t) for t in s.scalars(query)])

    def model_names(self, *, task: str | None = None, kind: str | None = None) -> list[str]:
        """Distinct model names, sorted, optionally of one task or kind."""
        query = _model_filter(select(Model.name), task=task, kind=kind).distinct().order_by(Model.name)
        return self._read(lambda s: list(s.scalars(query)))

    def verify_artifact(self, model: ModelRef) -> Path:
        """The local path of a model's artifact, after checking its sha256 against the registry."""
        info = self.model(model)
        return artifacts.verify(f"model {info.ref}", info.artifact_uri, info.sha256)

    # ------------------------------------------------------------------ metrics

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

    def metric_keys(self, *, name: str | None = None, task: str | None = None) -> list[tuple[str, str, str]]:
        """The distinct ``(split, cohort, metric name)`` recorded for models of a name and/or task."""
        query = _model_filter(
            select(Metric.split, Metric.cohort, Metric.name).join(Model, Model.id == Metric.model_id),
            name=name,
            task=task,
        ).distinct()
        query = query.order_by(Metric.split, Metric.cohort, Metric.name)
        return self._read(lambda s: [(str(a), str(b), str(c)) for a, b, c in s.execute(query)])

    def metric_history(
        self,
        *,
        name: str | None = None,
        task: str | None = None,
        metric: str | None = None,
        split: str | None = None,
        cohort: str | None = None,
        last: int = 50,
    ) -> list[MetricPointInfo]:
        """Metrics (with CIs) of the newest ``last`` models of a name and/or task, oldest model first.

        This is how a metric moved across model versions; filter by metric name, split and cohort.
        """
        if name is None and task is None:
            raise InvalidArgumentError("give a model name or a task")
        if last < 1:
            raise InvalidArgumentError(f"last must be >= 1, got {last}")
        newest = _model_filter(select(Model.id), name=name, task=task)
        newest_ids = newest.order_by(Model.id.desc()).limit(last).subquery()
        query = (
            select(Metric, Model, StageAssignment.stage)
            .join(Model, Model.id == Metric.model_id)
            .outerjoin(StageAssignment, StageAssignment.model_id == Model.id)
            .where(Metric.model_id.in_(select(newest_ids.c.id)))
        )
        for column, value in ((Metric.name, metric), (Metric.split, split), (Metric.cohort, cohort)):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(Model.id, Metric.split, Metric.cohort, Metric.name)
        return self._read(lambda s: [_metric_point(r, m, stage) for r, m, stage in s.execute(query)])

    # ------------------------------------------------------------------ gate decisions

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
            self._audit(
                s,
                actor=actor,
                action="gate.decided",
                entity_type="model",
                entity_id=q.model_ref(target),
                summary=f"gate {policy}: {verdict}",
                reason="; ".join(reasons) or None,
                details={"gate_decision_id": gate.id},
            )
            return q.gate_info(gate, q.model_ref(target))

        return self._write(op)

    def latest_gate_decision(self, model: ModelRef) -> GateDecisionInfo | None:
        """The gate decision that currently counts for a model."""

        def op(s: Session) -> GateDecisionInfo | None:
            target = q.find_model(s, model)
            gate = q.latest_gate(s, target.id)
            return None if gate is None else q.gate_info(gate, q.model_ref(target))

        return self._read(op)

    def gate_decisions(self, model: ModelRef) -> list[GateDecisionInfo]:
        """Every gate decision of a model, newest first (the first one counts)."""

        def op(s: Session) -> list[GateDecisionInfo]:
            target = q.find_model(s, model)
            rows = s.scalars(
                select(GateDecision)
                .where(GateDecision.model_id == target.id)
                .order_by(GateDecision.id.desc())
            )
            return [q.gate_info(g, q.model_ref(target)) for g in rows]

        return self._read(op)


def _check_new_model(name: str, kind: str, task: str | None) -> None:
    """Refuse an empty model name or one with '@', an unknown kind, and a task given to the wrong kind."""
    nonempty("name", name)
    if "@" in name:
        raise InvalidArgumentError(f"model name {name!r} must not contain '@'")
    one_of("kind", kind, MODEL_KINDS)
    if (kind == "task") != (task is not None):
        raise InvalidArgumentError("task models need a task; foundation models have none")


def _training_data(s: Session, dataset_version_md5: str | None, validation_run_id: int | None) -> int | None:
    """The id of the dataset version a model is trained on: the one given, else the validated one.

    A validation run of another dataset version than the one given is refused.
    """
    dv_id = q.find_dv(s, dataset_version_md5).id if dataset_version_md5 is not None else None
    if validation_run_id is None:
        return dv_id
    vr = q.get(s, ValidationRun, validation_run_id, "validation run")
    if dv_id is not None and vr.dataset_version_id != dv_id:
        raise InvalidArgumentError(
            f"validation run {vr.id} validated another dataset version than {dataset_version_md5}"
        )
    return vr.dataset_version_id


def _metric_point(r: Metric, m: Model, stage: str | None) -> MetricPointInfo:
    """One metric of one model version, as a point of that metric's history."""
    return MetricPointInfo(
        model_id=m.id,
        model=q.model_ref(m),
        name=m.name,
        version=m.version,
        task=m.task,
        stage=stage,
        created_at=aware(m.created_at),
        split=r.split,
        cohort=r.cohort,
        metric=r.name,
        value=r.value,
        ci_low=r.ci_low,
        ci_high=r.ci_high,
        n=r.n,
    )
