"""Registry API for runs: one row per stage execution, from start to finish."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from components.registry import provenance
from components.registry import queries as q
from components.registry.base import RegistryBase, nonempty, one_of
from components.registry.errors import InvalidArgumentError
from components.registry.models import RUN_STATUSES, Run, utcnow
from components.registry.views import RunInfo


class RunAPI(RegistryBase):
    """Runs: started, finished (succeeded or failed), looked up and listed."""

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
            self.fail_run(run_id, exc)
            raise
        self.finish_run(run_id)

    def fail_run(self, run_id: int, exc: BaseException) -> None:
        """Finish run ``run_id`` as failed with ``exc`` as its error, unless it already finished."""
        if self.get_run(run_id).status == "running":
            self.finish_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")

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
