"""Registry API for production monitoring: drift checks of production models and shadow reports of
candidates, each audited in the same transaction as its row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.base import ModelRef, RegistryBase, check_window, nonempty, one_of
from components.registry.errors import InvalidArgumentError
from components.registry.models import MONITOR_STATUSES, Model, MonitorRun, ShadowReport
from components.registry.views import MonitorRunInfo, ShadowReportInfo

Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class MonitorRunRecord:
    """One drift check to record: the production ``model`` monitored (its task is the model's), the
    monitoring policy, the window of logged predictions, the verdict and the assessment.

    ``status``: ``ok``, ``breach`` (needs ``reasons``) or ``insufficient`` (too few records to judge).
    Window bounds are timezone-aware; they are stored in UTC.
    """

    model: ModelRef
    policy: str
    policy_version: str
    window_start: datetime
    window_end: datetime
    n_window: int
    n_reference: int
    status: Literal["ok", "breach", "insufficient"]
    summary: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    report_uri: str | None = None


@dataclass(frozen=True)
class ShadowReportRecord:
    """One shadow evaluation to record: ``candidate`` replayed beside ``production`` (``None`` when the
    task had no production model) on ``source`` (``drop:/path``, ``log:2026-12-01..2026-12-07``).

    ``agreement`` maps each label to its agreement statistics (``LabelAgreement.to_dict()``);
    ``metrics_delta`` holds candidate − production metrics where labels exist; a failed report needs
    ``reasons``. JSON values must be finite (write ``None`` for an undefined statistic).
    """

    candidate: ModelRef
    production: ModelRef | None
    source: str
    n_records: int
    agreement: dict[str, Any]
    passed: bool
    reasons: tuple[str, ...] = ()
    metrics_delta: dict[str, Any] | None = None
    report_uri: str | None = None


def _utc(what: str, value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


def _finite_json(what: str, value: Any) -> None:
    """Refuse what is not JSON of finite numbers (PostgreSQL's JSONB has no NaN or infinity)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{what} must be JSON with finite numbers (None if undefined): {exc}"
        ) from None


def _counts(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0:
            raise InvalidArgumentError(f"{name} must be >= 0, got {value}")


def _check_monitor_run(record: MonitorRunRecord) -> tuple[datetime, datetime]:
    """Refuse an unknown status, a breach without reasons, bad counts, window or JSON; the window in UTC."""
    one_of("status", record.status, MONITOR_STATUSES)
    nonempty("policy", record.policy)
    nonempty("policy_version", record.policy_version)
    _counts(n_window=record.n_window, n_reference=record.n_reference)
    start = _utc("window_start", record.window_start)
    end = _utc("window_end", record.window_end)
    if start > end:
        raise InvalidArgumentError(
            f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        )
    if record.status == "breach" and not record.reasons:
        raise InvalidArgumentError("a breach needs its reasons")
    _finite_json("summary", record.summary)
    return start, end


def _check_shadow_report(record: ShadowReportRecord) -> None:
    nonempty("source", record.source)
    _counts(n_records=record.n_records)
    if not record.passed and not record.reasons:
        raise InvalidArgumentError("a failed shadow report needs its reasons")
    _finite_json("agreement", record.agreement)
    _finite_json("metrics_delta", record.metrics_delta)


def _task_model(s: Session, ref: ModelRef, role: str) -> Model:
    model = q.find_model(s, ref)
    if model.task is None:
        raise InvalidArgumentError(f"{role} {q.model_ref(model)} is a foundation model; name a task model")
    return model


def _monitor_filter(s: Session, query: Select[*Ts], task: str | None, model: ModelRef | None) -> Select[*Ts]:
    if task is not None:
        query = query.where(MonitorRun.task == task)
    if model is not None:
        query = query.where(MonitorRun.model_id == q.find_model(s, model).id)
    return query


def _shadow_filter(
    s: Session, query: Select[*Ts], task: str | None, candidate: ModelRef | None
) -> Select[*Ts]:
    if task is not None:
        query = query.where(ShadowReport.task == task)
    if candidate is not None:
        query = query.where(ShadowReport.candidate_model_id == q.find_model(s, candidate).id)
    return query


class MonitoringAPI(RegistryBase):
    """Monitoring runs of production models and shadow reports of candidates."""

    # ------------------------------------------------------------------ monitoring runs

    def record_monitor_run(self, record: MonitorRunRecord) -> MonitorRunInfo:
        """Store a drift check with its audit entry (``monitor.breach`` for a breach, else
        ``monitor.run``) in one transaction."""
        start, end = _check_monitor_run(record)

        def op(s: Session) -> MonitorRunInfo:
            model = _task_model(s, record.model, "the monitored model")
            run = MonitorRun(
                task=str(model.task),
                model_id=model.id,
                policy=record.policy,
                policy_version=record.policy_version,
                window_start=start,
                window_end=end,
                n_window=record.n_window,
                n_reference=record.n_reference,
                status=record.status,
                summary=dict(record.summary),
                reasons=list(record.reasons),
                report_uri=record.report_uri,
                created_by=self.actor,
            )
            s.add(run)
            s.flush()
            ref = q.model_ref(model)
            self._audit(
                s,
                actor=None,
                action="monitor.breach" if record.status == "breach" else "monitor.run",
                entity_type="model",
                entity_id=ref,
                summary=f"monitor {record.policy}@{record.policy_version} on {ref} "
                f"({start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} UTC, {record.n_window} records): "
                + record.status
                + (f": {'; '.join(record.reasons)}" if record.reasons else ""),
                reason="; ".join(record.reasons) or None,
                details={"monitor_run_id": run.id, "task": run.task, "status": record.status},
            )
            return q.monitor_run_info(run, model.name, model.version)

        return self._write(op)

    def monitor_runs(
        self,
        *,
        task: str | None = None,
        model: ModelRef | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> list[MonitorRunInfo]:
        """Monitoring runs, newest first, of one task and/or one model."""
        check_window(offset, limit)

        def op(s: Session) -> list[MonitorRunInfo]:
            query = _monitor_filter(s, q.monitor_run_query(), task, model)
            rows = s.execute(query.order_by(MonitorRun.id.desc()).offset(offset).limit(limit))
            return [q.monitor_run_info(*row) for row in rows]

        return self._read(op)

    def count_monitor_runs(self, *, task: str | None = None, model: ModelRef | None = None) -> int:
        """How many monitoring runs :meth:`monitor_runs` would list without a window."""
        return self._read(
            lambda s: int(s.scalar(_monitor_filter(s, select(func.count(MonitorRun.id)), task, model)) or 0)
        )

    # ------------------------------------------------------------------ shadow reports

    def record_shadow_report(self, record: ShadowReportRecord) -> ShadowReportInfo:
        """Store a shadow report with its audit entry (``shadow.reported``) in one transaction.

        Candidate and production are task models of the same task, and not the same model.
        """
        _check_shadow_report(record)

        def op(s: Session) -> ShadowReportInfo:
            candidate = _task_model(s, record.candidate, "the candidate")
            production = (
                None if record.production is None else _task_model(s, record.production, "production")
            )
            _same_task(candidate, production)
            report = ShadowReport(
                task=str(candidate.task),
                candidate_model_id=candidate.id,
                production_model_id=production.id if production is not None else None,
                source=record.source,
                n_records=record.n_records,
                agreement=dict(record.agreement),
                metrics_delta=None if record.metrics_delta is None else dict(record.metrics_delta),
                passed=record.passed,
                reasons=list(record.reasons),
                report_uri=record.report_uri,
                created_by=self.actor,
            )
            s.add(report)
            s.flush()
            info = q.shadow_report_info(
                report,
                candidate.name,
                candidate.version,
                production.name if production is not None else None,
                production.version if production is not None else None,
            )
            self._audit_shadow(s, info)
            return info

        return self._write(op)

    def _audit_shadow(self, s: Session, info: ShadowReportInfo) -> None:
        against = info.production or "no production model"
        self._audit(
            s,
            actor=None,
            action="shadow.reported",
            entity_type="model",
            entity_id=info.candidate,
            summary=f"shadow of {info.candidate} against {against} on {info.n_records} records "
            f"from {info.source}: {'passed' if info.passed else 'failed'}",
            reason="; ".join(info.reasons) or None,
            details={"shadow_report_id": info.id, "task": info.task, "production": info.production},
        )

    def shadow_reports(
        self,
        *,
        task: str | None = None,
        candidate: ModelRef | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> list[ShadowReportInfo]:
        """Shadow reports, newest first, of one task and/or one candidate."""
        check_window(offset, limit)

        def op(s: Session) -> list[ShadowReportInfo]:
            query = _shadow_filter(s, q.shadow_report_query(), task, candidate)
            rows = s.execute(query.order_by(ShadowReport.id.desc()).offset(offset).limit(limit))
            return [q.shadow_report_info(*row) for row in rows]

        return self._read(op)

    def count_shadow_reports(self, *, task: str | None = None, candidate: ModelRef | None = None) -> int:
        """How many shadow reports :meth:`shadow_reports` would list without a window."""
        return self._read(
            lambda s: int(
                s.scalar(_shadow_filter(s, select(func.count(ShadowReport.id)), task, candidate)) or 0
            )
        )

    def latest_shadow_report(
        self, candidate: ModelRef, production: ModelRef | None
    ) -> ShadowReportInfo | None:
        """The newest shadow report of ``candidate`` against ``production`` (``None``: reports made when the
        task had no production model), or ``None`` when there is none."""

        def op(s: Session) -> ShadowReportInfo | None:
            query = q.shadow_report_query().where(
                ShadowReport.candidate_model_id == q.find_model(s, candidate).id
            )
            if production is None:
                query = query.where(ShadowReport.production_model_id.is_(None))
            else:
                query = query.where(ShadowReport.production_model_id == q.find_model(s, production).id)
            row = s.execute(query.order_by(ShadowReport.id.desc()).limit(1)).one_or_none()
            return None if row is None else q.shadow_report_info(*row)

        return self._read(op)


def _same_task(candidate: Model, production: Model | None) -> None:
    """Refuse a production model of another task than the candidate's, or the candidate itself."""
    if production is None:
        return
    if production.id == candidate.id:
        raise InvalidArgumentError(f"{q.model_ref(candidate)} cannot shadow itself")
    if production.task != candidate.task:
        raise InvalidArgumentError(
            f"the candidate {q.model_ref(candidate)} is a model of task {candidate.task}, "
            f"the production model {q.model_ref(production)} of task {production.task}"
        )
