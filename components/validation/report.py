"""The steward summary page: verdict, expectations with counts and trend, and every quarantined record."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from components.validation.result import ValidationResult

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em;vertical-align:top;text-align:left}
.fail{background:#fde2e2}.pass{background:#e4f6e4}.warn{background:#fff4d6}
.verdict{font-size:1.4em;font-weight:bold;padding:.3em .6em;display:inline-block}
img{max-width:100%;border:1px solid #ddd}
.record{border-top:2px solid #999;padding-top:.5em;margin-top:1em}
"""


def _rel(target: Path | None, start: Path) -> str:
    return "" if target is None else os.path.relpath(target, start)


def _fraction(e: dict[str, Any]) -> str:
    n, k = e.get("element_count"), e.get("unexpected_count")
    if not n or k is None:
        return ""
    return f"{100.0 * k / n:.2f} %"


def _expectation_rows(result: ValidationResult) -> str:
    trend = {t["id"]: t for t in result.trend}
    rows = []
    for e in result.expectations:
        d = e.to_dict()
        state = "pass" if e.success else ("fail" if e.severity in ("block", "quarantine") else "warn")
        t = trend.get(e.id)
        previous = (
            ""
            if t is None
            else f"{t['previous_unexpected']} ({t['previous_fraction_pct']:.2f} %) → {t['change']}"
        )
        count = "" if e.unexpected_count is None else f"{e.unexpected_count} / {e.element_count}"
        observed = "" if e.observed is None else escape(json.dumps(e.observed, default=str)[:200])
        limits = escape(json.dumps({k: v for k, v in e.kwargs.items() if k != "column"}, default=str)[:200])
        rows.append(
            f"<tr class='{state}'><td>{escape(e.suite)}</td>"
            f"<td><b>{escape(e.id)}</b><br>{escape(e.description)}</td><td>{escape(e.severity)}</td>"
            f"<td>{'PASS' if e.success else 'FAIL'}</td>"
            f"<td>{escape(e.column or '')}</td><td>{limits}</td><td>{count}</td><td>{_fraction(d)}</td>"
            f"<td>{observed}</td><td>{escape(previous)}</td></tr>"
        )
    return "\n".join(rows)


def _reason_text(reason: dict[str, Any]) -> str:
    lead = f" in lead {reason['lead']}" if reason.get("lead") else ""
    value = reason.get("value")
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return (
        f"<b>{escape(reason['expectation'])}</b>: {escape(reason['description'])} — "
        f"{escape(str(reason.get('column')))} = {escape(shown)}{escape(lead)} "
        f"(limits {escape(json.dumps(reason.get('limits', {}), default=str))})"
    )


def _record_blocks(quarantine: pd.DataFrame, plots: dict[str, Path], report_dir: Path) -> str:
    blocks = []
    for row in quarantine.itertuples(index=False):
        reasons = json.loads(str(row.reasons))
        decision = ""
        if row.status != "quarantined":
            decision = (
                f"<p>Steward decision: <b>{escape(str(row.status))}</b> by {escape(str(row.reviewer))} at "
                f"{escape(str(row.decided_at))}: {escape(str(row.decision_note))}</p>"
            )
        plot = plots.get(str(row.record_id))
        image = f"<img src='{escape(_rel(plot, report_dir))}' alt='12-lead ECG'>" if plot else ""
        items = "".join(f"<li>{_reason_text(r)}</li>" for r in reasons)
        blocks.append(
            f"<div class='record' id='{escape(str(row.record_id))}'><h3>{escape(str(row.record_id))} "
            f"<small>({escape(str(row.source_record))}, split {escape(str(row.split))}, status "
            f"{escape(str(row.status))})</small></h3><ul>{items}</ul>{decision}{image}</div>"
        )
    return "\n".join(blocks)


def write_summary(result: ValidationResult, quarantine: pd.DataFrame, plots: dict[str, Path]) -> Path:
    """Write ``summary.html`` into the run's report directory and return its path."""
    out = result.summary_html
    docs = _rel(result.data_docs_index, out.parent)
    stats = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in result.dataset_stats.items()
    )
    previous = (
        f"Trend against run <code>{escape(result.previous_run)}</code> (previous dataset version)."
        if result.previous_run
        else "No earlier dataset version validated: no trend yet."
    )
    failed_block = ", ".join(e.id for e in result.failed("block")) or "none"
    verdict_class = "fail" if result.blocked else result.verdict
    title = f"ecgops validation — {escape(result.dataset)} — {escape(result.run_name)}"
    identity = (
        f"run <code>{escape(result.run_name)}</code>, policy {escape(result.policy_version)} "
        f"(<code>{escape(result.policy_fingerprint)}</code>), "
        f"content <code>{escape(result.content_fingerprint)}</code>"
    )
    counts = (
        f"{result.n_records} records; {result.n_quarantined} quarantined awaiting review, "
        f"{result.n_rejected} rejected, {result.n_accepted} accepted by stewards. "
        f"Blocking failures: <b>{escape(failed_block)}</b>."
    )
    header = (
        "<tr><th>suite</th><th>expectation</th><th>severity</th><th>result</th><th>column</th>"
        "<th>limits</th><th>failing / checked</th><th>failing %</th><th>observed</th>"
        "<th>previous version</th></tr>"
    )
    how = (
        'Decide with <code>ecgops review accept|reject RECORD_ID --note "…"</code>; applied on next validate.'
    )
    html = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{title}</title><style>{_CSS}</style></head><body>
<h1>Validation of <code>{escape(result.dataset)}</code></h1>
<p><span class="verdict {verdict_class}">{escape(result.verdict.upper())}</span> &nbsp; {identity}</p>
<p>{counts}</p>
<p><a href="{escape(docs)}">Great Expectations Data Docs</a> ·
 <a href="result.json">result.json</a> · <a href="quarantine.parquet">quarantine.parquet</a></p>
<h2>Expectations</h2><p>{previous}</p>
<table>{header}
{_expectation_rows(result)}</table>
<h2>Dataset statistics</h2><table>{stats}</table>
<h2>Quarantined records ({len(quarantine)})</h2>
<p>{how}</p>
{_record_blocks(quarantine, plots, out.parent)}
</body></html>"""
    out.write_text(html)
    return out
