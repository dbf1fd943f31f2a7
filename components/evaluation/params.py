"""The ``evaluate:`` section of params.yaml, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EvaluateParams(BaseModel):
    """``evaluate:`` in params.yaml."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_rounds: int = Field(default=200, ge=200, description="patient-level bootstrap resamples")
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = 0
    calibration_bins: int = Field(default=10, ge=2)
    age_bands: list[float] = Field(
        default_factory=lambda: [40.0, 60.0, 80.0], description="band edges (years)"
    )
    subgroups: list[Literal["sex", "age", "site", "device"]] = ["sex", "age", "site", "device"]
    external: list[str] = Field(
        default_factory=list, description="datasets under data/ used as external cohorts"
    )
    gate_policies: dict[str, str] = Field(
        default_factory=dict, description="task → gate policy (default: the task's own `gate:`)"
    )

    @field_validator("age_bands")
    @classmethod
    def _ascending(cls, value: list[float]) -> list[float]:
        if value != sorted(set(value)):
            raise ValueError("age_bands must be strictly ascending")
        return value
