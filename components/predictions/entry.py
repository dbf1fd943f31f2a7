"""One prediction as the log keeps it: who answered, for what input, with what result.

An entry names its input by content hash only: it never holds the signal nor a patient identifier
(unknown fields are refused, and the embedding is bounded to the size of a pooled feature vector).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Source = Literal["served", "batch", "shadow"]
#: the longest embedding an entry holds: pooled features are hundreds of values, a signal is thousands
MAX_EMBEDDING = 4096
#: a quality feature's name: it becomes the column ``quality.<name>``
QUALITY_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


class PredictionEntry(BaseModel):
    """A served, batch or shadow prediction of one input (a record, possibly cut into ``n_windows``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: AwareDatetime = Field(description="when it was answered; kept in UTC")
    request_id: str = Field(min_length=1)
    source: Source
    task: str = Field(min_length=1)
    model_ref: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="the task model, name@version")
    bento: str = Field(default="", description="the Bento tag that served it; empty when none")
    dataset_version: str = Field(default="", description="the data version the model was trained on")
    input_hash: str = Field(min_length=1, description="content hash of the canonical input")
    site: str | None = None
    device: str | None = None
    n_windows: int = Field(default=1, ge=1, description="windows the record was cut into")
    leads_used: list[str] = Field(default_factory=list)
    quality: dict[str, float] = Field(default_factory=dict, description="signal quality; NaN allowed")
    labels: list[str]
    probabilities: list[float]
    decisions: list[bool]
    embedding: list[float] = Field(default_factory=list, max_length=MAX_EMBEDDING)

    @field_validator("time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("quality")
    @classmethod
    def _quality_names_are_column_names(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name in value if not re.fullmatch(QUALITY_NAME, name))
        if bad:
            raise ValueError(f"quality feature names {bad} are not names (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _one_probability_and_decision_per_label(self) -> PredictionEntry:
        n = len(self.labels)
        if len(self.probabilities) != n or len(self.decisions) != n:
            raise ValueError(
                f"{n} labels but {len(self.probabilities)} probabilities and {len(self.decisions)} decisions"
            )
        return self

    @property
    def positive_labels(self) -> list[str]:
        """The labels decided present."""
        return [label for label, yes in zip(self.labels, self.decisions, strict=True) if yes]
