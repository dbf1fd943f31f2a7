"""The ``orchestration:`` and ``compute:`` sections of params.yaml, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FoundationPolicy = Literal["auto", "always", "reuse"]


class OrchestrationParams(BaseModel):
    """How ``retrain`` runs: when it pretrains, how long it waits for the workspace, retries, promotion."""

    model_config = ConfigDict(extra="forbid")

    foundation: FoundationPolicy = Field(
        default="auto",
        description="auto: pretrain when there is no foundation model for the dataset, its pretrain "
        "parameters changed, or the dataset grew by `pretrain_growth`; always: pretrain whenever the "
        "dataset version, parameters or code changed; reuse: keep the current foundation model",
    )
    pretrain_growth: float = Field(
        default=0.2, ge=0.0, description="auto: share of new records since the foundation model's data"
    )
    lock_timeout_s: float = Field(
        default=3600.0, ge=0.0, description="how long a run waits for another run on the same workspace"
    )
    io_retries: int = Field(default=3, ge=0, description="retries of I/O tasks (ingest, DVC, packaging)")
    retry_backoff_s: float = Field(default=2.0, gt=0.0, description="first retry delay; doubles each time")
    retry_jitter: float = Field(default=0.2, ge=0.0, description="random share added to each retry delay")
    promote_to: Literal["staging", "none"] = Field(
        default="staging", description="where a task model whose gate passed goes"
    )


class ComputeParams(BaseModel):
    """Where the work runs: the Prefect task runner and Lightning's device settings."""

    model_config = ConfigDict(extra="forbid")

    task_runner: Literal["thread", "dask"] = "thread"
    dask_address: str | None = Field(
        default=None, description="scheduler of an existing Dask cluster; none starts a local one"
    )
    dask_workers: int = Field(default=2, ge=1, description="processes of the local Dask cluster")
    shard_records: int = Field(
        default=2048,
        ge=1,
        description="with dask: records per shard of one dataset's ingest and validation (one Prefect "
        "task each); ingest rounds it to whole ingest.chunk_records chunks, validation to whole "
        "feature batches when it is larger than one",
    )
    accelerator: str = Field(default="auto", description="Lightning accelerator: auto, cpu, gpu, ...")
    devices: int = Field(default=1, ge=1, description="devices per node; more than one trains with DDP")
    strategy: str = Field(default="auto", description="Lightning strategy: auto, ddp, ddp_spawn, fsdp, ...")

    @property
    def distributed(self) -> bool:
        """True when training needs Lightning's launcher (several processes)."""
        return self.devices > 1
