"""``ecgops predict``: score a drop with a registered task model, without HTTP.

drop → the readers and preparation ingest uses (whole records, at the model's rate) → windows → one
batched forward per chunk → Parquet predictions (model, Bento, dataset version, input content hash per
row) + a quarantine of the records that could not be scored, with the reason → the prediction log.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress

from components.inference.entries import LogContext, log_entries
from components.inference.models import DeployedModel, load_deployed
from components.inference.output import predictions_table, quarantine_table, write_outputs
from components.inference.reader import Prepared, read_drop
from components.inference.scoring import score_records
from components.io.canonical import n_windows
from components.io.prepare import PreparedRecord, RejectedRecord
from components.predictions.writer import BackgroundWriter, WriterOptions
from components.workspace import Workspace


class BatchRequest(BaseModel):
    """What to score, with what, and where the predictions go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop: Path = Field(description="a drop folder ingest can read (PTB-XL, CinC, WFDB + manifest)")
    model: str = Field(description="TASK@STAGE or a task model name@version")
    out: str | None = Field(default=None, description="output folder (path or fsspec URL)")
    format: str = Field(default="auto", description="drop format: auto, ptbxl, cinc or wfdb")


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction did and where it landed."""

    model_ref: str
    task: str
    bento: str
    dataset_version: str
    drop_format: str
    out: str
    n_predicted: int
    n_quarantined: int
    n_logged: int
    log_failures: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.n_predicted / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"records_per_s": round(self.records_per_s, 1)}


def default_out(workspace: Workspace, task: str, at: datetime) -> str:
    """``<workspace>/.ecgops/batch/<task>/<UTC time>``: where predictions go unless ``--out`` says."""
    return str(workspace.state_dir / "batch" / task / at.strftime("%Y%m%dT%H%M%SZ"))


def predict_drop(workspace: Workspace, request: BatchRequest, *, progress: bool = False) -> BatchResult:
    """Score every record of ``request.drop``; see the module docstring."""
    started, at = time.perf_counter(), datetime.now(UTC)
    if not request.drop.is_dir():
        raise FileNotFoundError(f"drop folder not found: {request.drop}")
    with workspace.registry() as registry:
        deployed = load_deployed(registry, request.model)
    out = request.out or default_out(workspace, str(deployed.info.task), at)
    params = workspace.params.predict
    fmt, chunks = read_drop(
        request.drop,
        request.format,
        deployed.model.cfg.fs,
        workers=params.workers,
        chunk_records=params.chunk_records,
    )
    log = BackgroundWriter(workspace.prediction_log(), list, WriterOptions()) if params.log else None
    tables, rejected = [], []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"scoring {request.drop.name} with {deployed.ref}", total=None)
        for chunk in chunks:
            accepted, refused = _admitted(chunk, deployed, workspace.params.windows.max_windows)
            rejected += refused
            tables.append(_score_chunk(workspace, deployed, accepted, at, log))
            bar.advance(task, len(chunk))
    if log is not None:
        log.close()
    stats = log.stats() if log is not None else None
    n_predicted = sum(t.num_rows for t in tables)
    result = BatchResult(
        model_ref=deployed.ref,
        task=str(deployed.info.task),
        bento=deployed.bento,
        dataset_version=deployed.dataset_version,
        drop_format=fmt,
        out=out,
        n_predicted=n_predicted,
        n_quarantined=len(rejected),
        n_logged=stats.written if stats else 0,
        log_failures=stats.failed_flushes if stats else 0,
        seconds=time.perf_counter() - started,
    )
    if not tables:
        tables.append(_score_chunk(workspace, deployed, [], at, None))
    write_outputs(out, tables, quarantine_table(rejected), result.to_dict() | {"drop": str(request.drop)})
    return result


def _admitted(
    chunk: list[Prepared], deployed: DeployedModel, max_windows: int
) -> tuple[list[PreparedRecord], list[RejectedRecord]]:
    """The chunk's records the model can score, and the rest with their reason."""
    length, fs = deployed.model.cfg.n_samples, deployed.model.cfg.fs
    accepted: list[PreparedRecord] = []
    refused: list[RejectedRecord] = []
    for record in chunk:
        if isinstance(record, RejectedRecord):
            refused.append(record)
        elif (count := n_windows(record.n_valid_samples, length)) > max_windows:
            seconds = record.n_valid_samples / fs
            refused.append(
                RejectedRecord(
                    record.ref,
                    f"record is {seconds:.0f} s long: {count} windows of {length / fs:g} s, more than "
                    f"windows.max_windows ({max_windows})",
                )
            )
        else:
            accepted.append(record)
    return accepted, refused


def _score_chunk(
    workspace: Workspace,
    deployed: DeployedModel,
    records: list[PreparedRecord],
    at: datetime,
    log: BackgroundWriter[Any] | None,
) -> pa.Table:
    scores = score_records(
        deployed.model,
        [r.signal for r in records],
        np.array([r.lead_mask for r in records], dtype=bool).reshape(len(records), 12),
        np.array([r.n_valid_samples for r in records], dtype=np.int64),
        windows=workspace.params.windows,
        batch_size=workspace.params.predict.batch_size,
    )
    if log is not None:
        context = LogContext(at=at, source="batch", request_ids=[uuid.uuid4().hex for _ in records])
        for entry in log_entries(deployed, records, scores, context):
            log.submit(entry)
    return predictions_table(deployed, records, scores, at)
