"""The ``finetune:`` section of params.yaml, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from components.models.config import EcgEncoderConfig, TrainingMode
from components.training.params import AugmentParams


def _light_augment() -> AugmentParams:
    """Milder than pretraining: the labels, not invariances, do the work here."""
    return AugmentParams(
        crop_fraction=0.9,
        scale=0.1,
        wander_mv=0.05,
        noise_mv=0.01,
        time_mask_fraction=0.0,
        lead_dropout=0.0,
        single_lead=0.0,
    )


class FinetuneParams(BaseModel):
    """``finetune:`` in params.yaml."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        default_factory=lambda: ["ptbxl-superdiagnostic"],
        description="tasks the retrain flow fine-tunes (schemas/tasks/<name>.yaml)",
    )
    dataset: str | None = Field(default=None, description="data/<dataset>; default: ingest.dataset")
    mode: TrainingMode = "finetune"
    label_fraction: float = Field(default=1.0, gt=0.0, le=1.0, description="share of training patients")
    ensure_positive_per_label: bool = Field(
        default=True, description="a label fraction adds a patient for a label it would otherwise lack"
    )
    seed: int = 0
    batch_size: int = Field(default=32, ge=2)
    max_epochs: int = Field(default=15, ge=1)
    min_steps_per_epoch: int = Field(
        default=0, ge=0, description="small label fractions cycle their records to this many batches"
    )
    lr: float = Field(default=3e-3, gt=0.0, description="head (and, scratch, encoder) learning rate")
    encoder_lr_factor: float = Field(
        default=0.3, gt=0.0, le=1.0, description="full fine-tuning: encoder learning rate = lr × factor"
    )
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_steps: int = Field(default=10, ge=0)
    threshold_rule: Literal["f1", "youden", "sensitivity"] = Field(
        default="f1", description="how decision thresholds are tuned on the validation split"
    )
    target_sensitivity: float = Field(default=0.9, gt=0.0, le=1.0, description="threshold_rule sensitivity")
    augment: AugmentParams = Field(default_factory=_light_augment)
    scratch_ecg: EcgEncoderConfig | None = Field(
        default=None, description="scratch without --from: encoder architecture (default: pretrain.ecg)"
    )
    num_workers: int = Field(default=0, ge=0)
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = "auto"
