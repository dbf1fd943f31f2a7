"""Data quality: validation runs per dataset version, expectation outcomes and their trend, the quarantine.

Validation runs come from the registry; the full outcome of each run (every expectation with its
unexpected count) is the run's own ``result.json``, found next to the report the registry points at.
The quarantine is :func:`components.validation.list_quarantined` (what ``ecgops review list`` shows);
12-lead plots are validation's cached PNGs, drawn on demand with the same plotter when missing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from components.dashboard.pagination import PageWindow, window
from components.io.store import DatasetStore, StoreError
from components.registry import ValidationRunInfo
from components.validation import ReviewError, latest_run_dir, list_quarantined
from components.validation.plots import EcgPlotter
from components.workspace import Workspace

STATUSES = ("quarantined", "accepted", "rejected")
SEVERITY_ORDER = {"block": 0, "quarantine": 1, "warn": 2}


def short_md5(md5: str) -> str:
    """The first 12 hex digits of a DVC md5 (``.dir`` suffix dropped), as the CLI prints them."""
    return md5.removesuffix(".dir")[:12]


def local_path(uri: str) -> Path | None:
    """The local path of a ``file://`` URI or a plain path; None for remote URIs (``s3://``...)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("", "local") or len(parsed.scheme) == 1:  # a Windows drive letter parses as a scheme
        return Path(uri)
    return None


def run_directory(run: ValidationRunInfo) -> Path | None:
    """The validation run's output directory (the parent of the report the registry recorded)."""
    report = local_path(run.report_uri)
    return None if report is None else report.parent


def load_result(run: ValidationRunInfo) -> dict[str, Any] | None:
    """The run's ``result.json``, or None when it is not on this machine."""
    directory = run_directory(run)
    path = directory / "result.json" if directory is not None else None
    if path is None or not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def runs_frame(runs: list[ValidationRunInfo]) -> pd.DataFrame:
    """One row per validation run: version, verdict, counts, failed expectations by severity, report."""
    rows = []
    for r in runs:
        stats = r.statistics
        failed = stats.get("failed", {})
        rows.append(
            {
                "run": r.id,
                "validated at": r.created_at,
                "dataset": r.dataset,
                "version": short_md5(r.dataset_version_md5),
                "policy": r.policy_version,
                "verdict": r.verdict,
                "records": stats.get("n_records"),
                "quarantined": stats.get("n_quarantined"),
                "rejected": stats.get("n_rejected"),
                "accepted": stats.get("n_accepted"),
                "failed (block)": ", ".join(failed.get("block", [])),
                "failed (quarantine)": ", ".join(failed.get("quarantine", [])),
                "failed (warn)": ", ".join(failed.get("warn", [])),
                "report": r.report_uri,
            }
        )
    return pd.DataFrame(rows)


def outcomes_frame(runs: list[ValidationRunInfo]) -> tuple[pd.DataFrame, list[int]]:
    """Every expectation outcome of the given runs (long form) and the ids of runs without a local result.

    Columns: run, validated at, version, expectation, suite, severity, description, passed, unexpected,
    checked, unexpected %. For a run whose ``result.json`` is not on this machine only the failures the
    registry recorded are known; those runs are listed separately and left out of the table.
    """
    rows: list[dict[str, Any]] = []
    missing: list[int] = []
    for r in runs:
        result = load_result(r)
        if result is None:
            missing.append(r.id)
            continue
        for e in result.get("expectations", []):
            unexpected, checked = e.get("unexpected_count"), e.get("element_count")
            rows.append(
                {
                    "run": r.id,
                    "validated at": r.created_at,
                    "version": short_md5(r.dataset_version_md5),
                    "expectation": e["id"],
                    "suite": e.get("suite"),
                    "severity": e.get("severity"),
                    "description": e.get("description"),
                    "passed": bool(e.get("success")),
                    "unexpected": unexpected,
                    "checked": checked,
                    "unexpected %": 100.0 * unexpected / checked
                    if unexpected is not None and checked
                    else None,
                }
            )
    return pd.DataFrame(rows), missing


def trend_matrix(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Expectations (rows, blocking ones first) by run (columns, oldest first): ``pass`` / ``FAIL (n)``."""
    if outcomes.empty:
        return pd.DataFrame()

    def cell(row: pd.Series) -> str:
        if row["passed"]:
            return "pass"
        return "FAIL" if pd.isna(row["unexpected"]) else f"FAIL ({int(row['unexpected']):,})"

    frame = outcomes.assign(
        cell=outcomes.apply(cell, axis=1), column=outcomes["run"].map(lambda r: f"run {r}")
    )
    order = frame.drop_duplicates("expectation").assign(rank=lambda f: f["severity"].map(SEVERITY_ORDER))
    expectations = order.sort_values(["rank", "expectation"])["expectation"].tolist()
    columns = [f"run {r}" for r in sorted(outcomes["run"].unique())]
    matrix = frame.pivot_table(index="expectation", columns="column", values="cell", aggfunc="first")
    matrix = matrix.reindex(index=expectations, columns=columns)
    severity = order.set_index("expectation")["severity"]
    matrix.insert(0, "severity", severity.reindex(matrix.index))
    return matrix


@dataclass(frozen=True)
class QuarantineListing:
    """The latest quarantine list of a dataset (optionally of one status) and the count per status."""

    table: pd.DataFrame
    counts: dict[str, int]
    run_name: str

    def only(self, status: str | None) -> QuarantineListing:
        """The records of one status (all for None); counts stay those of the whole list."""
        if status is None:
            return self
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        table = self.table[self.table["status"] == status].reset_index(drop=True)
        return QuarantineListing(table=table, counts=self.counts, run_name=self.run_name)

    def page(self, page: int, size: int) -> tuple[pd.DataFrame, PageWindow]:
        """One page of the list and its window."""
        win = window(len(self.table), page, size)
        return win.slice(self.table), win


def latest_run_name(workspace: Workspace, dataset: str) -> str | None:
    """The newest validation run of ``dataset`` on this machine (None before the first)."""
    try:
        return latest_run_dir(workspace, dataset).name
    except ReviewError:
        return None


def quarantine_listing(
    workspace: Workspace, dataset: str, status: str | None = None
) -> QuarantineListing | None:
    """What ``ecgops review list`` shows for ``dataset`` (None when it was never validated)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    run_name = latest_run_name(workspace, dataset)
    if run_name is None:
        return None
    table = list_quarantined(workspace, dataset)
    counts = {s: int((table["status"] == s).sum()) for s in STATUSES}
    for column in ("decision_note", "reviewer", "decided_at"):
        table[column] = table[column].fillna("")
    return QuarantineListing(table=table, counts=counts, run_name=run_name).only(status)


def reasons_frame(reasons_json: str) -> pd.DataFrame:
    """A quarantined record's reasons (as validation wrote them) as a table."""
    rows = [
        {
            "expectation": r.get("expectation"),
            "why": r.get("description"),
            "feature": r.get("column"),
            "value": r.get("value"),
            "lead": r.get("lead"),
            "limits": ", ".join(f"{k} {v}" for k, v in (r.get("limits") or {}).items()),
        }
        for r in json.loads(reasons_json)
    ]
    return pd.DataFrame(rows)


_PLOT_LOCK = threading.Lock()


#: the manifest columns a plot needs (the rest, report text above all, is not read)
PLOT_COLUMNS = ["record_id", "source_record", "lead_mask", "shard", "shard_index"]


@lru_cache(maxsize=2)
def _plot_store(root: Path, manifest_mtime_ns: int) -> DatasetStore:
    """The store at ``root`` with only the manifest columns a plot needs (as of the manifest's mtime)."""
    return DatasetStore.open(root, manifest_columns=PLOT_COLUMNS)


@lru_cache(maxsize=4)
def _plotter(duration_s: float) -> EcgPlotter:
    """One plotter per record duration (drawing its paper grid is the expensive part of a plot).

    Streamlit closes every pyplot figure after each script run, so the plotter's figure is taken out of
    pyplot and given its own Agg canvas: it then lives as long as the process.
    """
    plotter = EcgPlotter(duration_s)
    plt.close(plotter.fig)
    FigureCanvasAgg(plotter.fig)
    return plotter


def record_plot(workspace: Workspace, dataset: str, record_id: str, reasons_json: str = "[]") -> Path:
    """The 12-lead PNG of a record: validation's cached plot, else drawn now (and cached) from the store.

    Raises :class:`LookupError` when the record is not in the checked-out store (another data version).
    """
    path = workspace.validation_dir(dataset) / "plots" / f"{record_id}.png"
    if path.is_file():
        return path
    root = workspace.settings.data_dir / dataset
    manifest = root / "manifest.parquet"
    if not manifest.is_file():
        raise LookupError(f"no canonical store at {root} (run `ecgops ingest` first)")
    try:
        store = _plot_store(root, manifest.stat().st_mtime_ns)
    except StoreError as exc:
        raise LookupError(str(exc)) from exc
    positions = np.flatnonzero(store.manifest["record_id"].astype(str).to_numpy() == record_id)
    if len(positions) == 0:
        raise LookupError(
            f"record {record_id} is not in the checked-out store of {dataset!r} "
            "(`ecgops data checkout VERSION` restores the version it came from)"
        )
    position = int(positions[0])
    flagged = [r["lead"] for r in json.loads(reasons_json) if r.get("lead")]
    with _PLOT_LOCK:  # one figure per plotter, shared by the app's sessions
        _plotter(store.info.duration_s).draw(
            store.read([position])[0],
            float(store.info.fs),
            [bool(v) for v in store.manifest["lead_mask"].iloc[position]],
            path,
            title=f"{record_id}  {store.manifest['source_record'].iloc[position]!s}",
            flagged_leads=flagged,
        )
    return path
