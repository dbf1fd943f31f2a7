"""The ``prediction_log:`` section of params.yaml, validated (cheap to import: no pyarrow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from components.config import Settings
    from components.predictions.writer import WriterOptions


class PredictionLogParams(BaseModel):
    """Where served and batch predictions are logged, how often they are appended, how long they stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None,
        description="folder (relative: to the workspace root) or fsspec URL of the log; none: "
        "<workspace>/.ecgops/predictions. ECGOPS_PREDICTION_LOG overrides it",
    )
    flush_interval_s: float = Field(default=1.0, gt=0.0, description="longest wait before an append")
    max_batch: int = Field(default=512, ge=1, description="entries per appended part at most")
    max_pending: int = Field(
        default=100_000, ge=1, description="entries kept while the log is unreachable; older ones are dropped"
    )
    retention_days: int | None = Field(
        default=90, ge=1, description="`ecgops predictions --prune` removes older days; none keeps all"
    )

    def resolved_url(self, settings: Settings) -> str:
        """``ECGOPS_PREDICTION_LOG``, else ``url`` (a relative folder is under the workspace root), else
        ``<state dir>/predictions``: where the CLI, batch inference and a served Bento log alike."""
        url = settings.prediction_log or self.url
        if url is None:
            return str(settings.state_dir / "predictions")
        if "://" not in url and not Path(url).is_absolute():
            return str(settings.workspace / url)
        return url

    def writer_options(self, spool_dir: Path | None = None) -> WriterOptions:
        """The background writer's options from this section (and a local spool folder)."""
        from components.predictions.writer import WriterOptions

        return WriterOptions(
            flush_interval_s=self.flush_interval_s,
            max_batch=self.max_batch,
            max_pending=self.max_pending,
            spool_dir=spool_dir,
        )
