"""ECG encoder factory."""

from __future__ import annotations

from components.models.config import EcgEncoderConfig
from components.models.ecg_resnet import ResNet1d
from components.models.ecg_transformer import PatchTransformer

EcgEncoder = ResNet1d | PatchTransformer


def build_ecg_encoder(cfg: EcgEncoderConfig, max_samples: int) -> EcgEncoder:
    """The encoder ``cfg.arch`` names, for records of at most ``max_samples`` samples."""
    if cfg.arch == "resnet":
        return ResNet1d(cfg)
    return PatchTransformer(cfg, max_samples)
