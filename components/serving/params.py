"""The ``serve:`` and ``package:`` sections of params.yaml, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ServeParams(BaseModel):
    """How the served API behaves: limits, batching, threads. Baked into the Bento when it is built."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(default=3000, ge=1, le=65535, description="port `ecgops serve` listens on")
    host: str = Field(default="127.0.0.1", description="interface `ecgops serve` binds to")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="larger request bodies get 413")
    max_batch_size: int = Field(default=16, ge=1, description="records per batched forward")
    batch_wait_ms: float = Field(
        default=0.0, ge=0.0, description="how long the first record of a batch waits for more (0: go at once)"
    )
    max_queue: int = Field(default=1024, ge=1, description="records waiting for the model; beyond: 503")
    min_fs_hz: float = Field(default=50.0, gt=0.0, description="lowest sampling rate a request may have")
    max_fs_hz: float = Field(default=10_000.0, gt=0.0, description="highest sampling rate a request may have")
    min_duration_s: float | None = Field(
        default=None, gt=0.0, description="shortest signal accepted; default: the model's input length"
    )
    max_prompts: int = Field(default=64, ge=1, description="zero-shot prompts per request")
    max_prompt_chars: int = Field(default=500, ge=1, description="characters per zero-shot prompt")
    torch_threads: int = Field(
        default=1,
        ge=0,
        description="intra-op threads of the model's forward thread (0: all cores); the event loop that "
        "parses requests needs a core too",
    )
    forward: Literal["traced", "eager"] = Field(
        default="traced",
        description="run the batched task forward traced (TorchScript: no GIL while it runs, checked "
        "against the eager model at start-up) or eager",
    )
    gil_switch_interval_ms: float = Field(
        default=0.5,
        gt=0.0,
        description="how long a Python thread may hold the GIL while another waits (Python's default: 5): "
        "the forward thread needs the GIL between operators, so a short interval keeps it from waiting "
        "behind request parsing",
    )
    timeout_s: float = Field(default=60.0, gt=0.0, description="request timeout")
    workers: int = Field(default=1, ge=1, description="server worker processes")
    access_log: bool = Field(default=True, description="log a line per request (BentoML's access log)")


class PackageParams(BaseModel):
    """How Bentos are named, built and exported."""

    model_config = ConfigDict(extra="forbid")

    bento_prefix: str = Field(default="ecgops", description="Bento name: <prefix>-<task>")
    export_format: Literal["bento", "gz", "tar", "zip"] = Field(
        default="bento", description="archive format in the artifact store: bento (tar.xz), gz, tar or zip"
    )
