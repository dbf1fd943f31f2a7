"""The registry API every stage uses. No other module writes SQL against the registry.

Each public method runs in its own transaction, retried when a concurrent writer won a uniqueness race
(version numbers, get-or-create, the one-production-per-task index). Inside ``with reg.atomic():`` the
calls share one transaction instead: all of them land, or none does.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from components.registry import lineage
from components.registry import queries as q
from components.registry.audit_api import AuditAPI
from components.registry.base import ModelRef
from components.registry.bento_api import BentoAPI
from components.registry.dataset_api import DatasetAPI
from components.registry.errors import InvalidArgumentError, NotFoundError
from components.registry.model_api import ModelAPI
from components.registry.models import Bento
from components.registry.monitoring_api import MonitoringAPI
from components.registry.run_api import RunAPI
from components.registry.stage_api import StageAPI
from components.registry.views import LineageNode

TargetKind = Literal["bento", "model", "dataset_version"]
_TARGET_PREFIXES: dict[str, TargetKind] = {"bento": "bento", "model": "model", "dataset": "dataset_version"}


class Registry(DatasetAPI, RunAPI, BentoAPI, ModelAPI, StageAPI, MonitoringAPI, AuditAPI):
    """Repository over one registry database. Thread-safe; open one per process (engines do not fork)."""

    # ------------------------------------------------------------------ lineage

    def lineage_up(self, *, model: ModelRef | None = None, bento: str | None = None) -> LineageNode:
        """Everything a model or Bento came from: runs, dataset version, validation, gate, parent models."""
        if (model is None) == (bento is None):
            raise InvalidArgumentError("give exactly one of model or bento")

        def op(s: Session) -> LineageNode:
            if bento is not None:
                return lineage.up_from_bento(s, q.find_bento(s, bento).id)
            assert model is not None
            return lineage.up_from_model(s, q.find_model(s, model).id)

        return self._read(op)

    def lineage_down(
        self, *, dataset_version: str | None = None, model: ModelRef | None = None
    ) -> LineageNode:
        """Everything built on a dataset version or model: models (transitively) and their Bentos."""
        if (dataset_version is None) == (model is None):
            raise InvalidArgumentError("give exactly one of dataset_version or model")

        def op(s: Session) -> LineageNode:
            if dataset_version is not None:
                return lineage.down_from_dataset_version(s, q.find_dv(s, dataset_version).id)
            assert model is not None
            return lineage.down_from_model(s, q.find_model(s, model).id)

        return self._read(op)

    def resolve(self, target: str) -> tuple[TargetKind, str]:
        """What a CLI argument names: ``bento:TAG``, ``model:REF``, ``dataset:MD5``, else the first match."""
        prefix, _, rest = target.partition(":")
        if rest and prefix in _TARGET_PREFIXES:
            return _TARGET_PREFIXES[prefix], rest

        def op(s: Session) -> tuple[TargetKind, str]:
            if s.scalar(select(Bento.id).where(Bento.tag == target)) is not None:
                return "bento", target
            try:
                q.find_model(s, target)
                return "model", target
            except (NotFoundError, InvalidArgumentError):
                pass
            try:
                q.find_dv(s, target)
            except NotFoundError:
                raise NotFoundError(f"no Bento, model or dataset version named {target!r}") from None
            return "dataset_version", target

        return self._read(op)
