"""The monitoring report: ``report.html`` with its PNGs and the tables of every test an assessment ran."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from components.monitoring import plots
from components.monitoring.drift import DriftAssessment, EmbeddingDrift, FeatureDrift, RateDrift

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em;vertical-align:top;text-align:left}
.breach{background:#fde2e2}.ok{background:#e4f6e4}.insufficient{background:#eeeeee}.skipped{color:#777}
.status{font-size:1.4em;font-weight:bold;padding:.3em .6em;display:inline-block}
img{max-width:100%;border:1px solid #ddd;margin:.3em}
.figs{display:flex;flex-wrap:wrap;gap:.5em}
"""
COUNTS = ("n reference", "n window")


def _num(value: float, spec: str) -> str:
    return "" if math.isnan(value) else format(value, spec)


def _table(header: list[str], rows: list[list[str]], classes: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr class='{cls}'>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row, cls in zip(rows, classes, strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _feature_table(tests: list[FeatureDrift]) -> str:
    header = ["feature", "group", "reference", *COUNTS, "KS D", "p", "p adjusted", "finding"]
    rows = [
        [
            t.feature,
            t.group,
            t.reference,
            str(t.n_reference),
            str(t.n_window),
            _num(t.statistic, ".3f"),
            _num(t.p_value, ".2g"),
            _num(t.p_adjusted, ".2g"),
            t.skipped_reason or ("BREACH" if t.breach else "ok"),
        ]
        for t in tests
    ]
    classes = ["skipped" if t.skipped_reason else "breach" if t.breach else "" for t in tests]
    return _table(header, rows, classes)


def _embedding_table(e: EmbeddingDrift) -> str:
    row = [f"{e.statistic:.4g}", f"{e.p_value:.2g}", str(e.n_reference), str(e.n_window)]
    row.append(f"{e.bandwidth:.3g}")
    header = ["MMD²", "p (permutations)", *COUNTS, "RBF bandwidth", "finding"]
    return _table(header, [[*row, "BREACH" if e.breach else "ok"]], ["breach" if e.breach else ""])


def _rate_table(rates: list[RateDrift]) -> str:
    header = ["label", "reference rate", "window rate", *COUNTS, "p", "p adjusted", "finding"]
    rows = [
        [
            r.label,
            f"{r.reference_rate:.3f}",
            _num(r.window_rate, ".3f"),
            str(r.n_reference),
            str(r.n_window),
            f"{r.p_value:.2g}",
            f"{r.p_adjusted:.2g}",
            "BREACH" if r.breach else "ok",
        ]
        for r in rates
    ]
    return _table(header, rows, ["breach" if r.breach else "" for r in rates])


def _img(path: Path) -> str:
    return f"<img src='{escape(path.name)}' alt='{escape(path.stem)}'>"


def _sections(
    assessment: DriftAssessment,
    out_dir: Path,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    embeddings: tuple[np.ndarray, np.ndarray],
) -> list[str]:
    """The test sections with their figures (an assessment that ran its tests)."""
    parts = ["<h2>Signal-quality features</h2>"]
    if assessment.features:
        figures = [
            plots.feature_ecdfs(assessment.features, *frames, out_dir / "features.png"),
            plots.group_pvalues(assessment.features, out_dir / "feature_groups.png"),
        ]
        parts += ["<div class='figs'>" + "".join(map(_img, figures)) + "</div>"]
    parts.append(_feature_table(assessment.features))
    if assessment.embedding is not None:
        title = f"Embeddings (MMD² p = {assessment.embedding.p_value:.2g})"
        figure = plots.embedding_pca(*embeddings, title, out_dir / "embedding.png")
        parts += ["<h2>Embedding space</h2>", _img(figure), _embedding_table(assessment.embedding)]
    parts.append("<h2>Predicted-positive rates</h2>")
    if assessment.rates:
        parts.append(_img(plots.positive_rates(assessment.rates, out_dir / "positive_rates.png")))
    parts.append(_rate_table(assessment.rates))
    return parts


def write_report(
    assessment: DriftAssessment,
    out_dir: Path,
    *,
    title: str,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    reference_embedding: np.ndarray,
    window_embedding: np.ndarray,
) -> Path:
    """Write ``out_dir/report.html`` and its PNGs; an ``insufficient`` assessment gets the header only
    (no test was run). Returns the HTML file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    status = assessment.status
    parts = [
        f"<h1>{escape(title)}</h1>",
        f"<div class='status {status}'>Drift: {escape(status.upper())}</div>",
        f"<p>Policy {escape(assessment.policy)}; {assessment.n_window} window samples against "
        f"{assessment.n_reference} reference records.</p>",
        "<ul>" + "".join(f"<li>{escape(reason)}</li>" for reason in assessment.reasons) + "</ul>",
    ]
    if status != "insufficient":
        parts += _sections(assessment, out_dir, (reference, window), (reference_embedding, window_embedding))
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
