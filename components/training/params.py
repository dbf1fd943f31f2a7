"""The ``pretrain:`` section of params.yaml, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.models.config import EcgEncoderConfig, TextEncoderConfig


class TextParams(TextEncoderConfig):
    """Report encoder (see :class:`TextEncoderConfig`) plus how it trains and where extra training text
    comes from."""

    extra_reports_csv: Path | None = Field(
        default=None,
        description="PTB-XL ptbxl_database.csv: reports of training-fold patients for the tokenizer and "
        "the text-only objective (objectives.text_text)",
    )
    extra_train_folds: list[int] = Field(default_factory=lambda: list(range(1, 9)))
    lr_scale: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="hf, fine-tuned: learning rate of the pretrained model's weights / pretrain.lr",
    )

    def architecture(self) -> TextEncoderConfig:
        return TextEncoderConfig.model_validate(
            self.model_dump(exclude={"extra_reports_csv", "extra_train_folds", "lr_scale"})
        )


class AugmentParams(BaseModel):
    """ECG augmentations applied on the fly to training batches."""

    model_config = ConfigDict(extra="forbid")

    crop_fraction: float = Field(
        default=0.8, gt=0.0, le=1.0, description="random crop length / record length"
    )
    scale: float = Field(default=0.2, ge=0.0, lt=1.0, description="amplitude scaling in [1-s, 1+s]")
    wander_mv: float = Field(default=0.1, ge=0.0, description="baseline wander amplitude (mV)")
    noise_mv: float = Field(default=0.02, ge=0.0, description="Gaussian noise standard deviation (mV)")
    time_mask_fraction: float = Field(default=0.1, ge=0.0, lt=1.0, description="fraction of time zeroed")
    lead_dropout: float = Field(
        default=0.3, ge=0.0, le=1.0, description="probability of dropping leads in a record"
    )
    single_lead: float = Field(
        default=0.1, ge=0.0, le=1.0, description="probability of keeping one lead only"
    )


class ObjectiveParams(BaseModel):
    """Loss weights: CLIP always; the others are optional (0 disables)."""

    model_config = ConfigDict(extra="forbid")

    clip: float = Field(default=1.0, gt=0.0)
    ecg_ecg: float = Field(
        default=0.0, ge=0.0, description="uni-modal contrastive between two augmented views"
    )
    ecg_ecg_temperature: float = Field(default=0.1, gt=0.0)
    masked_reconstruction: float = Field(default=0.0, ge=0.0, description="masked signal reconstruction")
    mask_ratio: float = Field(default=0.3, gt=0.0, lt=1.0, description="share of time patches masked for MSM")
    init_temperature: float = Field(default=0.07, gt=0.0)
    text_text: float = Field(
        default=0.0,
        ge=0.0,
        description="text-only contrastive (SimCSE) on training-patient reports, extra ones included",
    )
    text_text_temperature: float = Field(default=0.05, gt=0.0)


class PretrainParams(BaseModel):
    """``pretrain:`` in params.yaml."""

    model_config = ConfigDict(extra="forbid")

    recipe: str = Field(
        default="ecgclip",
        description="schemas/recipes/<recipe>.yaml: the pretraining method; keys here override its settings",
    )
    dataset: str | None = Field(default=None, description="data/<dataset>; default: ingest.dataset")
    model_name: str = "ecg-fm"
    seed: int = 0
    embed_dim: int = Field(default=128, ge=8)
    ecg: EcgEncoderConfig = EcgEncoderConfig()
    text: TextParams = TextParams()
    augment: AugmentParams = AugmentParams()
    objectives: ObjectiveParams = ObjectiveParams()
    in_distribution_batches: bool = Field(default=False, description="CAPE: every batch from one site/source")
    batch_size: int = Field(default=32, ge=2)
    max_epochs: int = Field(default=5, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_steps: int = Field(default=20, ge=0)
    num_workers: int = Field(default=0, ge=0)
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = "auto"
    prompt_language: str = Field(default="auto", description="zero-shot prompt language: auto, de, en, ...")
    limit_train_records: int | None = Field(
        default=None, ge=2, description="use only the first N training records"
    )

    @model_validator(mode="before")
    @classmethod
    def _over_the_recipe(cls, data: Any) -> Any:
        """The recipe's settings under the keys given here (see :mod:`components.training.recipes`)."""
        from components.training.recipes import with_recipe

        return with_recipe(data) if isinstance(data, dict) else data

    @property
    def config_sha256(self) -> str:
        """sha256 of this resolved configuration (the recipe with its overrides)."""
        from components.training.recipes import config_sha256

        return config_sha256(self.model_dump(mode="json"))

    @model_validator(mode="after")
    def _text_objective_needs_a_trainable_encoder(self) -> PretrainParams:
        if self.objectives.text_text > 0 and self.text.kind == "hf" and self.text.frozen:
            raise ValueError(
                "objectives.text_text trains the report encoder: use text.kind 'scratch' or 'hf' with "
                "text.frozen: false"
            )
        return self
