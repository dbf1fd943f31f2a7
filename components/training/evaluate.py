"""How good a foundation model is on a split of a store: a linear probe of its frozen features (every
recipe), and for a recipe with a text space zero-shot classification from prompts and ECG→report
retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import torch
import yaml

from components.config import SCHEMAS_DIR
from components.io.leads import STANDARD_LEADS
from components.io.store import DatasetStore
from components.metrics.classification import auroc, macro_auroc
from components.models.foundation import SignalLanguageModel
from components.models.text import TextTokenizer
from components.training.probe import linear_probe
from components.training.reports import SUPERCLASSES, record_reports, superdiagnostic_targets

RECALL_AT = (1, 5, 10)


@cache
def prompt_spec() -> dict:
    return yaml.safe_load((SCHEMAS_DIR / "prompts" / "zero_shot.yaml").read_text())


def report_language(report: str, markers: dict[str, set[str]]) -> str | None:
    """The language whose marker words occur most often in one report (None when none occurs)."""
    words = report.lower().replace(".", " ").split()
    counts = {lang: sum(w in marks for w in words) for lang, marks in markers.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > 0 else None


def detect_languages(reports: list[str], min_share: float = 0.2) -> list[str]:
    """Prompt languages of a dataset: each report votes; every language with ``min_share`` of the votes
    (at least the most frequent one), most frequent first."""
    markers = {lang: set(spec["markers"]) for lang, spec in prompt_spec()["languages"].items()}
    votes = pd.Series([report_language(r, markers) for r in reports]).dropna().value_counts(normalize=True)
    if votes.empty:
        return [next(iter(markers))]
    return [str(lang) for lang, share in votes.items() if share >= min_share] or [str(votes.index[0])]


def retrieval_hits(similarity: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per query (row of ``similarity``): is the true candidate among the ``k`` most similar?"""
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return (top == truth[:, None]).any(axis=1)


@torch.no_grad()
def embed_ecgs(
    model: SignalLanguageModel,
    store: DatasetStore,
    rows: np.ndarray,
    *,
    leads: Sequence[str] | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, encoder features)`` of the given manifest rows at full length, with all their leads
    or only those of ``leads`` (e.g. ``["II"]`` for single-lead use); embeddings are in the shared space
    for a model with a text space (see :meth:`SignalLanguageModel.embedding`)."""
    model.eval()
    device = next(model.parameters()).device
    masks = store.lead_masks()
    if leads is not None:
        masks = masks & np.isin(np.array(STANDARD_LEADS), list(leads))
    embeddings, features = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        signal = torch.from_numpy(store.read(chunk) * masks[chunk, :, None]).to(device)
        mask = torch.from_numpy(masks[chunk]).to(device)
        pooled = model.ecg_features(signal, mask)
        features.append(pooled.float().cpu().numpy())
        embeddings.append(model.embedding(pooled).float().cpu().numpy())
    return np.concatenate(embeddings), np.concatenate(features)


@torch.no_grad()
def embed_texts(
    model: SignalLanguageModel, tokenizer: TextTokenizer, texts: list[str], *, batch_size: int = 256
) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    tokens = torch.from_numpy(tokenizer.encode(texts))
    out = [
        model.embed_text(tokens[i : i + batch_size].to(device)).float().cpu().numpy()
        for i in range(0, len(tokens), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), dtype=np.float32)


def labelled_rows(store: DatasetStore, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, superdiagnostic targets)`` of a split's records that carry at least one superclass."""
    manifest = store.manifest
    rows = np.flatnonzero(manifest["split"].to_numpy() == split)
    targets = superdiagnostic_targets(manifest.iloc[rows])
    keep = targets.sum(1) > 0
    return rows[keep], targets[keep]


def probe_scores(
    model: SignalLanguageModel, store: DatasetStore, split: str = "test", leads: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A linear probe of the frozen encoder features for the superdiagnostic classes (fit on train, L2
    chosen on validation), applied to ``split``: ``(rows, targets, scores)`` of the split's labelled
    records; the scores are empty when a split has no labelled records."""
    parts = {name: labelled_rows(store, name) for name in ("train", "val", split)}
    rows, targets = parts[split]
    if any(len(part_rows) == 0 for part_rows, _ in parts.values()):
        return rows, targets, np.zeros((0, targets.shape[1]), dtype=np.float32)
    features = {name: embed_ecgs(model, store, r, leads=leads)[1] for name, (r, _) in parts.items()}
    result = linear_probe(
        (features["train"], parts["train"][1]), (features["val"], parts["val"][1]), features[split]
    )
    return rows, targets, result.test_scores


def probe_macro_auroc(
    model: SignalLanguageModel, store: DatasetStore, split: str = "test", leads: Sequence[str] | None = None
) -> tuple[float, int]:
    """Superdiagnostic macro AUROC of :func:`probe_scores` on ``split`` and the number of labelled records
    it was measured on; NaN when a split has no labelled records."""
    rows, targets, scores = probe_scores(model, store, split, leads)
    if len(scores) == 0:
        return float("nan"), len(rows)
    return macro_auroc(targets, scores), len(rows)


@dataclass
class TextEvaluation:
    """Zero-shot and retrieval results of a model with a text space, with the arrays benchmarks bootstrap."""

    language: str
    zero_shot_macro_auroc: float
    zero_shot_auroc: dict[str, float]
    n_labelled: int
    recall_at: dict[int, float]
    chance_at: dict[int, float]
    n_unique_reports: int
    targets: np.ndarray = field(repr=False)
    zero_shot_scores: np.ndarray = field(repr=False)
    hits: dict[int, np.ndarray] = field(repr=False)

    def metrics(self) -> dict[str, float]:
        out = {"zero_shot_macro_auroc": self.zero_shot_macro_auroc}
        out |= {f"zero_shot_auroc_{c}": v for c, v in self.zero_shot_auroc.items()}
        out |= {f"retrieval_recall@{k}": v for k, v in self.recall_at.items()}
        out |= {f"retrieval_chance@{k}": v for k, v in self.chance_at.items()}
        return out


@dataclass
class Evaluation:
    """A foundation model's results on one split: the linear probe, and ``text`` (zero-shot, retrieval)
    when it learned a text space."""

    split: str
    n_records: int
    probe_macro_auroc: float
    n_probe_records: int
    text: TextEvaluation | None

    @property
    def zero_shot_macro_auroc(self) -> float:
        if self.text is None:
            raise ValueError("the model learned no text space: it has no zero-shot results")
        return self.text.zero_shot_macro_auroc

    def metrics(self) -> dict[str, float]:
        """Flat metric name → value, as recorded in the registry."""
        out = {"probe_macro_auroc": self.probe_macro_auroc}
        return out | (self.text.metrics() if self.text is not None else {})

    def to_dict(self) -> dict:
        data: dict = {
            "split": self.split,
            "n_records": self.n_records,
            "n_probe_records": self.n_probe_records,
        }
        if self.text is not None:
            keep = ("language", "n_labelled", "n_unique_reports")
            data |= {k: v for k, v in asdict(self.text).items() if k in keep}
        return data | {"metrics": self.metrics()}


def class_prompt_embeddings(
    model: SignalLanguageModel, tokenizer: TextTokenizer, languages: list[str]
) -> np.ndarray:
    """``(5, d)``: per superclass, the normalised mean of its prompts' embeddings, averaged over languages."""
    spec = prompt_spec()["languages"]
    out = []
    for superclass in SUPERCLASSES:
        per_language = []
        for language in languages:
            mean = embed_texts(model, tokenizer, spec[language]["prompts"][superclass]).mean(0)
            per_language.append(mean / np.linalg.norm(mean))
        pooled = np.mean(per_language, axis=0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.stack(out)


def evaluate(
    model: SignalLanguageModel,
    tokenizer: TextTokenizer | None,
    store: DatasetStore,
    *,
    split: str = "test",
    language: str = "auto",
    leads: Sequence[str] | None = None,
) -> Evaluation:
    """The linear probe on ``split`` of ``store`` and, for a model with a text space (and its
    ``tokenizer``), zero-shot superdiagnostic AUROC and ECG→report recall@1/5/10 (see
    :func:`evaluate_text`). ``leads``: use only these."""
    manifest = store.manifest
    rows = np.flatnonzero(manifest["split"].to_numpy() == split)
    if len(rows) == 0:
        raise ValueError(f"{store.root}: no records in split {split!r}")
    probe, n_probe = probe_macro_auroc(model, store, split, leads)
    text = None
    if model.has_text_space:
        assert tokenizer is not None, "a model with a text space comes with its tokenizer"
        text = evaluate_text(model, tokenizer, store, rows, language=language, leads=leads)
    return Evaluation(split, len(rows), probe, n_probe, text)


def evaluate_text(
    model: SignalLanguageModel,
    tokenizer: TextTokenizer,
    store: DatasetStore,
    rows: np.ndarray,
    *,
    language: str = "auto",
    leads: Sequence[str] | None = None,
) -> TextEvaluation:
    """Zero-shot superdiagnostic AUROC and ECG→report recall@1/5/10 on manifest ``rows``.

    ``language``: a prompt language of schemas/prompts/zero_shot.yaml, several joined by ``+``, or ``auto``
    (the languages of the training reports, see :func:`detect_languages`).
    """
    manifest = store.manifest
    part = manifest.iloc[rows]
    reports = record_reports(part)
    if language == "auto":
        languages = detect_languages(record_reports(manifest[manifest["split"] == "train"]) or reports)
    else:
        languages = language.split("+")
    unknown = set(languages) - set(prompt_spec()["languages"])
    if unknown:
        raise ValueError(f"no zero-shot prompts for language(s) {sorted(unknown)}")
    ecg, _ = embed_ecgs(model, store, rows, leads=leads)

    targets = superdiagnostic_targets(part)
    labelled = targets.sum(1) > 0
    scores = ecg[labelled] @ class_prompt_embeddings(model, tokenizer, languages).T
    per_class = {c: float(auroc(targets[labelled, j], scores[:, j])) for j, c in enumerate(SUPERCLASSES)}

    unique, truth = np.unique(np.asarray(reports, dtype=object), return_inverse=True)
    similarity = ecg @ embed_texts(model, tokenizer, [str(u) for u in unique]).T
    hits = {k: retrieval_hits(similarity, truth, k) for k in RECALL_AT}
    return TextEvaluation(
        language="+".join(languages),
        zero_shot_macro_auroc=macro_auroc(targets[labelled], scores),
        zero_shot_auroc=per_class,
        n_labelled=int(labelled.sum()),
        recall_at={k: float(h.mean()) for k, h in hits.items()},
        chance_at={k: min(1.0, k / len(unique)) for k in RECALL_AT},
        n_unique_reports=len(unique),
        targets=targets[labelled],
        zero_shot_scores=scores,
        hits=hits,
    )
