"""Architecture configuration of the foundation model: JSON-serialisable, saved next to the weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EcgEncoderConfig(BaseModel):
    """ECG encoder architecture."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["resnet", "transformer"] = "resnet"
    width: int = Field(
        default=64, ge=8, description="channels of the first stage (resnet) / model width (transformer)"
    )
    depth: int = Field(default=4, ge=1, description="resnet stages / transformer layers")
    blocks_per_stage: int = Field(default=1, ge=1, description="resnet: residual blocks per stage")
    kernel_size: int = Field(default=5, ge=3, description="resnet: convolution kernel (odd)")
    patch_size: int = Field(default=25, ge=2, description="transformer: samples per patch")
    heads: int = Field(default=4, ge=1, description="transformer: attention heads")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


class TextEncoderConfig(BaseModel):
    """Report encoder: a small transformer trained from scratch on a tokenizer learned from the reports."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["scratch"] = "scratch"
    vocab_size: int = Field(default=2000, ge=64, description="tokenizer vocabulary learned from reports")
    max_tokens: int = Field(default=64, ge=8)
    width: int = Field(default=128, ge=16)
    depth: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


class FoundationConfig(BaseModel):
    """Everything needed to rebuild the model from its safetensors weights."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    fs: int
    n_samples: int
    embed_dim: int = 128
    ecg: EcgEncoderConfig = EcgEncoderConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    init_temperature: float = 0.07
    ecg_projection: bool = Field(default=False, description="has the ECG–ECG contrastive head")
    reconstruction: bool = Field(default=False, description="has the masked-signal reconstruction head")
