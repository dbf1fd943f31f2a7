"""The validate stage: features → GX suites → quarantine (with steward decisions) → reports → verdict.

Run outputs go to ``<state_dir>/validation/<dataset>/<run_name>/`` (``result.json``, ``summary.html``,
``features.parquet``, ``lead_features.parquet``, ``quarantine.parquet``); 12-lead plots are cached per
record in ``<state_dir>/validation/<dataset>/plots/`` (record ids are content hashes, so a plot never
goes stale). Nothing in the dataset store is modified.

The signal features can be extracted in shards elsewhere (a :class:`~components.io.sharding.Sharding`,
e.g. one that runs each shard as a Prefect task on the run's Dask cluster): each shard is a range of records
that the worker reads from the memory-mapped store itself (:func:`range_features`); no signals travel.
The tables come back in order and everything after them (GX suites, quarantine, reports) runs here once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from components.io.sharding import Sharding
from components.io.store import DatasetStore
from components.quality import FeatureTables, SignalFeatureParams, extract_features
from components.quality.features import combine, record_ranges, signal_tables
from components.validation.gx_runner import ExpectationOutcome, data_docs_index, open_context, run_suite
from components.validation.plots import EcgPlotter
from components.validation.policy import Policy, load_policy
from components.validation.quarantine import first_positions, quarantine_table, record_reasons
from components.validation.report import write_summary
from components.validation.result import ValidationResult, Verdict
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.io.versioning import DataVersion
    from components.registry import Registry


#: a shard of feature extraction: the store's directory, a ``[start, stop)`` row range, the parameters
RangeJob: TypeAlias = tuple[str, int, int, SignalFeatureParams]
SignalParts: TypeAlias = tuple[pd.DataFrame, pd.DataFrame]


def content_fingerprint(manifest: pd.DataFrame) -> str:
    """Identity of a dataset's content: md5 over its sorted record content hashes."""
    digest = hashlib.md5(usedforsecurity=False)
    for h in sorted(manifest["content_hash"].astype(str)):
        digest.update(h.encode())
    return digest.hexdigest()


def dataset_stats(store: DatasetStore, features: pd.DataFrame, n_excluded: int) -> dict[str, Any]:
    """The one-row table of the dataset suite."""
    n = len(store.manifest)
    rejected_at_ingest = len(store.quarantine)
    conflicts = store.manifest.groupby("patient_key")["split"].nunique()
    return {
        "n_records": n,
        "n_ingest_rejected": rejected_at_ingest,
        "unreadable_frac": rejected_at_ingest / max(1, n + rejected_at_ingest),
        "n_patients": int(store.manifest["patient_key"].nunique()),
        "n_patients_split_conflict": int((conflicts > 1).sum()),
        "n_duplicate_content": int(features["duplicate_content"].sum()),
        "duplicate_frac": float(features["duplicate_content"].mean()) if n else 0.0,
        "n_excluded": n_excluded,
        "quarantine_frac": n_excluded / n if n else 0.0,
        "fs": store.info.fs,
        "n_samples": store.info.n_samples,
    }


def _verdict(outcomes: list[ExpectationOutcome]) -> Verdict:
    failed = [e for e in outcomes if not e.success]
    if any(e.severity == "block" for e in failed):
        return "fail"
    return "warn" if failed else "pass"


def previous_run(root: Path, before: str, fingerprint: str) -> dict[str, Any] | None:
    """The latest earlier run of this dataset on different content (the previous dataset version)."""
    if not root.is_dir():
        return None
    for run_dir in sorted((p for p in root.iterdir() if p.is_dir() and p.name < before), reverse=True):
        result_file = run_dir / "result.json"
        if not result_file.is_file():
            continue
        data: dict[str, Any] = json.loads(result_file.read_text())
        if data.get("content_fingerprint") != fingerprint:
            return data
    return None


def _trend(outcomes: list[ExpectationOutcome], previous: dict[str, Any]) -> list[dict[str, Any]]:
    before = {e["id"]: e for e in previous.get("expectations", [])}
    out = []
    for e in outcomes:
        p = before.get(e.id)
        if p is None or p.get("unexpected_count") is None or e.unexpected_count is None:
            continue
        prev_frac = p["unexpected_count"] / p["element_count"] if p.get("element_count") else 0.0
        now_frac = e.unexpected_count / e.element_count if e.element_count else 0.0
        change = (
            "same" if abs(now_frac - prev_frac) < 1e-12 else ("worse" if now_frac > prev_frac else "better")
        )
        out.append(
            {
                "id": e.id,
                "previous_unexpected": p["unexpected_count"],
                "previous_fraction_pct": 100 * prev_frac,
                "fraction_pct": 100 * now_frac,
                "change": change,
            }
        )
    return out


def _plots(store: DatasetStore, quarantine: pd.DataFrame, plot_dir: Path) -> dict[str, Path]:
    """A cached 12-lead PNG per quarantined record (drawn only when missing)."""
    paths = {rid: plot_dir / f"{rid}.png" for rid in quarantine["record_id"].astype(str)}
    missing = [rid for rid, p in paths.items() if not p.is_file()]
    if not missing:
        return paths
    manifest = store.manifest.reset_index(drop=True)
    first_row = first_positions(manifest["record_id"])
    positions = np.asarray([first_row[rid] for rid in missing], dtype=np.int64)
    reasons = quarantine.set_index("record_id")["reasons"]
    masks = store.lead_masks()
    plotter = EcgPlotter(store.info.duration_s)
    try:
        for start in range(0, len(missing), 256):
            chunk = positions[start : start + 256]
            signals = store.read(chunk)
            for k, pos in enumerate(chunk):
                rid = missing[start + k]
                flagged = [r["lead"] for r in json.loads(str(reasons[rid])) if r.get("lead")]
                plotter.draw(
                    signals[k],
                    float(store.info.fs),
                    masks[pos],
                    paths[rid],
                    title=f"{rid}  {manifest.at[pos, 'source_record']!s}",
                    flagged_leads=flagged,
                )
    finally:
        plotter.close()
    return paths


_opened = threading.local()


def range_features(job: RangeJob) -> SignalParts:
    """A shard's work, wherever it runs: the signal feature tables of a range of the store's records.

    The worker opens the store itself (memory-mapped; kept open while the manifest is unchanged, so
    its shards of one run share it)."""
    root, start, stop, params = job
    manifest = Path(root) / "manifest.parquet"
    key = (root, manifest.stat().st_mtime_ns if manifest.is_file() else 0)
    store: DatasetStore | None = getattr(_opened, "store", None)
    if store is None or getattr(_opened, "key", None) != key:
        _opened.store = store = DatasetStore.open(Path(root))
        _opened.key = key
    if stop > len(store):
        raise ValueError(f"{root}: rows {start}:{stop} of a store of {len(store)} records")
    return signal_tables(store, params, start, stop)


def store_features(
    store: DatasetStore, policy: Policy, sharding: Sharding[RangeJob, SignalParts] | None = None
) -> FeatureTables:
    """The feature tables of ``store``: here, or in shards of about ``sharding.records`` records run by
    ``sharding.map`` (identical tables either way)."""
    if sharding is None or len(store) == 0:
        return extract_features(store, policy.features, policy.vocabulary_codes)
    root = str(store.root.resolve())
    ranges = record_ranges(len(store), sharding.records, policy.features.batch_records)
    jobs = [(root, start, stop, policy.features) for start, stop in ranges]
    return combine(store.manifest, sharding.map(range_features, jobs), policy.vocabulary_codes)


@dataclass(frozen=True)
class ValidateOptions:
    """How a validation runs: ``policy_path``: the policy (default: ``schemas/validation``); ``plots``:
    draw the 12-lead plots of quarantined records; ``sharding``: extract the signal features in shards
    elsewhere (see the module docstring)."""

    policy_path: Path | None = None
    plots: bool = True
    sharding: Sharding[RangeJob, SignalParts] | None = None


def validate(
    workspace: Workspace,
    dataset: str | None = None,
    *,
    dataset_version_md5: str | None = None,
    options: ValidateOptions = ValidateOptions(),
) -> ValidationResult:
    """Validate ``data/<dataset>`` of the workspace against the policy and write the reports.

    Steward decisions from the registry are applied (an ``accept`` lifts a quarantine). When
    ``dataset_version_md5`` names a registered dataset version, the run is recorded in the registry.
    ``result.exit_code`` is 1 when a block-severity expectation failed.
    """
    started = time.perf_counter()
    dataset = workspace.dataset(dataset)
    policy: Policy = load_policy(options.policy_path)
    store = workspace.store(dataset)
    run_name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    root = workspace.validation_dir(dataset)
    (root / run_name).mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    tables = store_features(store, policy, options.sharding)
    timings["features"] = time.perf_counter() - t

    suite = _SuiteRun(workspace.state_dir, policy, dataset, run_name)
    checked = _checks(workspace, suite, store, tables.records)
    timings["gx"] = suite.seconds
    result = _result(suite, store, checked, root, dataset_version_md5)

    plots = root / "plots" if options.plots else None
    timings |= _write_reports(result, store, tables, checked.quarantine, plots)
    if dataset_version_md5:
        with workspace.registry() as registry:
            record_validation(result, dataset_version_md5, registry)
    timings["total"] = time.perf_counter() - started
    result.timings_s = {k: round(v, 3) for k, v in timings.items()}
    result.write_json()
    return result


class _SuiteRun:
    """Runs one suite of the policy over a table, as part of one validation run; ``seconds``: the time
    GX took so far (opening its context included)."""

    def __init__(self, state_dir: Path, policy: Policy, dataset: str, run_name: str) -> None:
        started = time.perf_counter()
        self.context = open_context(state_dir)
        self.policy, self.dataset, self.run_name = policy, dataset, run_name
        self.seconds = time.perf_counter() - started

    def __call__(
        self, name: str, table: pd.DataFrame, id_column: str | None = None
    ) -> list[ExpectationOutcome]:
        started = time.perf_counter()
        outcomes = run_suite(
            self.context,
            dataset=self.dataset,
            suite_name=name,
            specs=self.policy.suite(name),
            table=table,
            policy_version=self.policy.version,
            id_column=id_column,
            run_name=self.run_name,
        )
        self.seconds += time.perf_counter() - started
        return outcomes


@dataclass(frozen=True)
class _Checked:
    """What a validation run found: the suites' outcomes, the quarantine table (steward decisions
    applied) and the dataset statistics."""

    outcomes: list[ExpectationOutcome]
    quarantine: pd.DataFrame
    stats: dict[str, Any]


def _checks(workspace: Workspace, suite: _SuiteRun, store: DatasetStore, features: pd.DataFrame) -> _Checked:
    """The manifest and records suites, the quarantine they imply, then the dataset suite."""
    outcomes = suite("manifest", store.manifest) + suite("records", features, id_column="record_id")
    with workspace.registry() as registry:
        decisions = registry.steward_decisions(suite.dataset)
    reasons = record_reasons(outcomes, features, suite.policy)
    quarantine = quarantine_table(reasons, store.manifest, decisions)
    counts = quarantine["status"].value_counts()
    n_excluded = int(counts.get("quarantined", 0)) + int(counts.get("rejected", 0))
    stats = dataset_stats(store, features, n_excluded)
    outcomes += suite("dataset", pd.DataFrame([stats]))
    return _Checked(outcomes, quarantine, stats)


def _result(
    suite: _SuiteRun, store: DatasetStore, checked: _Checked, root: Path, dataset_version_md5: str | None
) -> ValidationResult:
    """The run's result, compared with the latest run on the previous version; its reports go to
    ``root/<run_name>``."""
    fingerprint = content_fingerprint(store.manifest)
    previous = previous_run(root, suite.run_name, fingerprint)
    counts = checked.quarantine["status"].value_counts()
    report_dir = root / suite.run_name
    return ValidationResult(
        dataset=suite.dataset,
        run_name=suite.run_name,
        verdict=_verdict(checked.outcomes),
        policy_version=suite.policy.version,
        policy_fingerprint=suite.policy.fingerprint,
        content_fingerprint=fingerprint,
        n_records=len(store.manifest),
        n_quarantined=int(counts.get("quarantined", 0)),
        n_rejected=int(counts.get("rejected", 0)),
        n_accepted=int(counts.get("accepted", 0)),
        expectations=checked.outcomes,
        dataset_stats=checked.stats,
        report_dir=report_dir,
        summary_html=report_dir / "summary.html",
        data_docs_index=data_docs_index(suite.context),
        result_json=report_dir / "result.json",
        quarantine_path=report_dir / "quarantine.parquet",
        features_path=report_dir / "features.parquet",
        trend=_trend(checked.outcomes, previous) if previous else [],
        previous_run=previous["run_name"] if previous else None,
        dataset_version_md5=dataset_version_md5,
    )


def _write_reports(
    result: ValidationResult,
    store: DatasetStore,
    tables: FeatureTables,
    quarantine: pd.DataFrame,
    plots_dir: Path | None,
) -> dict[str, float]:
    """Features, lead features and quarantine as parquet, the 12-lead plots, the steward summary; the
    seconds each took."""
    t = time.perf_counter()
    tables.records.to_parquet(result.features_path, index=False)
    tables.leads.to_parquet(result.report_dir / "lead_features.parquet", index=False)
    quarantine.to_parquet(result.quarantine_path, index=False)
    plot_paths = _plots(store, quarantine, plots_dir) if plots_dir is not None else {}
    plotted = time.perf_counter()
    write_summary(result, quarantine, plot_paths)
    return {"plots": plotted - t, "report": time.perf_counter() - plotted}


def version_validated(workspace: Workspace, dataset: str, validation: ValidationResult | None) -> DataVersion:
    """Version the store with DVC and register the version; record ``validation`` (when given) against it."""
    from components.io.datasets import version_dataset

    data_version = version_dataset(workspace, dataset)
    if validation is not None:
        with workspace.registry() as registry:
            record_validation(validation, data_version.md5, registry)
    return data_version


def record_validation(result: ValidationResult, dataset_version_md5: str, registry: Registry) -> int:
    """Record a validation run against a registered dataset version (the flow versions after validating)."""
    result.validation_run_id = registry.record_validation_run(
        dataset_version_md5,
        policy_version=result.policy_version,
        verdict=result.verdict,
        report_uri=result.summary_html.as_uri(),
        statistics=_registry_statistics(result),
    )
    result.dataset_version_md5 = dataset_version_md5
    result.write_json()
    return result.validation_run_id


def _registry_statistics(result: ValidationResult) -> dict[str, Any]:
    return {
        "n_records": result.n_records,
        "n_quarantined": result.n_quarantined,
        "n_rejected": result.n_rejected,
        "n_accepted": result.n_accepted,
        "failed": {s: [e.id for e in result.failed(s)] for s in ("block", "quarantine", "warn")},
        "content_fingerprint": result.content_fingerprint,
        "policy_fingerprint": result.policy_fingerprint,
        "run_name": result.run_name,
        **{k: (v.item() if isinstance(v, np.generic) else v) for k, v in result.dataset_stats.items()},
    }
