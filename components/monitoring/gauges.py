"""An assessment as Prometheus gauges in the text format (for node_exporter's textfile collector or a
Pushgateway): the status, each test's p-value and breach, the sample counts, labelled with task and model."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from components.monitoring.drift import DriftAssessment

STATUS_VALUE = {"ok": 0, "breach": 1, "insufficient": -1}
_TEST_LABELS = ("task", "model", "check", "feature", "group")


def _tests(assessment: DriftAssessment) -> list[tuple[str, str, str, float, bool]]:
    """``(check, feature, group, p-value, breach)`` of every test run (skipped ones left out)."""
    tests = [
        ("features", t.feature, t.group, t.p_value, t.breach)
        for t in assessment.features
        if t.skipped_reason is None
    ]
    if assessment.embedding is not None:
        tests.append(("embedding", "", "all", assessment.embedding.p_value, assessment.embedding.breach))
    tests += [("positive_rate", r.label, "all", r.p_value, r.breach) for r in assessment.rates]
    return tests


def write_gauges(assessment: DriftAssessment, path: Path, *, task: str, model_ref: str) -> Path:
    """Write the assessment's gauges to ``path`` (atomically, as ``write_to_textfile`` does)."""
    registry = CollectorRegistry()
    status = Gauge(
        "ecgops_drift_status",
        "Drift assessment: 0 ok, 1 breach, -1 insufficient samples (nothing decided)",
        ("task", "model"),
        registry=registry,
    )
    samples = Gauge(
        "ecgops_drift_window_samples",
        "Prediction-log entries in the window",
        ("task", "model"),
        registry=registry,
    )
    reference = Gauge(
        "ecgops_drift_reference_samples", "Reference records compared", ("task", "model"), registry=registry
    )
    p_value = Gauge(
        "ecgops_drift_p_value", "Unadjusted p-value of one drift test", _TEST_LABELS, registry=registry
    )
    breach = Gauge(
        "ecgops_drift_breach", "1 when the test breached the policy", _TEST_LABELS, registry=registry
    )
    status.labels(task, model_ref).set(STATUS_VALUE[assessment.status])
    samples.labels(task, model_ref).set(assessment.n_window)
    reference.labels(task, model_ref).set(assessment.n_reference)
    for check, feature, group, p, breached in _tests(assessment):
        p_value.labels(task, model_ref, check, feature, group).set(p)
        breach.labels(task, model_ref, check, feature, group).set(int(breached))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path
