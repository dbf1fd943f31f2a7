"""Registry API for data: dataset versions, validation runs, steward decisions, runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from components.registry import provenance
from components.registry import queries as q
from components.registry.base import RegistryBase, nonempty, one_of
from components.registry.errors import InvalidArgumentError, NotFoundError
from components.registry.models import (
    RUN_STATUSES,
    STEWARD_DECISIONS,
    VALIDATION_VERDICTS,
    Dataset,
    DatasetVersion,
    Run,
    StewardDecision,
    ValidationRun,
    utcnow,
)
from components.registry.views import DatasetVersionInfo, RunInfo, StewardDecisionInfo, ValidationRunInfo


class DataAPI(RegistryBase):
    """Dataset versions, validation runs, steward decisions and runs."""

    # ------------------------------------------------------------------ datasets

    def record_dataset_version(
        self,
        dataset: str,
        dvc_md5: str,
        *,
        git_rev: str | None,
        n_records: int,
        n_quarantined: int,
        n_patients: int,
        statistics: dict[str, Any],
        parent_md5: str | None,
        run_id: int | None = None,
        actor: str | None = None,
    ) -> DatasetVersionInfo:
        """Record a DVC dataset version; idempotent on ``(dataset, dvc_md5)`` (returns the existing one)."""
        nonempty("dataset", dataset)
        nonempty("dvc_md5", dvc_md5)
        if parent_md5 == dvc_md5:
            raise InvalidArgumentError(f"dataset version {dvc_md5} cannot be its own parent")

        def op(s: Session) -> DatasetVersionInfo:
            ds = self._dataset(s, dataset, create=True)
            existing = s.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == ds.id, DatasetVersion.dvc_md5 == dvc_md5
                )
            )
            if existing is not None:
                return q.dv_info(s, existing.id)
            parent_id = None
            if parent_md5 is not None:
                parent_id = s.scalar(
                    select(DatasetVersion.id).where(
                        DatasetVersion.dataset_id == ds.id, DatasetVersion.dvc_md5 == parent_md5
                    )
                )
                if parent_id is None:
                    raise NotFoundError(f"parent version {parent_md5} of dataset {dataset!r} is not recorded")
            dv = DatasetVersion(
                dataset_id=ds.id,
                dvc_md5=dvc_md5,
                git_rev=git_rev,
                n_records=n_records,
                n_quarantined=n_quarantined,
                n_patients=n_patients,
                statistics=statistics,
                parent_id=parent_id,
                run_id=run_id,
            )
            s.add(dv)
            s.flush()
            self._audit(
                s,
                actor=actor,
                action="dataset_version.recorded",
                entity_type="dataset_version",
                entity_id=dvc_md5,
                summary=f"{dataset} version {dvc_md5}: {n_records} records, {n_quarantined} quarantined",
                details={"dataset": dataset, "git_rev": git_rev, "parent_md5": parent_md5},
            )
            return q.dv_info(s, dv.id)

        return self._write(op)

    def dataset_versions(self, dataset: str | None = None) -> list[DatasetVersionInfo]:
        """Dataset versions, newest first, optionally of one dataset."""

        def op(s: Session) -> list[DatasetVersionInfo]:
            query = q.dv_query().order_by(DatasetVersion.id.desc())
            if dataset is not None:
                query = query.where(Dataset.name == dataset)
            return [q.dv_row_info(*row) for row in s.execute(query)]

        return self._read(op)

    def find_dataset_version(self, md5_or_prefix: str) -> DatasetVersionInfo:
        """The dataset version whose md5 is, or uniquely starts with, ``md5_or_prefix``."""
        return self._read(lambda s: q.dv_info(s, q.find_dv(s, md5_or_prefix).id))

    # ------------------------------------------------------------------ validation

    def record_validation_run(
        self,
        dataset_version_md5: str,
        *,
        policy_version: str,
        verdict: str,
        report_uri: str,
        statistics: dict[str, Any],
        run_id: int | None = None,
        actor: str | None = None,
    ) -> int:
        """Record a validation of a dataset version; returns its id."""
        one_of("verdict", verdict, VALIDATION_VERDICTS)

        def op(s: Session) -> int:
            dv = q.find_dv(s, dataset_version_md5)
            vr = ValidationRun(
                dataset_version_id=dv.id,
                run_id=run_id,
                policy_version=policy_version,
                verdict=verdict,
                report_uri=report_uri,
                statistics=statistics,
            )
            s.add(vr)
            s.flush()
            self._audit(
                s,
                actor=actor,
                action="validation.recorded",
                entity_type="dataset_version",
                entity_id=dv.dvc_md5,
                summary=f"validation run {vr.id} under policy {policy_version}: {verdict}",
                details={"validation_run_id": vr.id, "report_uri": report_uri},
            )
            return vr.id

        return self._write(op)

    def latest_validation_run(self, dataset_version_md5: str) -> ValidationRunInfo | None:
        """The most recent validation run of a dataset version, if any."""

        def op(s: Session) -> ValidationRunInfo | None:
            dv = q.find_dv(s, dataset_version_md5)
            vr_id = s.scalar(
                select(func.max(ValidationRun.id)).where(ValidationRun.dataset_version_id == dv.id)
            )
            return None if vr_id is None else q.vr_info(s, vr_id)

        return self._read(op)

    def validation_run(self, validation_run_id: int) -> ValidationRunInfo:
        """One validation run by id."""
        return self._read(lambda s: q.vr_info(s, validation_run_id))

    # ------------------------------------------------------------------ steward decisions

    def record_steward_decision(
        self,
        *,
        dataset: str,
        record_id: str,
        decision: Literal["accept", "reject"],
        note: str,
        reviewer: str,
    ) -> StewardDecisionInfo:
        """Append a steward's decision on a record (the latest decision per record wins)."""
        one_of("decision", decision, STEWARD_DECISIONS)
        nonempty("reviewer", reviewer)

        def op(s: Session) -> StewardDecisionInfo:
            ds = self._dataset(s, dataset, create=True)
            row = StewardDecision(
                dataset_id=ds.id, record_id=record_id, decision=decision, note=note, reviewer=reviewer
            )
            s.add(row)
            s.flush()
            self._audit(
                s,
                actor=reviewer,
                action="steward.decided",
                entity_type="record",
                entity_id=f"{dataset}/{record_id}",
                summary=f"{decision} {record_id}",
                reason=note or None,
            )
            return q.steward_info(row, dataset)

        return self._write(op)

    def steward_decisions(self, dataset: str) -> dict[str, StewardDecisionInfo]:
        """The latest decision per record id of a dataset."""

        def op(s: Session) -> dict[str, StewardDecisionInfo]:
            rows = s.scalars(
                select(StewardDecision)
                .join(Dataset, Dataset.id == StewardDecision.dataset_id)
                .where(Dataset.name == dataset)
                .order_by(StewardDecision.id)
            )
            return {row.record_id: q.steward_info(row, dataset) for row in rows}

        return self._read(op)

    # ------------------------------------------------------------------ runs

    def start_run(
        self,
        kind: str,
        *,
        parameters: dict[str, Any] | None = None,
        code_version: str | None = None,
        host: str | None = None,
        prefect_flow_run_id: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Record that a stage started; returns the run id (finish it with :meth:`finish_run`)."""
        nonempty("kind", kind)

        def op(s: Session) -> int:
            run = Run(
                kind=kind,
                status="running",
                parameters=parameters or {},
                code_version=code_version or provenance.code_version(),
                host=host or provenance.host(),
                prefect_flow_run_id=prefect_flow_run_id,
                started_by=actor or self.actor,
            )
            s.add(run)
            s.flush()
            return run.id

        return self._write(op)

    def finish_run(
        self, run_id: int, *, status: Literal["succeeded", "failed"] = "succeeded", error: str | None = None
    ) -> RunInfo:
        """Mark a running run as finished."""
        one_of("status", status, RUN_STATUSES[1:])

        def op(s: Session) -> RunInfo:
            run = q.get(s, Run, run_id, "run")
            if run.status != "running":
                raise InvalidArgumentError(f"run {run_id} already finished ({run.status})")
            run.status = status
            run.error = error
            run.finished_at = utcnow()
            s.flush()
            return q.run_info(run)

        return self._write(op)

    @contextmanager
    def run(self, kind: str, **kwargs: Any) -> Iterator[int]:
        """``with reg.run("finetune", parameters=...) as run_id:`` — finished as failed if the body raises."""
        run_id = self.start_run(kind, **kwargs)
        try:
            yield run_id
        except BaseException as exc:
            self.finish_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        self.finish_run(run_id)

    def get_run(self, run_id: int) -> RunInfo:
        """One run by id."""
        return self._read(lambda s: q.run_info(q.get(s, Run, run_id, "run")))

    def runs(self, *, kind: str | None = None, limit: int = 50) -> list[RunInfo]:
        """Recent runs, newest first."""

        def op(s: Session) -> list[RunInfo]:
            query = select(Run).order_by(Run.id.desc()).limit(limit)
            if kind is not None:
                query = query.where(Run.kind == kind)
            return [q.run_info(r) for r in s.scalars(query)]

        return self._read(op)
