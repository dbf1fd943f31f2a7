"""Lookups by reference (md5 prefix, ``name@version``, tag) and conversion of rows into views."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from components.registry.errors import AmbiguousReferenceError, InvalidArgumentError, NotFoundError
from components.registry.models import (
    AuditEntry,
    Bento,
    Dataset,
    DatasetVersion,
    GateDecision,
    Model,
    MonitorRun,
    Run,
    ShadowReport,
    StageAssignment,
    StewardDecision,
    ValidationRun,
)
from components.registry.views import (
    AuditEntryInfo,
    BentoInfo,
    DatasetVersionInfo,
    GateDecisionInfo,
    ModelInfo,
    MonitorRunInfo,
    RunInfo,
    ShadowReportInfo,
    StewardDecisionInfo,
    ValidationRunInfo,
    aware,
)

T = TypeVar("T")
ModelRef = int | str | ModelInfo


def get(s: Session, entity: type[T], key: int, what: str) -> T:
    row = s.get(entity, key)
    if row is None:
        raise NotFoundError(f"no {what} with id {key}")
    return row


def find_dv(s: Session, md5_or_prefix: str) -> DatasetVersion:
    exact = s.scalars(select(DatasetVersion).where(DatasetVersion.dvc_md5 == md5_or_prefix)).all()
    if len(exact) == 1:
        return exact[0]
    matches = (
        exact
        or s.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dvc_md5.startswith(md5_or_prefix, autoescape=True))
            .limit(5)
        ).all()
    )
    if not matches or not md5_or_prefix:
        raise NotFoundError(f"no dataset version matches {md5_or_prefix!r}")
    if len(matches) > 1:
        raise AmbiguousReferenceError(
            f"{md5_or_prefix!r} matches several dataset versions "
            f"({', '.join(m.dvc_md5[:12] for m in matches)}, ...): give more characters"
        )
    return matches[0]


def find_model(s: Session, ref: ModelRef) -> Model:
    if isinstance(ref, ModelInfo):
        ref = ref.id
    if isinstance(ref, int):
        return get(s, Model, ref, "model")
    name, at, version = ref.partition("@")
    query = select(Model).where(Model.name == name)
    if at:
        if not version.isdigit():
            raise InvalidArgumentError(f"model reference {ref!r}: the version after '@' must be a number")
        found = s.scalar(query.where(Model.version == int(version)))
    else:
        found = s.scalar(query.order_by(Model.version.desc()).limit(1))
    if found is None:
        raise NotFoundError(f"no model {ref!r}")
    return found


def find_bento(s: Session, tag: str) -> Bento:
    found = s.scalar(select(Bento).where(Bento.tag == tag))
    if found is None:
        raise NotFoundError(f"no bento {tag!r}")
    return found


def model_ref(model: Model) -> str:
    """``name@version`` of a model row."""
    return f"{model.name}@{model.version}"


def ref_of(s: Session, model_id: int) -> str:
    name, version = s.execute(select(Model.name, Model.version).where(Model.id == model_id)).one()
    return f"{name}@{version}"


def latest_gate(s: Session, model_id: int) -> GateDecision | None:
    return s.scalar(
        select(GateDecision)
        .where(GateDecision.model_id == model_id)
        .order_by(GateDecision.id.desc())
        .limit(1)
    )


def dv_query() -> Select[DatasetVersion, str, str | None]:
    parent = aliased(DatasetVersion)
    return (
        select(DatasetVersion, Dataset.name, parent.dvc_md5)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .outerjoin(parent, parent.id == DatasetVersion.parent_id)
    )


def dv_row_info(dv: DatasetVersion, dataset: str, parent_md5: str | None) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        id=dv.id,
        dataset=dataset,
        dvc_md5=dv.dvc_md5,
        git_rev=dv.git_rev,
        n_records=dv.n_records,
        n_quarantined=dv.n_quarantined,
        n_patients=dv.n_patients,
        statistics=dv.statistics,
        parent_md5=parent_md5,
        run_id=dv.run_id,
        created_at=aware(dv.created_at),
    )


def dv_info(s: Session, dv_id: int) -> DatasetVersionInfo:
    return dv_row_info(*s.execute(dv_query().where(DatasetVersion.id == dv_id)).one())


def vr_info(s: Session, vr_id: int) -> ValidationRunInfo:
    row = s.execute(
        select(ValidationRun, Dataset.name, DatasetVersion.dvc_md5)
        .join(DatasetVersion, DatasetVersion.id == ValidationRun.dataset_version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(ValidationRun.id == vr_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no validation run with id {vr_id}")
    vr, dataset, md5 = row
    return ValidationRunInfo(
        id=vr.id,
        dataset=dataset,
        dataset_version_md5=md5,
        policy_version=vr.policy_version,
        verdict=vr.verdict,
        report_uri=vr.report_uri,
        statistics=vr.statistics,
        run_id=vr.run_id,
        created_at=aware(vr.created_at),
    )


def run_info(run: Run) -> RunInfo:
    return RunInfo(
        id=run.id,
        kind=run.kind,
        status=run.status,
        parameters=run.parameters,
        code_version=run.code_version,
        host=run.host,
        prefect_flow_run_id=run.prefect_flow_run_id,
        started_at=aware(run.started_at),
        finished_at=aware(run.finished_at) if run.finished_at else None,
        error=run.error,
        started_by=run.started_by,
    )


def model_query() -> Select[Any]:
    parent = aliased(Model)
    gate_verdict = (
        select(GateDecision.verdict)
        .where(GateDecision.model_id == Model.id)
        .order_by(GateDecision.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            Model,
            parent.name,
            parent.version,
            Dataset.name,
            DatasetVersion.dvc_md5,
            StageAssignment.stage,
            gate_verdict,
        )
        .outerjoin(parent, parent.id == Model.parent_model_id)
        .outerjoin(DatasetVersion, DatasetVersion.id == Model.dataset_version_id)
        .outerjoin(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .outerjoin(StageAssignment, StageAssignment.model_id == Model.id)
    )


def model_row_info(
    m: Model,
    parent_name: str | None,
    parent_version: int | None,
    dataset: str | None,
    md5: str | None,
    stage: str | None,
    gate_verdict: str | None,
) -> ModelInfo:
    return ModelInfo(
        id=m.id,
        name=m.name,
        version=m.version,
        kind=m.kind,
        task=m.task,
        artifact_uri=m.artifact_uri,
        sha256=m.sha256,
        parent=f"{parent_name}@{parent_version}" if parent_name is not None else None,
        parent_model_id=m.parent_model_id,
        dataset=dataset,
        dataset_version_md5=md5,
        validation_run_id=m.validation_run_id,
        run_id=m.run_id,
        stage=stage,
        gate_verdict=gate_verdict,
        created_at=aware(m.created_at),
        created_by=m.created_by,
    )


def model_info(s: Session, model_id: int) -> ModelInfo:
    return model_row_info(*s.execute(model_query().where(Model.id == model_id)).one())


def gate_info(gate: GateDecision, ref: str) -> GateDecisionInfo:
    return GateDecisionInfo(
        id=gate.id,
        model=ref,
        policy=gate.policy,
        verdict=gate.verdict,
        reasons=list(gate.reasons),
        run_id=gate.run_id,
        decided_at=aware(gate.decided_at),
        decided_by=gate.decided_by,
    )


def bento_info(s: Session, bento_id: int) -> BentoInfo:
    bento, name, version, task = s.execute(
        select(Bento, Model.name, Model.version, Model.task)
        .join(Model, Model.id == Bento.model_id)
        .where(Bento.id == bento_id)
    ).one()
    return BentoInfo(
        id=bento.id,
        tag=bento.tag,
        model=f"{name}@{version}",
        model_id=bento.model_id,
        task=task,
        artifact_uri=bento.artifact_uri,
        sha256=bento.sha256,
        run_id=bento.run_id,
        created_at=aware(bento.created_at),
        created_by=bento.created_by,
    )


def steward_info(row: StewardDecision, dataset: str) -> StewardDecisionInfo:
    return StewardDecisionInfo(
        id=row.id,
        dataset=dataset,
        record_id=row.record_id,
        decision=row.decision,
        note=row.note,
        reviewer=row.reviewer,
        decided_at=aware(row.decided_at),
    )


def audit_info(e: AuditEntry) -> AuditEntryInfo:
    return AuditEntryInfo(
        e.id, aware(e.at), e.actor, e.action, e.entity_type, e.entity_id, e.summary, e.reason, e.details
    )


def monitor_run_query() -> Select[MonitorRun, str, int]:
    """Monitoring runs with their model's name and version."""
    return select(MonitorRun, Model.name, Model.version).join(Model, Model.id == MonitorRun.model_id)


def monitor_run_info(run: MonitorRun, name: str, version: int) -> MonitorRunInfo:
    return MonitorRunInfo(
        id=run.id,
        task=run.task,
        model=f"{name}@{version}",
        model_id=run.model_id,
        policy=run.policy,
        policy_version=run.policy_version,
        window_start=aware(run.window_start),
        window_end=aware(run.window_end),
        n_window=run.n_window,
        n_reference=run.n_reference,
        status=run.status,
        summary=run.summary,
        reasons=list(run.reasons),
        report_uri=run.report_uri,
        created_at=aware(run.created_at),
        created_by=run.created_by,
    )


def shadow_report_query() -> Select[ShadowReport, str, int, str, int]:
    """Shadow reports with the refs (``name@version``) of their candidate and production model."""
    candidate, production = aliased(Model), aliased(Model)
    return (
        select(ShadowReport, candidate.name, candidate.version, production.name, production.version)
        .join(candidate, candidate.id == ShadowReport.candidate_model_id)
        .outerjoin(production, production.id == ShadowReport.production_model_id)
    )


def shadow_report_info(
    report: ShadowReport,
    candidate_name: str,
    candidate_version: int,
    production_name: str | None,
    production_version: int | None,
) -> ShadowReportInfo:
    return ShadowReportInfo(
        id=report.id,
        task=report.task,
        candidate=f"{candidate_name}@{candidate_version}",
        candidate_model_id=report.candidate_model_id,
        production=f"{production_name}@{production_version}" if production_name is not None else None,
        production_model_id=report.production_model_id,
        source=report.source,
        n_records=report.n_records,
        agreement=report.agreement,
        metrics_delta=report.metrics_delta,
        passed=report.passed,
        reasons=list(report.reasons),
        report_uri=report.report_uri,
        created_at=aware(report.created_at),
        created_by=report.created_by,
    )
