"""Monitoring policies as data: ``schemas/monitoring/<name>.yaml``, versioned.

A policy says how far back the window of the prediction log reaches, how many entries it needs before
anything is decided, how much of the training data is read as the reference, the family-wise
significance level and, per check, the effect below which a significant difference is no breach.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.config import SCHEMAS_DIR, load_named_yaml
from components.monitoring.errors import MonitoringError
from components.quality.monitored import MONITORED_FEATURES

MONITORING_DIR = SCHEMAS_DIR / "monitoring"
#: the checks an assessment runs; ``alpha`` is split equally between them
CHECKS = ("features", "embedding", "positive_rate")


class FeaturePolicy(BaseModel):
    """Signal-quality feature drift: a two-sample Kolmogorov–Smirnov test per feature and group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[str] = Field(min_length=1, description="features compared (components.quality.monitored)")
    group_by: list[Literal["site", "device"]] = Field(default_factory=list)
    min_group_samples: int = Field(ge=2, description="smaller groups (either side) are reported, not tested")
    min_effect: float = Field(ge=0.0, le=1.0, description="KS statistic D below which nothing is a breach")

    @field_validator("names")
    @classmethod
    def _known_features(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in MONITORED_FEATURES]
        if unknown:
            known = ", ".join(MONITORED_FEATURES)
            raise ValueError(f"unknown feature(s) {unknown}; monitored features: {known}")
        if len(set(names)) != len(names):
            raise ValueError(f"a feature is named twice in {names}")
        return names

    @field_validator("group_by")
    @classmethod
    def _groups_once(cls, group_by: list[str]) -> list[str]:
        if len(set(group_by)) != len(group_by):
            raise ValueError(f"a column is named twice in {group_by}")
        return group_by


class EmbeddingPolicy(BaseModel):
    """Input drift in the model's embedding space: MMD² with an RBF kernel, permutation p-value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    permutations: int = Field(ge=1, description="permutations of the pooled sample")
    max_samples: int = Field(ge=2, description="each side is subsampled (seeded) to at most this many")
    min_effect: float = Field(ge=0.0, description="MMD² below which nothing is a breach")


class PositiveRatePolicy(BaseModel):
    """Predicted-positive-rate drift per label: Fisher's exact test of window against reference counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_abs_change: float = Field(ge=0.0, le=1.0, description="|window rate − reference rate| allowed")


class BreachPolicy(BaseModel):
    """What a breach sets off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retrain: bool = Field(description="start the retrain flow when an assessment breaches")


class MonitoringPolicy(BaseModel):
    """A versioned monitoring policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    description: str = ""
    window_days: float = Field(gt=0.0, description="how far back the window of the prediction log reaches")
    min_samples: int = Field(ge=2, description="fewer window entries: status insufficient, nothing decided")
    reference_max_records: int = Field(ge=2, description="records of the training data read as reference")
    alpha: float = Field(gt=0.0, lt=1.0, description="family-wise significance level of one assessment")
    features: FeaturePolicy
    embedding: EmbeddingPolicy
    positive_rate: PositiveRatePolicy
    on_breach: BreachPolicy

    @model_validator(mode="after")
    def _permutations_can_reach_alpha(self) -> MonitoringPolicy:
        share = self.alpha / len(CHECKS)
        needed = math.ceil(1.0 / share)
        if 1.0 / (1 + self.embedding.permutations) >= share:
            raise ValueError(
                f"embedding.permutations: {self.embedding.permutations} permutations cannot give a p-value "
                f"below the embedding check's share of alpha ({share:g}); use at least {needed}"
            )
        return self

    @property
    def ref(self) -> str:
        """How an assessment names its policy: ``name@vN``."""
        return f"{self.name}@v{self.version}"

    def check_alpha(self) -> float:
        """The significance level of each check within one assessment (alpha split equally)."""
        return self.alpha / len(CHECKS)


def policy_names(monitoring_dir: Path = MONITORING_DIR) -> list[str]:
    """The policies in ``schemas/monitoring``."""
    return sorted(path.stem for path in monitoring_dir.glob("*.yaml"))


def load_policy(name: str, monitoring_dir: Path = MONITORING_DIR) -> MonitoringPolicy:
    """``schemas/monitoring/<name>.yaml`` (or a path to a ``.yaml`` file), validated; a
    :class:`MonitoringError` names the file and the dotted key that is wrong."""
    return load_named_yaml(
        name, monitoring_dir, MonitoringPolicy, what="monitoring policy", error=MonitoringError
    )
