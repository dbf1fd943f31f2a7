"""Report embeddings of a frozen text encoder, cached on disk so each report is embedded once.

One file per model: ``<directory>/<model key>.safetensors`` with the SHA-256 of each text and its
embedding. The model key covers what the embedding depends on (the model's files and the token limit),
so a changed model never reuses stale vectors. Reads and writes are whole-file and atomic.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

_HASHES, _VECTORS = "text_sha256", "embedding"


def cache_key(revision: str, max_tokens: int) -> str:
    """The cache file name for a model revision and token limit."""
    return hashlib.sha256(f"{revision}|max_tokens={max_tokens}".encode()).hexdigest()[:24]


class EmbeddingCache:
    """``embed(texts, encode)`` returns one vector per text; only texts not seen before reach ``encode``."""

    def __init__(self, directory: Path, key: str):
        self.path = directory / f"{key}.safetensors"
        self.computed = 0  # texts the last :meth:`embed` had to encode

    def embed(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``(len(texts), d)`` float32 embeddings, encoding (once each) the texts the cache lacks."""
        digests = [hashlib.sha256(text.encode()).digest() for text in texts]
        known, vectors = self._load()
        missing: dict[bytes, str] = {}
        for digest, text in zip(digests, texts, strict=True):
            if digest not in known and digest not in missing:
                missing[digest] = text
        self.computed = len(missing)
        if missing:
            fresh = np.asarray(encode(list(missing.values())), dtype=np.float32)
            start = len(known)
            known.update({digest: start + i for i, digest in enumerate(missing)})
            vectors = fresh if vectors is None else np.concatenate([vectors, fresh])
            self._save(list(known), vectors)
        if vectors is None:
            return np.zeros((0, 0), dtype=np.float32)
        return vectors[[known[digest] for digest in digests]]

    def _load(self) -> tuple[dict[bytes, int], np.ndarray | None]:
        if not self.path.is_file():
            return {}, None
        tensors = load_file(str(self.path))
        hashes, vectors = tensors[_HASHES], tensors[_VECTORS]
        return {row.tobytes(): i for i, row in enumerate(hashes)}, vectors

    def _save(self, digests: list[bytes], vectors: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hashes = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        save_file({_HASHES: hashes, _VECTORS: np.ascontiguousarray(vectors)}, str(tmp))
        os.replace(tmp, self.path)
