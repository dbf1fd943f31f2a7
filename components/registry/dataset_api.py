"""Registry API for datasets: dataset versions, their validation runs and stewards' decisions on records."""

from __future__ import annotations

from typing import Any, Literal, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.base import RegistryBase, check_window, nonempty, one_of
from components.registry.errors import InvalidArgumentError, NotFoundError
from components.registry.models import (
    STEWARD_DECISIONS,
    VALIDATION_VERDICTS,
    Dataset,
    DatasetVersion,
    StewardDecision,
    ValidationRun,
)
from components.registry.views import DatasetVersionInfo, StewardDecisionInfo, ValidationRunInfo

Ts = TypeVarTuple("Ts")


def _validation_filter(query: Select[*Ts], dataset: str | None, md5: str | None) -> Select[*Ts]:
    """``query`` over validation runs restricted to a dataset and/or a dataset version (exact md5)."""
    query = query.join(DatasetVersion, DatasetVersion.id == ValidationRun.dataset_version_id).join(
        Dataset, Dataset.id == DatasetVersion.dataset_id
    )
    if dataset is not None:
        query = query.where(Dataset.name == dataset)
    if md5 is not None:
        query = query.where(DatasetVersion.dvc_md5 == md5)
    return query


def _steward_filter(query: Select[*Ts], dataset: str, record_id: str | None = None) -> Select[*Ts]:
    """``query`` over steward decisions restricted to a dataset and optionally one record of it."""
    query = query.join(Dataset, Dataset.id == StewardDecision.dataset_id).where(Dataset.name == dataset)
    if record_id is not None:
        query = query.where(StewardDecision.record_id == record_id)
    return query


class DatasetAPI(RegistryBase):
    """Dataset versions, validation runs and steward decisions."""

    # ------------------------------------------------------------------ dataset versions

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
            existing = _version_id(s, ds.id, dvc_md5)
            if existing is not None:
                return q.dv_info(s, existing)
            parent_id = None if parent_md5 is None else _version_id(s, ds.id, parent_md5)
            if parent_md5 is not None and parent_id is None:
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

    def find_dataset_version(self, md5_or_prefix: str) -> DatasetVersionInfo:
        """The dataset version whose md5 is, or uniquely starts with, ``md5_or_prefix``."""
        return self._read(lambda s: q.dv_info(s, q.find_dv(s, md5_or_prefix).id))

    def dataset_versions(self, dataset: str | None = None) -> list[DatasetVersionInfo]:
        """Dataset versions, newest first, optionally of one dataset."""

        def op(s: Session) -> list[DatasetVersionInfo]:
            query = q.dv_query().order_by(DatasetVersion.id.desc())
            if dataset is not None:
                query = query.where(Dataset.name == dataset)
            return [q.dv_row_info(*row) for row in s.execute(query)]

        return self._read(op)

    def dataset_names(self) -> list[str]:
        """Names of every dataset the registry knows, sorted."""
        return self._read(lambda s: list(s.scalars(select(Dataset.name).order_by(Dataset.name))))

    # ------------------------------------------------------------------ validation runs

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

    def validation_run(self, validation_run_id: int) -> ValidationRunInfo:
        """One validation run by id."""
        return self._read(lambda s: q.vr_info(s, validation_run_id))

    def latest_validation_run(self, dataset_version_md5: str) -> ValidationRunInfo | None:
        """The most recent validation run of a dataset version, if any."""

        def op(s: Session) -> ValidationRunInfo | None:
            dv = q.find_dv(s, dataset_version_md5)
            vr_id = s.scalar(
                select(func.max(ValidationRun.id)).where(ValidationRun.dataset_version_id == dv.id)
            )
            return None if vr_id is None else q.vr_info(s, vr_id)

        return self._read(op)

    def validation_runs(
        self,
        *,
        dataset: str | None = None,
        dataset_version_md5: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ValidationRunInfo]:
        """Validation runs, newest first, of one dataset and/or one dataset version (exact md5)."""
        check_window(offset, limit)
        query = _validation_filter(select(ValidationRun.id), dataset, dataset_version_md5)
        query = query.order_by(ValidationRun.id.desc()).offset(offset).limit(limit)
        return self._read(lambda s: [q.vr_info(s, i) for i in s.scalars(query)])

    def count_validation_runs(
        self, *, dataset: str | None = None, dataset_version_md5: str | None = None
    ) -> int:
        """How many validation runs :meth:`validation_runs` would list without a window."""
        query = _validation_filter(select(func.count(ValidationRun.id)), dataset, dataset_version_md5)
        return self._read(lambda s: int(s.scalar(query) or 0))

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
        query = _steward_filter(select(StewardDecision), dataset).order_by(StewardDecision.id)
        return self._read(lambda s: {row.record_id: q.steward_info(row, dataset) for row in s.scalars(query)})

    def steward_decision_history(
        self, dataset: str, record_id: str, *, limit: int | None = 50
    ) -> list[StewardDecisionInfo]:
        """Every decision about one record, newest first (the first one is the one that counts)."""
        check_window(0, limit)
        query = _steward_filter(select(StewardDecision), dataset, record_id)
        query = query.order_by(StewardDecision.id.desc()).limit(limit)
        return self._read(lambda s: [q.steward_info(row, dataset) for row in s.scalars(query)])

    def steward_decision_stamp(self, dataset: str) -> tuple[int, int]:
        """``(number of decisions, newest decision id)`` of a dataset: changes whenever a decision is made."""
        query = _steward_filter(select(func.count(StewardDecision.id), func.max(StewardDecision.id)), dataset)

        def op(s: Session) -> tuple[int, int]:
            count, newest = s.execute(query).one()
            return int(count or 0), int(newest or 0)

        return self._read(op)


def _version_id(s: Session, dataset_id: int, dvc_md5: str) -> int | None:
    """The id of a dataset's version with exactly this md5, if recorded."""
    return s.scalar(
        select(DatasetVersion.id).where(
            DatasetVersion.dataset_id == dataset_id, DatasetVersion.dvc_md5 == dvc_md5
        )
    )
