"""Production traffic for dashboard workspaces, from real records: a prediction log (with one corrupt part),
two monitoring runs (ok, then breach) and a shadow report.

The dashboards' task models are linear probes that no inference stage can load, so the traffic is scored
by a model of the same kind built here: a linear probe on the standardised monitored signal-quality
features of the store's training split (those standardised inputs are its embedding). Day one logs the
held-out records (validation and test splits) as batch predictions; day two logs them again as served
requests, every other one from a new site, ``site-B``, with baseline wander planted. Each day is assessed
by the real statistics (``components.monitoring.drift.assess``, the default policy, the training split as
the reference), its report written by ``write_report`` and recorded as a monitoring run. A second probe
(half the training labels) is compared with the first on day one (``label_agreement``, the gate's
``shadow_verdict``) and recorded as a shadow report. A part of garbage bytes lies in day two's partition.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from components.evaluation.gates import ShadowPolicy, shadow_verdict
from components.io.store import DatasetStore
from components.metrics.agreement import label_agreement
from components.monitoring.drift import DriftInputs, assess
from components.monitoring.policy import load_policy
from components.monitoring.report import write_report
from components.monitoring.stage import monitor_run_record
from components.predictions.entry import PredictionEntry
from components.quality.defects import baseline_wander
from components.quality.monitored import MONITORED_FEATURES, monitored_features
from components.registry import MonitorRunInfo, ShadowReportInfo, ShadowReportRecord
from components.training.probe import linear_probe
from components.training.reports import SUPERCLASSES, superdiagnostic_targets
from components.validation import load_policy as validation_policy
from components.workspace import Workspace

TASK = "superdiagnostic"
NEW_SITE = "site-B"
SHADOW_POLICY = ShadowPolicy(min_records=50, min_kappa=0.2)
CORRUPT = b"not parquet: a part cut off by a full disk " * 20


@dataclass(frozen=True)
class Traffic:
    """What :func:`add_traffic` logged and recorded."""

    ok_run: MonitorRunInfo
    breach_run: MonitorRunInfo
    shadow: ShadowReportInfo
    n_logged: int
    corrupt_part: Path


@dataclass(frozen=True)
class _Window:
    """Records as the log and the assessment see them: monitored features with site and device, the
    probe's embedding and probabilities, and each input's content hash."""

    features: pd.DataFrame
    embedding: np.ndarray
    proba: np.ndarray
    hashes: list[str]

    @property
    def decisions(self) -> np.ndarray:
        return np.asarray(self.proba >= 0.5)


def _features(store: DatasetStore, rows: np.ndarray, signals: np.ndarray) -> pd.DataFrame:
    values = monitored_features(
        signals,
        store.lead_masks()[rows],
        store.manifest["n_valid_samples"].to_numpy()[rows],
        float(store.info.fs),
        validation_policy().features,
    )
    meta = store.manifest.iloc[rows]
    return pd.DataFrame(values).assign(
        site=meta["site"].fillna("").astype(str).to_numpy(),
        device=meta["device"].fillna("").astype(str).to_numpy(),
    )


def _planted(store: DatasetStore, rows: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
    """Day two: the records of ``rows`` with baseline wander in every other one, which comes from
    :data:`NEW_SITE`; their features and content hashes (a planted input is another input)."""
    signals = store.read(rows)
    rng = np.random.default_rng(0)
    hashes = store.manifest["content_hash"].to_numpy()[rows].astype(str).tolist()
    for i in range(0, len(rows), 2):
        signals[i], _ = baseline_wander(signals[i], {"lead_mask": [True] * 12}, float(store.info.fs), rng)
        hashes[i] = hashlib.sha256(signals[i].tobytes()).hexdigest()
    features = _features(store, rows, signals)
    features.loc[::2, "site"] = NEW_SITE
    return features, hashes


def _windows(store: DatasetStore) -> tuple[_Window, _Window, _Window, np.ndarray]:
    """The reference (training split), day one and day two as the production probe scores them, and
    the candidate probe's probabilities on day one."""
    split = store.manifest["split"].to_numpy()
    train, held_out = np.flatnonzero(split == "train"), np.flatnonzero(split != "train")
    hashes = store.manifest["content_hash"].astype(str).to_numpy()
    day_two, day_two_hashes = _planted(store, held_out)
    frames = [
        _features(store, train, store.read(train)),
        _features(store, held_out, store.read(held_out)),
        day_two,
    ]
    x = [f[list(MONITORED_FEATURES)].to_numpy(np.float64) for f in frames]
    mean, std = np.nanmean(x[0], axis=0), np.nanstd(x[0], axis=0) + 1e-6
    embeddings = [np.nan_to_num((v - mean) / std) for v in x]
    y = superdiagnostic_targets(store.manifest.iloc[train])

    def probe(rows: np.ndarray, scored: np.ndarray) -> np.ndarray:
        fit = linear_probe((embeddings[0][rows], y[rows]), (embeddings[0], y), scored, weight_decays=(1e-2,))
        return np.asarray(1.0 / (1.0 + np.exp(-fit.test_scores)))

    proba = probe(np.arange(len(train)), np.concatenate(embeddings))
    bounds = np.cumsum([0] + [len(f) for f in frames])
    windows = [
        _Window(frames[k], embeddings[k], proba[bounds[k] : bounds[k + 1]], h)
        for k, h in enumerate([list(hashes[train]), list(hashes[held_out]), day_two_hashes])
    ]
    candidate = probe(np.arange(0, len(train), 2), embeddings[1])
    return windows[0], windows[1], windows[2], candidate


@dataclass(frozen=True)
class _Logged:
    """Who answered: the production model, its data version, the leads it reads."""

    model_ref: str
    dataset_version: str
    leads: list[str]


def _entries(window: _Window, start: datetime, source: str, by: _Logged) -> list[PredictionEntry]:
    """One log entry per record of ``window``, a minute apart from ``start``."""
    quality = window.features[list(MONITORED_FEATURES)].to_dict("records")
    return [
        PredictionEntry(
            time=start + timedelta(minutes=i),
            request_id=f"{source}-{start:%Y%m%d}-{i}",
            source=source,  # type: ignore[arg-type]
            task=TASK,
            model_ref=by.model_ref,
            dataset_version=by.dataset_version,
            input_hash=window.hashes[i],
            site=window.features["site"].iloc[i] or None,
            device=window.features["device"].iloc[i] or None,
            leads_used=by.leads,
            quality={k: float(v) for k, v in quality[i].items()},
            labels=list(SUPERCLASSES),
            probabilities=window.proba[i].tolist(),
            decisions=window.decisions[i].tolist(),
            embedding=window.embedding[i].tolist(),
        )
        for i in range(len(window.hashes))
    ]


def _monitor_run(
    ws: Workspace, production: str, reference: _Window, window: _Window, bounds: tuple[datetime, datetime]
) -> MonitorRunInfo:
    """Assess ``window`` against ``reference`` as ``ecgops monitor`` does; write the report; record it."""
    policy = load_policy("default")
    inputs = DriftInputs(
        reference_features=reference.features,
        window_features=window.features,
        reference_embedding=reference.embedding,
        window_embedding=window.embedding,
        reference_rates=reference.decisions.mean(axis=0),
        n_reference_decisions=len(reference.hashes),
        window_decisions=window.decisions,
        labels=list(SUPERCLASSES),
    )
    assessment = assess(inputs, policy)
    report = write_report(
        assessment,
        ws.state_dir / "monitoring" / TASK / f"{bounds[1]:%Y%m%dT%H%M%SZ}",
        title=f"{TASK}: {production}, {bounds[0]:%Y-%m-%d %H:%M} – {bounds[1]:%Y-%m-%d %H:%M} UTC",
        reference=inputs.reference_features,
        window=inputs.window_features,
        reference_embedding=inputs.reference_embedding,
        window_embedding=inputs.window_embedding,
    )
    record = monitor_run_record(production, policy, assessment, bounds, report)
    with ws.registry() as registry:
        return registry.record_monitor_run(record)


def _shadow(
    ws: Workspace,
    pair: tuple[str, str],
    decisions: tuple[np.ndarray, np.ndarray],
    bounds: tuple[datetime, datetime],
) -> ShadowReportInfo:
    """The candidate's decisions beside production's on the same records, judged and recorded."""
    agreement = label_agreement(decisions[0], decisions[1], list(SUPERCLASSES))
    passed, reasons = shadow_verdict(SHADOW_POLICY, len(decisions[0]), agreement)
    out = ws.state_dir / "shadow" / TASK / f"{bounds[1]:%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    record = ShadowReportRecord(
        candidate=pair[1],
        production=pair[0],
        source=f"log:{bounds[0]:%Y-%m-%dT%H:%M}..{bounds[1]:%Y-%m-%dT%H:%M}",
        n_records=len(decisions[0]),
        agreement={a.label: a.to_dict() for a in agreement},
        passed=passed,
        reasons=tuple(reasons),
        report_uri=(out / "shadow.json").resolve().as_uri(),
    )
    (out / "shadow.json").write_text(json.dumps(asdict(record), indent=2))
    with ws.registry() as registry:
        return registry.record_shadow_report(record)


def add_traffic(
    ws: Workspace, store: DatasetStore, *, production: str, candidate: str, now: datetime
) -> Traffic:
    """Log two days of traffic before ``now`` (plus a corrupt part), monitor each day and shadow
    ``candidate`` beside ``production`` on day one; see the module docstring."""
    reference, day_one, day_two, candidate_proba = _windows(store)
    with ws.registry() as registry:
        md5 = registry.model(production).dataset_version_md5 or ""
    by = _Logged(production, md5, list(store.info.leads))
    days = [(now - timedelta(days=2), now - timedelta(days=1)), (now - timedelta(days=1), now)]
    log = ws.prediction_log()
    log.append(_entries(day_one, days[0][0], "batch", by))
    written = log.append(_entries(day_two, days[1][0], "served", by))
    corrupt = Path(written[0]).parent / "part-corrupt.parquet"
    corrupt.write_bytes(CORRUPT)
    return Traffic(
        ok_run=_monitor_run(ws, production, reference, day_one, days[0]),
        breach_run=_monitor_run(ws, production, reference, day_two, days[1]),
        shadow=_shadow(ws, (production, candidate), (day_one.decisions, candidate_proba >= 0.5), days[0]),
        n_logged=len(day_one.hashes) + len(day_two.hashes),
        corrupt_part=corrupt,
    )
