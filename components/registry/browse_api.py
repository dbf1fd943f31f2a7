"""Registry API for browsing at scale: counted, paginated and aggregate reads (the dashboard's queries).

Every listing here takes ``offset``/``limit`` and has a ``count_...`` twin with the same filters, so a
page of 25 rows out of 10,000 models costs two indexed queries, never a full load.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, one_of
from components.registry.errors import InvalidArgumentError
from components.registry.models import (
    STAGES,
    AuditEntry,
    Bento,
    Dataset,
    DatasetVersion,
    GateDecision,
    Metric,
    Model,
    StageAssignment,
    StewardDecision,
    ValidationRun,
)
from components.registry.views import (
    AuditEntryInfo,
    BentoInfo,
    DeploymentSlotInfo,
    GateDecisionInfo,
    MetricPointInfo,
    ModelInfo,
    StewardDecisionInfo,
    ValidationRunInfo,
    aware,
)


def _window(offset: int, limit: int | None) -> None:
    if offset < 0:
        raise InvalidArgumentError(f"offset must be >= 0, got {offset}")
    if limit is not None and limit < 0:
        raise InvalidArgumentError(f"limit must be >= 0, got {limit}")


class BrowseAPI(RegistryBase):
    """Counts, pages and overviews: datasets, validation runs, models, metrics, Bentos, audit log."""

    # ------------------------------------------------------------------ datasets and validation

    def dataset_names(self) -> list[str]:
        """Names of every dataset the registry knows, sorted."""
        return self._read(lambda s: list(s.scalars(select(Dataset.name).order_by(Dataset.name))))

    def _vr_filter(self, query: Select[Any], dataset: str | None, md5: str | None) -> Select[Any]:
        query = query.join(DatasetVersion, DatasetVersion.id == ValidationRun.dataset_version_id).join(
            Dataset, Dataset.id == DatasetVersion.dataset_id
        )
        if dataset is not None:
            query = query.where(Dataset.name == dataset)
        if md5 is not None:
            query = query.where(DatasetVersion.dvc_md5 == md5)
        return query

    def validation_runs(
        self,
        *,
        dataset: str | None = None,
        dataset_version_md5: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ValidationRunInfo]:
        """Validation runs, newest first, of one dataset and/or one dataset version (exact md5)."""
        _window(offset, limit)

        def op(s: Session) -> list[ValidationRunInfo]:
            query = self._vr_filter(select(ValidationRun.id), dataset, dataset_version_md5)
            ids = s.scalars(query.order_by(ValidationRun.id.desc()).offset(offset).limit(limit))
            return [q.vr_info(s, i) for i in ids]

        return self._read(op)

    def count_validation_runs(
        self, *, dataset: str | None = None, dataset_version_md5: str | None = None
    ) -> int:
        """How many validation runs :meth:`validation_runs` would list without a window."""
        query = self._vr_filter(select(func.count(ValidationRun.id)), dataset, dataset_version_md5)
        return self._read(lambda s: int(s.scalar(query) or 0))

    def steward_decision_history(
        self, dataset: str, record_id: str, *, limit: int | None = 50
    ) -> list[StewardDecisionInfo]:
        """Every decision about one record, newest first (the first one is the one that counts)."""
        _window(0, limit)

        def op(s: Session) -> list[StewardDecisionInfo]:
            rows = s.scalars(
                select(StewardDecision)
                .join(Dataset, Dataset.id == StewardDecision.dataset_id)
                .where(Dataset.name == dataset, StewardDecision.record_id == record_id)
                .order_by(StewardDecision.id.desc())
                .limit(limit)
            )
            return [q.steward_info(row, dataset) for row in rows]

        return self._read(op)

    def steward_decision_stamp(self, dataset: str) -> tuple[int, int]:
        """``(number of decisions, newest decision id)`` of a dataset: changes whenever a decision is made."""

        def op(s: Session) -> tuple[int, int]:
            count, newest = s.execute(
                select(func.count(StewardDecision.id), func.max(StewardDecision.id))
                .join(Dataset, Dataset.id == StewardDecision.dataset_id)
                .where(Dataset.name == dataset)
            ).one()
            return int(count or 0), int(newest or 0)

        return self._read(op)

    # ------------------------------------------------------------------ models

    @staticmethod
    def _model_filter(
        query: Select[Any], name: str | None, task: str | None, kind: str | None, stage: str | None
    ) -> Select[Any]:
        for column, value in ((Model.name, name), (Model.task, task), (Model.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        if stage is not None:
            query = query.where(StageAssignment.stage == stage)
        return query

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
        _window(offset, limit)

        def op(s: Session) -> list[ModelInfo]:
            query = self._model_filter(q.model_query(), name, task, kind, stage)
            rows = s.execute(query.order_by(Model.id.desc()).offset(offset).limit(limit))
            return [q.model_row_info(*row) for row in rows]

        return self._read(op)

    def count_models(
        self,
        *,
        name: str | None = None,
        task: str | None = None,
        kind: str | None = None,
        stage: str | None = None,
    ) -> int:
        """How many models match the filters of :meth:`model_page`."""
        query = select(func.count(Model.id))
        if stage is not None:
            query = query.join(StageAssignment, StageAssignment.model_id == Model.id)
        query = self._model_filter(query, name, task, kind, stage)
        return self._read(lambda s: int(s.scalar(query) or 0))

    def model_tasks(self) -> list[str]:
        """Tasks that have at least one model, sorted."""
        query = select(Model.task).where(Model.task.is_not(None)).distinct().order_by(Model.task)
        return self._read(lambda s: [str(t) for t in s.scalars(query)])

    def model_names(self, *, task: str | None = None, kind: str | None = None) -> list[str]:
        """Distinct model names, sorted, optionally of one task or kind."""
        query = select(Model.name).distinct().order_by(Model.name)
        if task is not None:
            query = query.where(Model.task == task)
        if kind is not None:
            query = query.where(Model.kind == kind)
        return self._read(lambda s: list(s.scalars(query)))

    # ------------------------------------------------------------------ metrics and gates

    def metric_keys(self, *, name: str | None = None, task: str | None = None) -> list[tuple[str, str, str]]:
        """The distinct ``(split, cohort, metric name)`` recorded for models of a name and/or task."""

        def op(s: Session) -> list[tuple[str, str, str]]:
            query = select(Metric.split, Metric.cohort, Metric.name).join(Model, Model.id == Metric.model_id)
            if name is not None:
                query = query.where(Model.name == name)
            if task is not None:
                query = query.where(Model.task == task)
            rows = s.execute(query.distinct().order_by(Metric.split, Metric.cohort, Metric.name))
            return [(str(a), str(b), str(c)) for a, b, c in rows]

        return self._read(op)

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

        def op(s: Session) -> list[MetricPointInfo]:
            models = select(Model.id)
            if name is not None:
                models = models.where(Model.name == name)
            if task is not None:
                models = models.where(Model.task == task)
            newest = models.order_by(Model.id.desc()).limit(last).subquery()
            query = (
                select(Metric, Model, StageAssignment.stage)
                .join(Model, Model.id == Metric.model_id)
                .outerjoin(StageAssignment, StageAssignment.model_id == Model.id)
                .where(Metric.model_id.in_(select(newest.c.id)))
            )
            for column, value in ((Metric.name, metric), (Metric.split, split), (Metric.cohort, cohort)):
                if value is not None:
                    query = query.where(column == value)
            rows = s.execute(query.order_by(Model.id, Metric.split, Metric.cohort, Metric.name))
            return [
                MetricPointInfo(
                    model_id=m.id,
                    model=f"{m.name}@{m.version}",
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
                for r, m, stage in rows
            ]

        return self._read(op)

    def gate_decisions(self, model: ModelRef) -> list[GateDecisionInfo]:
        """Every gate decision of a model, newest first (the first one counts)."""

        def op(s: Session) -> list[GateDecisionInfo]:
            target = q.find_model(s, model)
            ref = f"{target.name}@{target.version}"
            rows = s.scalars(
                select(GateDecision)
                .where(GateDecision.model_id == target.id)
                .order_by(GateDecision.id.desc())
            )
            return [q.gate_info(g, ref) for g in rows]

        return self._read(op)

    # ------------------------------------------------------------------ deployments

    def deployment_slots(
        self, *, stages: tuple[str, ...] = ("production", "staging")
    ) -> list[DeploymentSlotInfo]:
        """Per task and stage: the newest model there, how many models the stage holds, and its newest Bento.

        The Bento is exactly what ``ecgops bento pull TASK@STAGE`` fetches (``bento_for``); ``None``
        when that model has not been packaged. Sorted by task, then in the order of ``stages``.
        """
        for stage in stages:
            one_of("stage", stage, STAGES)

        def op(s: Session) -> list[DeploymentSlotInfo]:
            slots = s.execute(
                select(
                    StageAssignment.task,
                    StageAssignment.stage,
                    func.max(StageAssignment.model_id),
                    func.count(),
                )
                .where(StageAssignment.stage.in_(stages))
                .group_by(StageAssignment.task, StageAssignment.stage)
            ).all()
            model_ids = [row[2] for row in slots]
            newest_bento = dict(
                s.execute(
                    select(Bento.model_id, func.max(Bento.id))
                    .where(Bento.model_id.in_(model_ids))
                    .group_by(Bento.model_id)
                ).all()
            )
            models = {
                row[0].id: q.model_row_info(*row)
                for row in s.execute(q.model_query().where(Model.id.in_(model_ids)))
            }
            assignments = {
                a.model_id: a
                for a in s.scalars(select(StageAssignment).where(StageAssignment.model_id.in_(model_ids)))
            }
            out = [
                DeploymentSlotInfo(
                    task=task,
                    stage=stage,
                    model=models[model_id],
                    n_models=int(count),
                    bento=q.bento_info(s, newest_bento[model_id]) if model_id in newest_bento else None,
                    forced=assignments[model_id].forced,
                    stage_reason=assignments[model_id].reason,
                    assigned_at=aware(assignments[model_id].assigned_at),
                    assigned_by=assignments[model_id].assigned_by,
                )
                for task, stage, model_id, count in slots
            ]
            return sorted(out, key=lambda slot: (slot.task, stages.index(slot.stage)))

        return self._read(op)

    def bento_page(
        self, *, task: str | None = None, model: ModelRef | None = None, offset: int = 0, limit: int = 25
    ) -> list[BentoInfo]:
        """One page of Bentos, newest first, of one task or model."""
        _window(offset, limit)

        def op(s: Session) -> list[BentoInfo]:
            query = self._bento_filter(s, select(Bento.id), task, model)
            ids = s.scalars(query.order_by(Bento.id.desc()).offset(offset).limit(limit))
            return [q.bento_info(s, i) for i in ids]

        return self._read(op)

    def count_bentos(self, *, task: str | None = None, model: ModelRef | None = None) -> int:
        """How many Bentos :meth:`bento_page` pages through."""
        return self._read(
            lambda s: int(s.scalar(self._bento_filter(s, select(func.count(Bento.id)), task, model)) or 0)
        )

    @staticmethod
    def _bento_filter(
        s: Session, query: Select[Any], task: str | None, model: ModelRef | None
    ) -> Select[Any]:
        if task is not None:
            query = query.join(Model, Model.id == Bento.model_id).where(Model.task == task)
        if model is not None:
            query = query.where(Bento.model_id == q.find_model(s, model).id)
        return query

    # ------------------------------------------------------------------ audit

    def audit_page(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[AuditEntryInfo]:
        """One page of the audit log, newest first, with the filters of ``audit``."""
        _window(offset, limit)

        def op(s: Session) -> list[AuditEntryInfo]:
            query = q.audit_query(entity_type, entity_id, action, actor).offset(offset).limit(limit)
            return [q.audit_info(e) for e in s.scalars(query)]

        return self._read(op)

    def count_audit(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> int:
        """How many audit entries :meth:`audit_page` pages through."""
        query = q.filter_audit(select(func.count(AuditEntry.id)), entity_type, entity_id, action, actor)
        return self._read(lambda s: int(s.scalar(query) or 0))

    def audit_actions(self) -> list[str]:
        """The distinct actions in the audit log, sorted."""
        return self._read(
            lambda s: [
                str(a) for a in s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
            ]
        )
