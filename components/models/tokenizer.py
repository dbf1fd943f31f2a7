"""A report tokenizer learned from the training reports (BPE, any language, nothing downloaded)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

PAD, UNK, CLS, MASK = "[PAD]", "[UNK]", "[CLS]", "[MASK]"


class ReportTokenizer:
    """Fixed-length token ids for reports: ``[CLS]`` first, padded with ``[PAD]`` (id 0)."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.pad_id = tokenizer.token_to_id(PAD)
        tokenizer.enable_truncation(max_tokens)
        tokenizer.enable_padding(length=max_tokens, pad_id=self.pad_id, pad_token=PAD)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, max_tokens: int) -> ReportTokenizer:
        """Learn a BPE vocabulary from ``texts`` (lower-cased, Unicode-normalised, split on punctuation)."""
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits()])
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=2, special_tokens=[PAD, UNK, CLS, MASK], show_progress=False
        )
        tok.train_from_iterator(list(texts), trainer=trainer)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A", special_tokens=[(CLS, tok.token_to_id(CLS))]
        )
        return cls(tok, max_tokens)

    @classmethod
    def from_json(cls, text: str, max_tokens: int) -> ReportTokenizer:
        return cls(Tokenizer.from_str(text), max_tokens)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, max_tokens)`` int64 token ids."""
        if not texts:
            return np.zeros((0, self.max_tokens), dtype=np.int64)
        return np.array([e.ids for e in self.tokenizer.encode_batch(list(texts))], dtype=np.int64)

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text (without padding), for inspection."""
        return [t for t in self.tokenizer.encode(text).tokens if t != PAD]
