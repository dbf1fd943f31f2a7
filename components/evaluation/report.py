"""The evaluation report: ``<artifact store>/reports/<model ref>/index.html`` with its PNGs, the model card
(``model_card.md`` / ``model_card.html``), ``evaluation.json`` and ``predictions.parquet``."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd

from components.evaluation import plots
from components.evaluation.compute import METRICS, CohortReport, Predictions
from components.evaluation.model_card import CardContext, html_sections, to_html, to_markdown

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em;vertical-align:top;text-align:left}
.fail{background:#fde2e2}.pass{background:#e4f6e4}
.verdict{font-size:1.4em;font-weight:bold;padding:.3em .6em;display:inline-block}
img{max-width:100%;border:1px solid #ddd;margin:.3em}
.figs{display:flex;flex-wrap:wrap;gap:.5em}
.card{border-top:2px solid #999;margin-top:2em}
"""
METRIC_TITLES = {
    "auroc": "AUROC",
    "pr_auc": "PR-AUC",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "f1": "F1",
    "ece": "ECE",
}


@dataclass
class ReportFiles:
    directory: Path
    index: Path
    model_card_md: Path
    model_card_html: Path
    evaluation_json: Path
    predictions: Path
    images: list[Path]


def report_dir_for(artifact_store: str, model_ref: str) -> Path:
    """``<artifact store>/reports/<model ref>/``."""
    return Path(artifact_store) / "reports" / model_ref


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{classes[i]}'" if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _metric_table(cohort: CohortReport, labels: list[str], thresholds: list[float]) -> str:
    header = ["label", "positives", "prevalence", "threshold", *(METRIC_TITLES[m] for m in METRICS)]
    rows = [
        [
            lab,
            str(cohort.positives[lab]),
            f"{cohort.per_label[lab]['prevalence'].value:.3f}",
            f"{thresholds[j]:.3f}",
            *(cohort.per_label[lab][m].text() for m in METRICS),
        ]
        for j, lab in enumerate(labels)
    ]
    rows.append(["macro", "", "", "", *(cohort.macro[m].text() for m in METRICS)])
    return _table(header, rows)


def _img(path: Path, alt: str) -> str:
    return f"<img src='{escape(path.name)}' alt='{escape(alt)}'>"


def _cohort_figures(
    pred: Predictions,
    cohort: CohortReport,
    labels: list[str],
    thresholds: list[float],
    out: Path,
    prefix: str,
    bins: int,
) -> list[Path]:
    title = f"{cohort.name} ({cohort.n_records} records)"
    return [
        plots.roc_plot(pred, cohort, labels, out / f"{prefix}roc.png", f"ROC — {title}"),
        plots.pr_plot(pred, cohort, labels, out / f"{prefix}pr.png", f"Precision–recall — {title}"),
        plots.calibration_plot(pred, cohort, labels, bins, out / f"{prefix}calibration.png"),
        plots.confusion_plot(pred, labels, thresholds, out / f"{prefix}confusion.png"),
    ]


def _subgroup_section(
    cohort: CohortReport, labels: list[str], min_records: int | None, out: Path
) -> tuple[str, list[Path]]:
    if not cohort.subgroups:
        return "<p>No subgroup attributes were evaluated.</p>", []
    header = ["attribute", "group", "records", "patients", "macro AUROC (95 % CI)"]
    header += [f"AUROC {lab}" for lab in labels]
    rows = []
    for s in cohort.subgroups:
        small = min_records is not None and s.n_records < min_records
        rows.append(
            [
                s.attribute,
                s.group + (" (small)" if small else ""),
                str(s.n_records),
                str(s.n_patients),
                s.macro_auroc.text(),
                *(f"{s.auroc[lab]:.3f}" if math.isfinite(s.auroc[lab]) else "n/a" for lab in labels),
            ]
        )
    note = (
        f"<p>Groups with fewer than {min_records} records (marked ‘small’) are shown but not gated.</p>"
        if min_records
        else ""
    )
    figure = plots.subgroup_plot(cohort.subgroups, cohort.macro["auroc"], out / "subgroups.png")
    return note + _table(header, rows) + _img(figure, "subgroup forest plot"), [figure]


def write_report(
    ctx: CardContext,
    test_pred: Predictions,
    external_preds: dict[str, Predictions],
    directory: Path,
) -> ReportFiles:
    """Render every figure and page into ``directory`` (replaced as a whole)."""
    report, outcome = ctx.report, ctx.outcome
    tmp = directory.with_name(directory.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    labels, thresholds = report.labels, report.thresholds
    bins = int(report.settings.get("calibration_bins", 10))
    images = _cohort_figures(test_pred, report.test, labels, thresholds, tmp, "", bins)
    min_records = ctx.policy.subgroups.min_records if ctx.policy.subgroups else None
    subgroup_html, subgroup_images = _subgroup_section(report.test, labels, min_records, tmp)
    images += subgroup_images

    checks = sorted(outcome.checks, key=lambda c: c.passed)
    gate_table = _table(
        ["result", "check", "finding"],
        [["PASS" if c.passed else "FAIL", c.check, c.message] for c in checks],
        ["pass" if c.passed else "fail" for c in checks],
    )
    parts = [
        f"<h1>Evaluation of {escape(report.model)}</h1>",
        f"<p>Task <b>{escape(ctx.spec.title)}</b> ({escape(report.task)}); "
        f"evaluated {escape(report.created_at)}; "
        f"dataset {escape(ctx.dataset)} version {escape(ctx.dataset_version or 'not versioned')}.</p>",
        f"<div class='verdict {outcome.verdict}'>Gate {escape(outcome.policy)}: "
        f"{outcome.verdict.upper()}</div>",
        f"<p>{escape(ctx.policy.description)}</p>" if ctx.policy.description else "",
        "<h2>Gate decision</h2>",
        gate_table,
        "<h2>Test split</h2>",
        f"<p>{report.test.n_records} records of {report.test.n_patients} patients (registry split "
        f"<code>{escape(report.test.split)}</code>); 95 % CIs from {report.settings.get('rounds')} "
        f"patient-level bootstrap resamples. Left out: {escape(_excluded(report.test))}."
        "</p>",
        _metric_table(report.test, labels, thresholds),
        "<div class='figs'>" + "".join(_img(p, p.stem) for p in images[:4]) + "</div>",
        "<h2>Subgroups</h2>",
        subgroup_html,
    ]
    if report.comparison is not None:
        c = report.comparison
        figure = plots.comparison_plot(c, labels, tmp / "comparison.png")
        images.append(figure)
        rows = [["macro", c.difference.text()]] + [
            [lab, c.per_label_difference[lab].text()] for lab in labels
        ]
        parts += [
            f"<h2>Against production {escape(c.production)}</h2>",
            f"<p>Both models on the same {c.n_records} records; paired bootstrap. Candidate macro AUROC "
            f"{escape(c.candidate_macro_auroc.text())}, "
            f"production {escape(c.production_macro_auroc.text())}.</p>",
            _table(["label", "AUROC difference (95 % CI)"], rows),
            _img(figure, "comparison with production"),
        ]
    for cohort in report.external:
        pred = external_preds[cohort.name]
        figs = _cohort_figures(pred, cohort, labels, thresholds, tmp, f"external-{_slug(cohort.name)}-", bins)
        images += figs
        parts += [
            f"<h2>External cohort {escape(cohort.name)}</h2>",
            f"<p>{cohort.n_records} records of {cohort.n_patients} patients; "
            f"{cohort.n_mapped} with labels mapped "
            f"to {escape(ctx.spec.label_system)}. Left out: "
            f"{escape(_excluded(cohort))}.</p>",
            _metric_table(cohort, labels, thresholds),
            "<div class='figs'>" + "".join(_img(p, p.stem) for p in figs) + "</div>",
        ]
    parts += [
        "<div class='card'><h2>Model card</h2>",
        "<p><a href='model_card.html'>model_card.html</a> · <a href='model_card.md'>model_card.md</a> · "
        "<a href='evaluation.json'>evaluation.json</a> · "
        "<a href='predictions.parquet'>predictions.parquet</a></p>",
        html_sections(ctx),
        "</div>",
    ]
    (tmp / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation {escape(report.model)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    (tmp / "model_card.md").write_text(to_markdown(ctx))
    (tmp / "model_card.html").write_text(to_html(ctx, CSS))
    (tmp / "evaluation.json").write_text(
        json.dumps({"evaluation": report.to_dict(), "gate": outcome.to_dict()}, indent=2) + "\n"
    )
    _predictions_table(report.labels, test_pred, external_preds).to_parquet(tmp / "predictions.parquet")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return ReportFiles(
        directory,
        directory / "index.html",
        directory / "model_card.md",
        directory / "model_card.html",
        directory / "evaluation.json",
        directory / "predictions.parquet",
        [directory / p.name for p in images],
    )


def _excluded(cohort: CohortReport) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in cohort.excluded.items()) or "none"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def _predictions_table(
    labels: list[str], test: Predictions, external: dict[str, Predictions]
) -> pd.DataFrame:
    frames = []
    for cohort, pred in [("test", test), *external.items()]:
        frame = pd.DataFrame({"cohort": cohort, "record_id": pred.record_ids})
        for j, lab in enumerate(labels):
            frame[f"target_{lab}"] = pred.targets[:, j].astype("int8")
            frame[f"proba_{lab}"] = pred.proba[:, j].astype("float32")
        frames.append(pd.concat([frame, pred.attributes.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True)
