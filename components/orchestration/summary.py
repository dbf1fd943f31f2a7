"""The record of a retraining run: what each stage did (or reused), as Prefect artifacts — a markdown
summary, tables of counts and metrics, links to the validation report, evaluation reports and Bentos."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.orchestration.outcomes import EvaluationOutcome, FoundationOutcome, RetrainOutcome
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.evaluation.stage import EvaluationResult
    from components.io.ingest import IngestSummary

INGEST_COUNTS = ("seen", "ingested", "duplicates", "quarantined", "rows_without_signals")


def _uri(path: str | Path | None) -> str | None:
    if not path:
        return None
    return str(path) if "://" in str(path) else Path(path).resolve().as_uri()


def ingest_counts(summary: IngestSummary) -> dict[str, int]:
    """The record counts of an ingest, as the run's tables show them."""
    return {name: getattr(summary, name) for name in INGEST_COUNTS}


def metric_rows(model_ref: str | None, metrics: dict[str, Any], split: str = "test") -> list[dict[str, Any]]:
    """Table rows ``model, split, metric, value`` (finite values, rounded)."""
    return [
        {"model": model_ref, "split": split, "metric": name, "value": round(float(value), 4)}
        for name, value in sorted(metrics.items())
        if isinstance(value, int | float) and math.isfinite(float(value))
    ]


def foundation_from_registry(workspace: Workspace, ref: str) -> FoundationOutcome:
    """A reused foundation model, with its registered test metrics."""
    with workspace.registry() as registry:
        info = registry.model(ref)
        metrics = {m.name: m.value for m in registry.metrics(ref) if m.split == "test" and m.cohort == "all"}
    return FoundationOutcome(
        model_ref=info.ref,
        model_dir=info.artifact_uri,
        dataset=str(info.dataset),
        dataset_version=info.dataset_version_md5,
        registry_run_id=info.run_id,
        metrics=metrics,
    )


def not_promoted(evaluation: EvaluationOutcome) -> str:
    """Why a task model stayed a candidate."""
    gate = evaluation.gate
    if gate is None:
        return f"{evaluation.model_ref} stays a candidate: no gate decision"
    return f"{evaluation.model_ref} stays a candidate: gate {gate.verdict} ({gate.failed_checks()})"


def counts_rows(outcome: RetrainOutcome) -> list[dict[str, Any]]:
    """The run's record counts, one row per stage."""
    validation = outcome.validation
    return [
        {"stage": "ingest", **ingest_counts(outcome.ingest.summary)},
        {
            "stage": "validate",
            "records": validation.n_records,
            "quarantined": validation.n_quarantined,
            "rejected": validation.n_rejected,
            "accepted": validation.n_accepted,
            "verdict": validation.verdict,
        },
    ]


def run_metric_rows(outcome: RetrainOutcome) -> list[dict[str, Any]]:
    """Foundation (test) and task-model (evaluation) metrics of the run."""
    rows = metric_rows(outcome.foundation.model_ref, outcome.foundation.metrics)
    for task in outcome.tasks.values():
        rows += metric_rows(task.finetune.model_ref, headline_metrics(task.evaluation.result))
    return rows


def headline_metrics(evaluation: EvaluationResult) -> dict[str, float]:
    """The test macro AUROC of an evaluation with its confidence interval, and external cohorts' values."""
    out: dict[str, float] = {}
    cohorts = {"test": evaluation.macro_auroc or {}} | {
        f"external:{name}": estimate for name, estimate in (evaluation.external or {}).items()
    }
    for cohort, estimate in cohorts.items():
        prefix = "macro_auroc" if cohort == "test" else f"{cohort} macro_auroc"
        for part, suffix in (("value", ""), ("ci_low", " ci_low"), ("ci_high", " ci_high")):
            value = estimate.get(part)
            if value is not None:
                out[prefix + suffix] = float(value)
    return out


def summary_markdown(outcome: RetrainOutcome) -> str:
    """The run's markdown summary."""
    ingest, validation, foundation = outcome.ingest.summary, outcome.validation, outcome.foundation
    reused = ", ".join(stage for stage, hit in outcome.cached.items() if hit) or "nothing"
    decision = foundation.decision
    lines = [
        "# ecgops retrain",
        f"- drop: `{ingest.drop}` ({ingest.format})",
        f"- records: drop unchanged since ingest `{ingest.ingest_id}`, nothing new"
        if outcome.cached["ingest"]
        else f"- records: {ingest.seen} seen, {ingest.ingested} new, "
        f"{ingest.duplicates} duplicates, {ingest.quarantined} quarantined at ingest",
        f"- validation: **{validation.verdict}** — {validation.n_quarantined} quarantined, "
        f"{validation.n_accepted} accepted by stewards; [steward summary]({_uri(validation.summary_html)})",
        f"- dataset version: `{outcome.version.md5}` (DVC remote `{outcome.version.version.remote}`)",
        f"- foundation model: `{foundation.model_ref}` — "
        + (f"{decision.action} ({decision.reason})" if decision else "(no decision recorded)"),
    ]
    for name, task in outcome.tasks.items():
        lines.append(f"- task **{name}**: `{task.finetune.model_ref}`")
        evaluation, gate = task.evaluation.result, task.evaluation.gate
        reasons = (
            "all checks met" if task.evaluation.passed else (gate.failed_checks() if gate else "no gate")
        )
        lines.append(
            f"  - gate **{gate.verdict if gate else None}** ({gate.policy if gate else None}): {reasons}"
        )
        lines.append(f"  - [evaluation report]({_uri(evaluation.report_html)})")
        if task.package:
            bento = task.package.result
            lines.append(f"  - Bento `{bento.tag}`: [{bento.uri}]({_uri(bento.uri)})")
        lines.append(f"  - stage: {task.promotion}")
    lines += [f"- reused from earlier runs: {reused}", f"- registry: `{outcome.registry}`"]
    return "\n".join(lines) + "\n"


def publish(outcome: RetrainOutcome) -> None:
    """Create the run's Prefect artifacts (call inside the retrain flow)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key="retrain-summary", markdown=summary_markdown(outcome), description="What this retraining run did"
    )
    create_table_artifact(key="retrain-counts", table=counts_rows(outcome), description="Records per stage")
    create_table_artifact(key="retrain-metrics", table=run_metric_rows(outcome), description="Model metrics")
    links: list[tuple[str, str | Path, str]] = [
        ("retrain-validation-report", outcome.validation.summary_html, "steward summary")
    ]
    for name, task in outcome.tasks.items():
        slug = name.lower().replace("_", "-")
        links.append(
            (
                f"retrain-evaluation-report-{slug}",
                task.evaluation.result.report_html,
                f"evaluation report {name}",
            )
        )
        if task.package:
            bento = task.package.result
            links.append((f"retrain-bento-{slug}", bento.uri, f"Bento {bento.tag}"))
    for key, target, text in links:
        create_link_artifact(key=key, link=str(_uri(target)), link_text=text)
