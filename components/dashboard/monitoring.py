"""Monitoring: drift checks over time per site and device, alarms, shadow evaluations, prediction-log volume.

Every frame is built from registry rows (:class:`MonitorRunInfo`, :class:`ShadowReportInfo`, whose
``summary`` is the assessment ``ecgops monitor`` recorded) or from the prediction log; nothing here
recomputes a statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from components.predictions.log import PredictionLog, volume
from components.registry import MonitorRunInfo, ShadowReportInfo

#: the group of a feature test over the whole window (the others are ``site=X`` and ``device=Y``)
WHOLE_WINDOW = "all"
#: the chart's series of the embedding test, beside the feature groups
EMBEDDING_SERIES = "embedding (MMD²)"
RUN_COLUMNS = (
    "run", "checked", "task", "model", "policy", "window start", "window end", "window n",
    "reference n", "status", "embedding p", "MMD²", "embedding breach", "reasons", "report",
)
ALARM_COLUMNS = (
    "run", "checked", "task", "model", "window start", "window end", "window n", "reasons", "report",
)
DRIFT_COLUMNS = (
    "run", "window end", "task", "model", "status", "group", "tests", "skipped", "min p adjusted",
    "most drifted", "breached features", "breach",
)
AGREEMENT_COLUMNS = (
    "label", "n", "agreement", "kappa", "flips to positive", "flips to negative", "flip rate",
)


def _number(value: Any) -> float:
    """A JSON number of an assessment as a float (``None``, an undefined statistic, as NaN)."""
    return math.nan if value is None else float(value)


def _embedding(run: MonitorRunInfo) -> dict[str, Any]:
    found = run.summary.get("embedding")
    return found if isinstance(found, dict) else {}


def runs_frame(runs: list[MonitorRunInfo]) -> pd.DataFrame:
    """One row per monitoring run, as given (the registry lists them newest first)."""
    return pd.DataFrame(
        [
            {
                "run": run.id,
                "checked": run.created_at,
                "task": run.task,
                "model": run.model,
                "policy": f"{run.policy}@v{run.policy_version}",
                "window start": run.window_start,
                "window end": run.window_end,
                "window n": run.n_window,
                "reference n": run.n_reference,
                "status": run.status,
                "embedding p": _number(_embedding(run).get("p_value")),
                "MMD²": _number(_embedding(run).get("statistic")),
                "embedding breach": bool(_embedding(run).get("breach")),
                "reasons": "\n".join(run.reasons),
                "report": run.report_uri or "",
            }
            for run in runs
        ],
        columns=list(RUN_COLUMNS),
    )


def alarms_frame(runs: list[MonitorRunInfo]) -> pd.DataFrame:
    """The breaches among ``runs``, newest first, each with every reason and its report."""
    frame = runs_frame([run for run in runs if run.status == "breach"])
    frame = frame.sort_values("run", ascending=False, ignore_index=True)
    return frame[list(ALARM_COLUMNS)]


def _group_rows(run: MonitorRunInfo) -> list[dict[str, Any]]:
    """Per feature group of one run (in the assessment's order): its tests, smallest adjusted p, breaches."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for test in run.summary.get("features") or []:
        groups.setdefault(str(test["group"]), []).append(test)
    rows = []
    for group, tests in groups.items():
        tested = [t for t in tests if t.get("skipped_reason") is None and t.get("p_adjusted") is not None]
        smallest = min(tested, key=lambda t: float(t["p_adjusted"]), default=None)
        breached = [str(t["feature"]) for t in tests if t.get("breach")]
        rows.append(
            {
                "run": run.id,
                "window end": run.window_end,
                "task": run.task,
                "model": run.model,
                "status": run.status,
                "group": group,
                "tests": len(tested),
                "skipped": len(tests) - len(tested),
                "min p adjusted": math.nan if smallest is None else float(smallest["p_adjusted"]),
                "most drifted": "" if smallest is None else str(smallest["feature"]),
                "breached features": ", ".join(breached),
                "breach": bool(breached),
            }
        )
    return rows


def drift_frame(runs: list[MonitorRunInfo]) -> pd.DataFrame:
    """One row per monitoring run and feature group (``all``, ``site=X``, ``device=Y``): the smallest
    Bonferroni-adjusted KS p-value of the group's features and the features that breached. A run that
    tested nothing (``insufficient``) has no row."""
    return pd.DataFrame([row for run in runs for row in _group_rows(run)], columns=list(DRIFT_COLUMNS))


def pvalue_series(drift: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """What the drift chart draws: per run, each feature group's smallest adjusted p-value and the
    embedding test's p-value (series :data:`EMBEDDING_SERIES`), with whether it breached."""
    groups = drift.rename(columns={"group": "series", "min p adjusted": "p"})
    embedding = runs.rename(columns={"embedding p": "p", "embedding breach": "breach"}).assign(
        series=EMBEDDING_SERIES
    )
    columns = ["run", "window end", "task", "model", "series", "p", "breach"]
    frame = pd.concat([groups[columns], embedding[columns]], ignore_index=True)
    return frame.dropna(subset=["p"]).reset_index(drop=True)


def feature_tests_frame(run: MonitorRunInfo) -> pd.DataFrame:
    """Every feature test of one run: feature, group, the reference it was compared with, sizes, KS D,
    p-values, breach, and why a test was skipped."""
    return pd.DataFrame(
        [
            {
                "feature": t["feature"],
                "group": t["group"],
                "reference": t.get("reference", ""),
                "window n": t.get("n_window"),
                "reference n": t.get("n_reference"),
                "KS D": _number(t.get("statistic")),
                "p": _number(t.get("p_value")),
                "p adjusted": _number(t.get("p_adjusted")),
                "breach": bool(t.get("breach")),
                "skipped": t.get("skipped_reason") or "",
            }
            for t in run.summary.get("features") or []
        ]
    )


def rates_frame(run: MonitorRunInfo) -> pd.DataFrame:
    """The predicted-positive rate of each label of one run, reference against window."""
    return pd.DataFrame(
        [
            {
                "label": r["label"],
                "reference rate": _number(r.get("reference_rate")),
                "window rate": _number(r.get("window_rate")),
                "p adjusted": _number(r.get("p_adjusted")),
                "breach": bool(r.get("breach")),
            }
            for r in run.summary.get("rates") or []
        ]
    )


def _agreement_rows(report: ShadowReportInfo) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "n": row.get("n"),
            "agreement": _number(row.get("agreement")),
            "kappa": _number(row.get("kappa")),
            "flips to positive": row.get("flips_to_positive"),
            "flips to negative": row.get("flips_to_negative"),
            "flip rate": _number(row.get("flip_rate")),
        }
        for label, row in report.agreement.items()
    ]


def shadow_frame(reports: list[ShadowReportInfo]) -> pd.DataFrame:
    """One row per shadow report: candidate against production, on what, verdict, and its worst label
    (lowest kappa, highest flip rate; NaN when undefined)."""
    rows = []
    for report in reports:
        labels = pd.DataFrame(_agreement_rows(report), columns=["kappa", "flip rate"])
        rows.append(
            {
                "report": report.id,
                "at": report.created_at,
                "task": report.task,
                "candidate": report.candidate,
                "production": report.production or "(none)",
                "source": report.source,
                "records": report.n_records,
                "passed": report.passed,
                "lowest kappa": labels["kappa"].min(),
                "highest flip rate": labels["flip rate"].max(),
                "reasons": "\n".join(report.reasons),
                "report file": report.report_uri or "",
            }
        )
    return pd.DataFrame(rows)


def agreement_frame(report: ShadowReportInfo) -> pd.DataFrame:
    """One row per label of a shadow report: agreement, Cohen's kappa, flips each way, flip rate."""
    return pd.DataFrame(_agreement_rows(report), columns=list(AGREEMENT_COLUMNS))


@dataclass(frozen=True)
class LogVolume:
    """Prediction-log entries per day (UTC), model and source in a window, and the parts that could not
    be read (``path``, ``reason``): skipped and reported, never fatal."""

    volume: pd.DataFrame
    skipped: pd.DataFrame

    @property
    def total(self) -> int:
        return int(self.volume["n"].sum())


def log_volume(
    log: PredictionLog, *, since: datetime, until: datetime | None = None, task: str | None = None
) -> LogVolume:
    """Entries of ``task`` (all when None) with ``since <= time < until`` counted per day, model, source."""
    window = log.read(since=since, until=until, task=task)
    skipped = pd.DataFrame(
        [{"path": part.path, "reason": part.reason} for part in window.skipped], columns=["path", "reason"]
    )
    return LogVolume(volume(window.frame), skipped)


def local_file(uri: str | None) -> Path | None:
    """The file a report URI names when it is on this machine (``file://`` or a plain path), else None."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    path = Path(url2pathname(parsed.path)) if parsed.scheme == "file" else Path(uri)
    return path if path.is_file() else None
