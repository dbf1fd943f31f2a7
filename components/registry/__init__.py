"""The model registry: datasets, validation, runs, models, metrics, gates, Bentos, stages, monitoring runs,
shadow reports, audit, lineage.

from components.registry import open_registry
reg = open_registry()            # the workspace's SQLite file, or ECGOPS_REGISTRY_URL
"""

from __future__ import annotations

from components.config import get_settings
from components.registry.base import ModelRef
from components.registry.db import ensure_schema, make_engine
from components.registry.errors import (
    AmbiguousReferenceError,
    ArtifactMismatchError,
    ConstraintViolationError,
    InvalidArgumentError,
    NotFoundError,
    PromotionRefusedError,
    RegistryError,
    RegistryUnavailableError,
    SchemaVersionError,
    StageChangedError,
)
from components.registry.monitoring_api import MonitorRunRecord, ShadowReportRecord
from components.registry.repository import Registry
from components.registry.views import (
    AuditEntryInfo,
    BentoInfo,
    DatasetVersionInfo,
    DeploymentSlotInfo,
    GateDecisionInfo,
    LineageNode,
    MetricInfo,
    MetricPointInfo,
    ModelInfo,
    MonitorRunInfo,
    RunInfo,
    ShadowReportInfo,
    StageChangeInfo,
    StewardDecisionInfo,
    ValidationRunInfo,
    to_jsonable,
)

__all__ = [
    "AmbiguousReferenceError",
    "ArtifactMismatchError",
    "AuditEntryInfo",
    "BentoInfo",
    "ConstraintViolationError",
    "DatasetVersionInfo",
    "DeploymentSlotInfo",
    "GateDecisionInfo",
    "InvalidArgumentError",
    "LineageNode",
    "MetricInfo",
    "MetricPointInfo",
    "ModelInfo",
    "ModelRef",
    "MonitorRunInfo",
    "MonitorRunRecord",
    "NotFoundError",
    "PromotionRefusedError",
    "Registry",
    "RegistryError",
    "RegistryUnavailableError",
    "RunInfo",
    "SchemaVersionError",
    "ShadowReportInfo",
    "ShadowReportRecord",
    "StageChangeInfo",
    "StageChangedError",
    "StewardDecisionInfo",
    "ValidationRunInfo",
    "open_registry",
    "to_jsonable",
]


def open_registry(url: str | None = None, *, actor: str | None = None) -> Registry:
    """Open the registry at ``url`` (default: the workspace's), migrating a fresh database first."""
    settings = get_settings()
    engine = make_engine(url or settings.resolved_registry_url)
    try:
        ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return Registry(engine, actor=actor or settings.actor)
