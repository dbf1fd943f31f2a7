"""The report and the gauges of real assessments: files written, figures referenced, gauges parseable."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.monitoring.drift import DriftAssessment, DriftInputs, assess
from components.monitoring.gauges import write_gauges
from components.monitoring.policy import load_policy
from components.monitoring.report import write_report
from components.quality.defects import mains_hum
from tests.monitoring.conftest import SUPERCLASSES, Records, features_of, planted, spectral_embedding


@pytest.fixture(scope="module")
def breach(split: tuple[Records, Records]) -> tuple[DriftAssessment, DriftInputs]:
    """A window with mains hum planted into 40 % of its records (seeded), assessed by the default policy."""
    reference, window = split
    rows = np.random.default_rng(5).choice(
        len(window.signals), round(0.4 * len(window.signals)), replace=False
    )
    noisy = planted(window, mains_hum, rows, seed=6)
    inputs = DriftInputs(
        reference_features=features_of(reference),
        window_features=features_of(noisy),
        reference_embedding=spectral_embedding(reference.signals),
        window_embedding=spectral_embedding(noisy.signals),
        reference_rates=reference.table[SUPERCLASSES].to_numpy(bool).mean(axis=0),
        n_reference_decisions=len(reference.signals),
        window_decisions=noisy.table[SUPERCLASSES].to_numpy(bool),
        labels=SUPERCLASSES,
    )
    return assess(inputs, load_policy("default")), inputs


def _report(assessment: DriftAssessment, inputs: DriftInputs, out: Path, title: str) -> Path:
    return write_report(
        assessment,
        out,
        title=title,
        reference=inputs.reference_features,
        window=inputs.window_features,
        reference_embedding=inputs.reference_embedding,
        window_embedding=inputs.window_embedding,
    )


def test_the_report_shows_the_breach_with_its_figures(
    breach: tuple[DriftAssessment, DriftInputs], tmp_path: Path
) -> None:
    assessment, inputs = breach
    assert assessment.status == "breach"
    page = _report(assessment, inputs, tmp_path / "report", "Drift of <ptbxl-superdiagnostic>")
    html = page.read_text()
    assert page.name == "report.html"
    assert "Drift of &lt;ptbxl-superdiagnostic&gt;" in html and "<ptbxl-superdiagnostic>" not in html
    assert "Drift: BREACH" in html and "powerline_ratio_max" in html
    images = re.findall(r"<img src='([^']+)'", html)
    assert set(images) == {"features.png", "feature_groups.png", "embedding.png", "positive_rates.png"}
    for name in images:
        assert (page.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count("<tr class='breach'>") == sum(t.breach for t in assessment.features) + int(
        assessment.embedding is not None and assessment.embedding.breach
    ) + sum(r.breach for r in assessment.rates)


def _samples(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_the_gauges_carry_every_test(breach: tuple[DriftAssessment, DriftInputs], tmp_path: Path) -> None:
    assessment, _ = breach
    path = write_gauges(assessment, tmp_path / "drift.prom", task="ptbxl-superdiagnostic", model_ref="m@3")
    samples = _samples(path)
    assert samples["ecgops_drift_status"] == [({"task": "ptbxl-superdiagnostic", "model": "m@3"}, 1.0)]
    assert samples["ecgops_drift_window_samples"][0][1] == assessment.n_window
    tested = [t for t in assessment.features if t.skipped_reason is None]
    p_values = {(s["check"], s["feature"], s["group"]): v for s, v in samples["ecgops_drift_p_value"]}
    assert len(p_values) == len(tested) + 1 + len(SUPERCLASSES)
    hum = next(t for t in tested if t.feature == "powerline_ratio_max" and t.group == "all")
    assert p_values[("features", "powerline_ratio_max", "all")] == pytest.approx(hum.p_value)
    breaches = {(s["check"], s["feature"], s["group"]) for s, v in samples["ecgops_drift_breach"] if v == 1}
    assert ("features", "powerline_ratio_max", "all") in breaches


def test_an_insufficient_window_is_reported_as_undecided(
    breach: tuple[DriftAssessment, DriftInputs], tmp_path: Path
) -> None:
    _, inputs = breach
    few = DriftInputs(
        inputs.reference_features,
        inputs.window_features.iloc[:30],
        inputs.reference_embedding,
        inputs.window_embedding[:30],
        inputs.reference_rates,
        inputs.n_reference_decisions,
        inputs.window_decisions[:30],
        inputs.labels,
    )
    assessment = assess(few, load_policy("default"))
    html = _report(assessment, few, tmp_path / "few", "Drift").read_text()
    assert "Drift: INSUFFICIENT" in html and "the window has 30 samples" in html and "<img" not in html
    samples = _samples(write_gauges(assessment, tmp_path / "few.prom", task="t", model_ref="m@1"))
    assert samples["ecgops_drift_status"][0][1] == -1.0
    assert "ecgops_drift_p_value" not in samples
