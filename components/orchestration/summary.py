"""The record of a retraining run: what each stage did (or reused), as Prefect artifacts — a markdown
summary, tables of counts and metrics, links to the validation report, evaluation reports and Bentos."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.workspace import Workspace

INGEST_COUNTS = ("seen", "ingested", "duplicates", "quarantined", "rows_without_signals")


def _uri(path: str | None) -> str | None:
    if not path:
        return None
    return path if "://" in path else Path(path).resolve().as_uri()


def metric_rows(model_ref: str | None, metrics: dict[str, Any], split: str = "test") -> list[dict[str, Any]]:
    """Table rows ``model, split, metric, value`` (finite values, rounded)."""
    return [
        {"model": model_ref, "split": split, "metric": name, "value": round(float(value), 4)}
        for name, value in sorted(metrics.items())
        if isinstance(value, int | float) and math.isfinite(float(value))
    ]


def foundation_from_registry(workspace: Workspace, ref: str) -> dict[str, Any]:
    """A reused foundation model, shaped like the pretrain stage's result."""
    with workspace.registry() as registry:
        info = registry.model(ref)
        metrics = {m.name: m.value for m in registry.metrics(ref) if m.split == "test" and m.cohort == "all"}
    return {
        "model_ref": info.ref,
        "model_dir": info.artifact_uri,
        "dataset": info.dataset,
        "dataset_version": info.dataset_version_md5,
        "registry_run_id": info.run_id,
        "evaluation": {"split": "test", "metrics": metrics},
    }


def gate_passed(evaluation: dict[str, Any]) -> bool:
    """True when the evaluation's gate verdict (as recorded in the registry) is ``pass``."""
    return bool(evaluation.get("gate")) and evaluation["gate"]["verdict"] == "pass"


def not_promoted(evaluation: dict[str, Any]) -> str:
    """Why a task model stayed a candidate."""
    gate = evaluation.get("gate")
    if not gate:
        return f"{evaluation['model_ref']} stays a candidate: no gate decision"
    return f"{evaluation['model_ref']} stays a candidate: gate {gate['verdict']} ({failed_checks(gate)})"


def failed_checks(gate: dict[str, Any]) -> str:
    """The reasons of a gate decision that did not pass (all of them when none is marked)."""
    reasons = [r for r in gate.get("reasons") or [] if not r.startswith("PASS")]
    return "; ".join(" ".join(r.split()) for r in reasons) or "no reasons given"


def counts_rows(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's record counts, one row per stage."""
    ingest, validation = outcome["ingest"], outcome["validation"]
    rows = [{"stage": "ingest", **{k: ingest[k] for k in INGEST_COUNTS}}]
    rows.append(
        {
            "stage": "validate",
            "records": validation["n_records"],
            "quarantined": validation["n_quarantined"],
            "rejected": validation["n_rejected"],
            "accepted": validation["n_accepted"],
            "verdict": validation["verdict"],
        }
    )
    return rows


def run_metric_rows(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """Foundation (test) and task-model (evaluation, else validation) metrics of the run."""
    foundation = outcome["foundation"]
    rows = metric_rows(foundation["model_ref"], foundation["evaluation"]["metrics"])
    for result in outcome.get("tasks", {}).values():
        evaluation = result.get("evaluation")
        if evaluation:
            rows += metric_rows(result["finetune"]["model_ref"], headline_metrics(evaluation))
        else:
            rows += metric_rows(result["finetune"]["model_ref"], result["finetune"]["val_metrics"], "val")
    return rows


def headline_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The test macro AUROC of an evaluation with its confidence interval, and external cohorts' values."""
    out: dict[str, float] = {}
    cohorts = {"test": evaluation.get("macro_auroc") or {}} | {
        f"external:{name}": estimate for name, estimate in (evaluation.get("external") or {}).items()
    }
    for cohort, estimate in cohorts.items():
        prefix = "macro_auroc" if cohort == "test" else f"{cohort} macro_auroc"
        for part, suffix in (("value", ""), ("ci_low", " ci_low"), ("ci_high", " ci_high")):
            if estimate.get(part) is not None:
                out[prefix + suffix] = float(estimate[part])
    return out


def summary_markdown(outcome: dict[str, Any]) -> str:
    """The run's markdown summary."""
    ingest, validation, version = outcome["ingest"], outcome["validation"], outcome["version"]
    foundation = outcome["foundation"]
    reused = ", ".join(stage for stage, hit in outcome["cached"].items() if hit) or "nothing"
    lines = [
        "# ecgops retrain",
        f"- drop: `{ingest['drop']}` ({ingest['format']})",
        f"- records: drop unchanged since ingest `{ingest['ingest_id']}`, nothing new"
        if outcome["cached"]["ingest"]
        else f"- records: {ingest['seen']} seen, {ingest['ingested']} new, "
        f"{ingest['duplicates']} duplicates, {ingest['quarantined']} quarantined at ingest",
        f"- validation: **{validation['verdict']}** — {validation['n_quarantined']} quarantined, "
        f"{validation['n_accepted']} accepted by stewards; "
        f"[steward summary]({_uri(validation['paths']['summary_html'])})",
        f"- dataset version: `{version['md5']}` (DVC remote `{version['remote']}`)",
        f"- foundation model: `{foundation['model_ref']}` — {foundation['decision']['action']} "
        f"({foundation['decision']['reason']})",
    ]
    for task, result in outcome.get("tasks", {}).items():
        lines.append(f"- task **{task}**: `{result['finetune']['model_ref']}`")
        evaluation = result.get("evaluation")
        if evaluation:
            gate = evaluation.get("gate") or {}
            reasons = failed_checks(gate) if gate.get("verdict") != "pass" else "all checks met"
            lines.append(f"  - gate **{gate.get('verdict')}** ({gate.get('policy')}): {reasons}")
            if evaluation.get("report_html"):
                lines.append(f"  - [evaluation report]({_uri(evaluation['report_html'])})")
        if result.get("package"):
            lines.append(
                f"  - Bento `{result['package']['tag']}`: [{result['package']['uri']}]"
                f"({_uri(result['package']['uri'])})"
            )
        if result.get("promotion"):
            lines.append(f"  - stage: {result['promotion']}")
    lines += [f"- reused from earlier runs: {reused}", f"- registry: `{outcome['registry']}`"]
    return "\n".join(lines) + "\n"


def publish(outcome: dict[str, Any]) -> None:
    """Create the run's Prefect artifacts (call inside the retrain flow)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key="retrain-summary", markdown=summary_markdown(outcome), description="What this retraining run did"
    )
    create_table_artifact(key="retrain-counts", table=counts_rows(outcome), description="Records per stage")
    create_table_artifact(key="retrain-metrics", table=run_metric_rows(outcome), description="Model metrics")
    links = [("retrain-validation-report", outcome["validation"]["paths"]["summary_html"], "steward summary")]
    for task, result in outcome.get("tasks", {}).items():
        slug = task.lower().replace("_", "-")
        evaluation = result.get("evaluation") or {}
        if evaluation.get("report_html"):
            links.append(
                (f"retrain-evaluation-report-{slug}", evaluation["report_html"], f"evaluation report {task}")
            )
        if result.get("package"):
            links.append(
                (f"retrain-bento-{slug}", result["package"]["uri"], f"Bento {result['package']['tag']}")
            )
    for key, target, text in links:
        create_link_artifact(key=key, link=str(_uri(target)), link_text=text)
