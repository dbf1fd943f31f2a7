"""The signal-language foundation model: ECG encoder and report encoder projected into one space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from components.models.config import FoundationConfig
from components.models.ecg import build_ecg_encoder
from components.models.ecg_input import N_LEADS
from components.models.mae import MAEDecoder
from components.models.text import ScratchTextEncoder
from components.models.text_errors import NoTextSpaceError


class SignalLanguageModel(nn.Module):
    """The ECG encoder, with a report encoder and a shared space when the recipe learns one (CLIP), and the
    heads its pretraining objectives train (ECG–ECG projection, masked reconstruction)."""

    def __init__(self, cfg: FoundationConfig, text_encoder: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.ecg = build_ecg_encoder(cfg.ecg, cfg.n_samples)
        self.ecg_proj: nn.Module | None = None
        if cfg.text is not None:
            self.text = (
                text_encoder
                if text_encoder is not None
                else ScratchTextEncoder(cfg.text, cfg.text.vocab_size)
            )
            text_dim = int(getattr(self.text, "output_dim"))  # noqa: B009 - set by every text encoder
            self.ecg_proj = nn.Linear(self.ecg.output_dim, cfg.embed_dim)
            self.text_proj = nn.Linear(text_dim, cfg.embed_dim)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        self.view_proj: nn.Module | None = None
        if cfg.ecg_projection:
            self.view_proj = nn.Sequential(
                nn.Linear(self.ecg.output_dim, cfg.embed_dim),
                nn.ReLU(),
                nn.Linear(cfg.embed_dim, cfg.embed_dim),
            )
        self.reconstruct: nn.Module | None = None
        if cfg.reconstruction:
            self.reconstruct = nn.Conv1d(self.ecg.feature_dim, N_LEADS * self.ecg.stride, 1)
        self.decoder: MAEDecoder | None = None
        if cfg.decoder is not None:
            patch = cfg.ecg.patch_size
            d = cfg.decoder
            n_patches = -(-cfg.n_samples // patch)
            self.decoder = MAEDecoder(
                self.ecg.feature_dim, d.width, d.depth, d.heads, n_patches, N_LEADS * patch
            )
        self.context_proj: nn.Module | None = None
        self.target_proj: nn.Module | None = None
        if cfg.masked_contrastive:
            self.context_proj = nn.Linear(self.ecg.feature_dim, cfg.embed_dim)
            self.target_proj = nn.Linear(self.ecg.feature_dim, cfg.embed_dim)

    def ecg_features(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled representation (what linear probes and fine-tuning use)."""
        pooled: torch.Tensor = self.ecg(signal, lead_mask)
        return pooled

    @property
    def has_text_space(self) -> bool:
        """Whether the model learned a space shared with report text (zero-shot, retrieval)."""
        return self.cfg.text is not None

    @property
    def embedding_dim(self) -> int:
        """Width of :meth:`embed_ecg`: the shared space's, else the encoder's."""
        return self.cfg.embed_dim if self.has_text_space else int(self.ecg.output_dim)

    def embedding(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder features ``(b, output_dim)`` → the unit-norm ECG embedding: in the shared space when the
        model has one, else the encoder's own features."""
        return F.normalize(self.ecg_proj(features) if self.ecg_proj is not None else features, dim=-1)

    def embed_ecg(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        """Unit-norm ``(b, embedding_dim)`` ECG embeddings (see :meth:`embedding`)."""
        return self.embedding(self.ecg(signal, lead_mask))

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unit-norm ``(b, embed_dim)`` report embeddings in the shared space."""
        if not self.has_text_space:
            raise NoTextSpaceError("this foundation model learned no text space (its recipe uses no reports)")
        return F.normalize(self.text_proj(self.text(tokens)), dim=-1)

    def reconstruct_signal(self, features: torch.Tensor, n_samples: int) -> torch.Tensor:
        """``(b, c, l)`` encoder features → ``(b, 12, n_samples)`` signal estimate."""
        assert self.reconstruct is not None
        out = self.reconstruct(features)
        b, _, steps = out.shape
        stride = out.shape[1] // N_LEADS
        out = out.view(b, N_LEADS, stride, steps).permute(0, 1, 3, 2).reshape(b, N_LEADS, steps * stride)
        return (
            out[..., :n_samples] if out.shape[-1] >= n_samples else F.pad(out, (0, n_samples - out.shape[-1]))
        )

    @property
    def temperature(self) -> float:
        if not self.has_text_space:
            raise NoTextSpaceError("this foundation model learned no text space: it has no temperature")
        return float(torch.exp(-self.logit_scale.detach()))
