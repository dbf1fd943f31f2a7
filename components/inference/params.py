"""The ``predict:`` section of params.yaml: how batch inference reads and scores a drop."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PredictParams(BaseModel):
    """Batch inference (``ecgops predict``, the ``predict`` flow, shadow replays of a drop)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(
        default=0,
        ge=0,
        description="processes reading records while the model scores the previous ones (0: read in this "
        "process, faster on few cores; 1+ overlaps reading with scoring on slow storage)",
    )
    chunk_records: int = Field(default=128, ge=1, description="records read and scored together")
    batch_size: int = Field(default=256, ge=1, description="windows per forward of the model")
    log: bool = Field(default=True, description="append every prediction to the prediction log")
