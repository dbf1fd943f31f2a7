"""ECG encoder factory."""

from __future__ import annotations

from components.models.config import EcgEncoderConfig
from components.models.ecg_resnet import ResNet1d
from components.models.ecg_transformer import PatchTransformer
from components.models.ecg_wav2vec import ConvTransformer

EcgEncoder = ResNet1d | PatchTransformer | ConvTransformer


def build_ecg_encoder(cfg: EcgEncoderConfig, max_samples: int) -> EcgEncoder:
    """The encoder ``cfg.arch`` names, for records of at most ``max_samples`` samples."""
    if cfg.arch == "resnet":
        return ResNet1d(cfg)
    if cfg.arch == "conv-transformer":
        return ConvTransformer(cfg, max_samples)
    return PatchTransformer(cfg, max_samples)
