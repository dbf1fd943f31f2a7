"""The ``pretrain:`` section of params.yaml, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.models.config import DecoderConfig, EcgEncoderConfig, TextEncoderConfig


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
    random_lead_mask: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="ECG-FM's RLM: probability of masking each present lead (one always stays)",
    )
    rpeak_crop: bool = Field(
        default=False, description="crops start just before a detected R-peak (hybrid MAE + SimCLR)"
    )
    rpeak_lead_in_s: float = Field(
        default=0.25, ge=0.0, description="rpeak_crop: seconds kept before the R-peak"
    )


class ObjectiveParams(BaseModel):
    """Loss weights (0 disables one) and their temperatures; a recipe turns on the ones its paper uses."""

    model_config = ConfigDict(extra="forbid")

    clip: float = Field(default=1.0, ge=0.0, description="ECG ↔ report InfoNCE (ECGCLIP); needs reports")
    ecg_ecg: float = Field(
        default=0.0, ge=0.0, description="SimCLR: NT-Xent between two augmented views of a record"
    )
    ecg_ecg_temperature: float = Field(
        default=0.1, gt=0.0, description="temperature of every ECG–ECG contrastive loss (SimCLR, CMSC, CAPE)"
    )
    masked_reconstruction: float = Field(
        default=0.0, ge=0.0, description="masked signal reconstruction from the whole encoder (MSM)"
    )
    wav2vec: float = Field(
        default=0.0,
        ge=0.0,
        description="ECG-FM: contrastive prediction of masked latents against distractors of the same record",
    )
    wav2vec_distractors: int = Field(default=20, ge=1, description="wav2vec: distractors per masked step")
    wav2vec_temperature: float = Field(default=0.1, gt=0.0)
    cmsc: float = Field(
        default=0.0,
        ge=0.0,
        description="ECG-FM's CMSC: two adjacent segments of a record, and records of a patient, are "
        "positives",
    )
    mae: float = Field(
        default=0.0,
        ge=0.0,
        description="masked autoencoder: the encoder sees the visible patches, a decoder rebuilds the rest",
    )
    patient: float = Field(
        default=0.0,
        ge=0.0,
        description="CAPE: two ECGs of one patient are positives (two views of one record if it is alone)",
    )
    init_temperature: float = Field(default=0.07, gt=0.0, description="CLIP's initial temperature")
    text_text: float = Field(
        default=0.0,
        ge=0.0,
        description="text-only contrastive (SimCSE) on training-patient reports, extra ones included",
    )
    text_text_temperature: float = Field(default=0.05, gt=0.0)

    def weights(self) -> dict[str, float]:
        """Each objective's weight, by name (the loss names the module logs)."""
        return {name: getattr(self, name) for name in OBJECTIVES}

    @property
    def uses_text(self) -> bool:
        """Whether the recipe learns a text space (and so needs reports)."""
        return self.clip > 0 or self.text_text > 0


#: the objectives a recipe can weight (``ObjectiveParams`` fields)
OBJECTIVES: tuple[str, ...] = (
    "clip",
    "ecg_ecg",
    "masked_reconstruction",
    "wav2vec",
    "cmsc",
    "mae",
    "patient",
    "text_text",
)


class MaskingParams(BaseModel):
    """How the masked objectives hide the signal: ``masked_reconstruction`` masks a share of the encoder's
    windows at random, ``wav2vec`` contiguous spans of the latent sequence (wav2vec 2.0), ``mae`` spans of
    several lengths (multi-scale temporal masking)."""

    model_config = ConfigDict(extra="forbid")

    ratio: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="masked_reconstruction, mae: share masked; wav2vec: probability a step starts a span",
    )
    span: int = Field(default=5, ge=1, description="wav2vec: latent steps per span")
    scales: list[int] = Field(
        default_factory=lambda: [1, 4], min_length=2, description="mae: span lengths in patches"
    )


class SamplerParams(BaseModel):
    """Which records share a batch."""

    model_config = ConfigDict(extra="forbid")

    in_distribution_batches: bool = Field(
        default=False, description="CAPE's IDB: every step's batches (on every rank) come from one group"
    )
    group_key: list[str] = Field(
        default_factory=lambda: ["source", "site"],
        min_length=1,
        description="manifest columns whose values make a group (e.g. [source, site], [device])",
    )
    small_groups: Literal["merge", "pad"] = Field(
        default="merge",
        description="a group smaller than one step's batches: merge: pooled with the other small ones; "
        "pad: its batch filled with repeats of its records (never dropped; the report says which)",
    )


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
    masking: MaskingParams = MaskingParams()
    decoder: DecoderConfig = DecoderConfig()
    sampler: SamplerParams = SamplerParams()
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
    def _objectives_fit_the_encoder(self) -> PretrainParams:
        weights = self.objectives.weights()
        if not any(weight > 0 for weight in weights.values()):
            raise ValueError(f"objectives: give at least one of {', '.join(OBJECTIVES)} a weight above 0")
        needs = {"wav2vec": "conv-transformer", "mae": "transformer"}
        for name, arch in needs.items():
            if weights[name] > 0 and self.ecg.arch != arch:
                raise ValueError(f"objectives.{name} needs ecg.arch {arch!r}, not {self.ecg.arch!r}")
        return self

    @model_validator(mode="after")
    def _text_objective_needs_a_trainable_encoder(self) -> PretrainParams:
        if self.objectives.text_text > 0 and self.text.kind == "hf" and self.text.frozen:
            raise ValueError(
                "objectives.text_text trains the report encoder: use text.kind 'scratch' or 'hf' with "
                "text.frozen: false"
            )
        return self
