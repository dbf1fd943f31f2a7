"""The evaluate stage: task model → test split (+ external cohorts, + production comparison) → metrics with
patient-level CIs → gate verdict → HTML report and model card → registry; and re-gating (``ecgops gate``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.evaluation.compute import (
    METRICS,
    BootstrapSettings,
    CohortReport,
    Comparison,
    EvaluationReport,
    Predictions,
    compare,
    evaluate_cohort,
)
from components.evaluation.errors import EvaluationError
from components.evaluation.gates import (
    GateOutcome,
    GatePolicy,
    RegistryFacts,
    ValidationFact,
    decide,
    load_policy,
)
from components.evaluation.model_card import CardContext
from components.evaluation.params import EvaluateParams
from components.evaluation.predict import Cohort, predictions, score, select_cohort
from components.evaluation.report import ReportFiles, report_dir_for, write_report
from components.models.task_model import TaskModel, load_task_model
from components.registry import LineageNode, MetricInfo, ModelInfo, Registry
from components.tasks.labels import records_digest
from components.tasks.spec import TaskSpec, load_task, task_from_dict
from components.validation.review import validation_exclusions
from components.workspace import Workspace

COHORT_MAX = 100  # registry column width


@dataclass
class EvaluationResult:
    """What an evaluation produced and decided."""

    model_ref: str
    task: str
    verdict: str
    policy: str
    reasons: list[str]
    split: str
    n_records: int
    macro_auroc: dict[str, float | None]
    external: dict[str, dict[str, float | None]]
    comparison: dict[str, Any] | None
    report_dir: Path
    report_html: Path
    model_card_md: Path
    model_card_html: Path
    evaluation_json: Path
    registry_run_id: int | None
    metrics_recorded: int
    elapsed_s: float
    images: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("report_dir", "report_html", "model_card_md", "model_card_html", "evaluation_json"):
            data[key] = str(data[key])
        return data


def _spec_of(model: TaskModel) -> TaskSpec:
    """The task definition the model was trained with (stored in its artifact), else the current file."""
    stored = model.cfg.meta.get("task_spec")
    return task_from_dict(stored) if stored else load_task(model.cfg.task)


def lineage_lines(node: LineageNode, depth: int = 0) -> list[str]:
    """A lineage tree as indented ``kind: label`` lines."""
    lines = [f"{'    ' * depth}{node.kind}: {node.label}"]
    for child in node.children:
        lines += lineage_lines(child, depth + 1)
    return lines


def _facts(registry: Registry, info: ModelInfo) -> RegistryFacts:
    production = registry.model_at_stage(str(info.task), "production")
    validation = None
    if info.validation_run_id is not None:
        run = registry.validation_run(info.validation_run_id)
        validation = ValidationFact(run.id, run.dataset_version_md5, run.verdict)
    return RegistryFacts(
        training_validation=validation,
        dataset_version=info.dataset_version_md5,
        production=production.ref if production else None,
        is_production=production is not None and production.id == info.id,
    )


def _policy_for(spec: TaskSpec, params: EvaluateParams, override: str | None) -> GatePolicy:
    return load_policy(override or params.gate_policies.get(spec.name) or spec.gate_policy)


def _cohort_name(text: str) -> str:
    return text[:COHORT_MAX]


def registry_metrics(report: EvaluationReport) -> list[MetricInfo]:
    """Every finite number of an evaluation as registry metrics (split, cohort, name, value, CI, n)."""
    out: list[MetricInfo] = []

    def add(split: str, cohort: str, name: str, est: Any, n: int) -> None:
        value = est.value if hasattr(est, "value") else float(est)
        if not math.isfinite(value):
            return
        low, high = getattr(est, "ci_low", None), getattr(est, "ci_high", None)
        out.append(MetricInfo(split, _cohort_name(cohort), name, float(value), low, high, n))

    for cohort in [report.test, *report.external]:
        n = cohort.n_records
        for m in METRICS:
            add(cohort.split, "all", f"macro_{m}", cohort.macro[m], n)
        for j, label in enumerate(report.labels):
            for m in (*METRICS, "prevalence"):
                add(cohort.split, "all", f"{m}_{label}", cohort.per_label[label][m], n)
            if cohort is report.test:
                add(cohort.split, "all", f"threshold_{label}", report.thresholds[j], n)
        for s in cohort.subgroups:
            group = f"{s.attribute}={s.group}"
            add(cohort.split, group, "macro_auroc", s.macro_auroc, s.n_records)
            for label, value in s.auroc.items():
                add(cohort.split, group, f"auroc_{label}", value, s.n_records)
    if report.comparison is not None:
        c = report.comparison
        vs = f"vs={c.production}"
        add(report.test.split, vs, "macro_auroc_difference", c.difference, c.n_records)
        add(report.test.split, vs, "candidate_macro_auroc", c.candidate_macro_auroc, c.n_records)
        add(report.test.split, vs, "production_macro_auroc", c.production_macro_auroc, c.n_records)
        for label, est in c.per_label_difference.items():
            add(report.test.split, vs, f"auroc_difference_{label}", est, c.n_records)
    return out


def _same(a: MetricInfo, b: MetricInfo) -> bool:
    def close(x: float | None, y: float | None) -> bool:
        return (x is None and y is None) or (x is not None and y is not None and abs(x - y) <= 1e-9)

    return close(a.value, b.value) and close(a.ci_low, b.ci_low) and close(a.ci_high, b.ci_high)


def _new_metrics(registry: Registry, model: str, metrics: list[MetricInfo]) -> tuple[list[MetricInfo], bool]:
    """The metrics not yet recorded, and whether any recorded one differs (then the whole evaluation is
    recorded under run-qualified split names, so nothing recorded before is contradicted or lost)."""
    existing = {(m.split, m.cohort, m.name): m for m in registry.metrics(model)}
    conflict = any(
        (m.split, m.cohort, m.name) in existing and not _same(existing[(m.split, m.cohort, m.name)], m)
        for m in metrics
    )
    if conflict:
        return metrics, True
    return [m for m in metrics if (m.split, m.cohort, m.name) not in existing], False


def _qualify(report: EvaluationReport, run_id: int) -> None:
    for cohort in [report.test, *report.external]:
        cohort.split = f"{cohort.split}@run-{run_id}"


def _external_cohort(
    job: _Job, name: str, model: TaskModel, spec: TaskSpec
) -> tuple[CohortReport, Predictions]:
    params = job.params
    store = job.workspace.store(name)
    excluded = validation_exclusions(job.workspace, name)
    cohort = select_cohort(store, spec, split=None, excluded_ids=excluded)
    if len(cohort.rows) == 0:
        raise EvaluationError(
            f"external cohort {name}: no record is usable for task {spec.name} (left out: {cohort.excluded})"
        )
    pred = predictions(cohort, score(model, cohort, job.workspace.params.windows), params.age_bands)
    report = evaluate_cohort(
        pred,
        name=name,
        split=f"external:{name}",
        dataset=name,
        labels=list(model.cfg.labels),
        thresholds=model.cfg.thresholds or [0.5] * len(model.cfg.labels),
        settings=job.boot,
        subgroups=list(params.subgroups),
        excluded=cohort.excluded,
        n_mapped=cohort.n_mapped,
    )
    return report, pred


def _externals(external: str | Iterable[str] | None, params: EvaluateParams) -> list[str]:
    if external is None:
        return list(params.external)
    return [external] if isinstance(external, str) else list(external)


def evaluate(
    workspace: Workspace,
    model_ref: str,
    *,
    external: str | Iterable[str] | None = None,
    gate_policy: str | None = None,
    flow_run_id: str | None = None,
) -> EvaluationResult:
    """Evaluate a registered task model, decide its gate, write the report and record everything.

    The test split of the dataset the model trained on (validation's exclusions applied) is scored;
    metrics get 95 % patient-level bootstrap CIs; subgroups by sex, age band, site and device; each
    ``external`` dataset (default: ``evaluate.external``) is an external cohort; when the task has a
    production model, both are compared on the same records with a paired bootstrap. The gate policy
    (``gate_policy``, else ``evaluate.gate_policies``, else the task's ``gate:``) decides; metrics, the
    verdict and its reasons go to the registry, the report to ``<artifact store>/reports/<model ref>/``;
    ``flow_run_id`` (a Prefect flow run) is recorded on the registry run.
    """
    started = time.perf_counter()
    externals = _externals(external, workspace.params.evaluate)
    with workspace.registry() as registry:
        info = registry.model(model_ref)
        if info.kind != "task" or info.task is None:
            raise EvaluationError(f"{info.ref} is a {info.kind} model; evaluate a task model")
        path = registry.verify_artifact(info.ref)
        facts = _facts(registry, info)
        production_path = (
            registry.verify_artifact(facts.production)
            if facts.production is not None and not facts.is_production
            else None
        )
        job = _Job(
            workspace=workspace,
            info=info,
            path=path,
            production_path=production_path,
            facts=facts,
            lineage=lineage_lines(registry.lineage_up(model=info.ref)),
            report_dir=report_dir_for(workspace.settings.resolved_artifact_store, info.ref),
            externals=externals,
            gate_policy=gate_policy,
            started=started,
        )
        with registry.run(
            "evaluate", parameters=job.run_parameters(), prefect_flow_run_id=flow_run_id
        ) as run_id:
            return _evaluate(registry, job, run_id)


@dataclass(frozen=True)
class _Job:
    """One evaluation of one task model: what the registry said of it, and how to evaluate it (the
    workspace's ``evaluate:`` parameters)."""

    workspace: Workspace
    info: ModelInfo
    path: Path
    production_path: Path | None
    facts: RegistryFacts
    lineage: list[str]
    report_dir: Path
    externals: list[str]
    gate_policy: str | None
    started: float

    @property
    def params(self) -> EvaluateParams:
        return self.workspace.params.evaluate

    @property
    def boot(self) -> BootstrapSettings:
        p = self.params
        return BootstrapSettings(p.bootstrap_rounds, p.ci_level, p.seed, p.calibration_bins)

    def run_parameters(self) -> dict[str, Any]:
        """What the registry run of this evaluation records."""
        return {
            "model": self.info.ref,
            "external": self.externals,
            "bootstrap_rounds": self.boot.rounds,
            "ci_level": self.boot.level,
            "seed": self.boot.seed,
            "report_dir": str(self.report_dir),
            "production": self.facts.production,
        }


def _evaluate(registry: Registry, job: _Job, run_id: int) -> EvaluationResult:
    """Evaluate, decide the gate, write the report, record metrics and verdict under ``run_id``."""
    model = load_task_model(job.path)
    spec = _spec_of(model)
    policy = _policy_for(spec, job.params, job.gate_policy)
    dataset = str(model.cfg.meta.get("dataset") or job.workspace.default_dataset)
    report, pred, external_preds = _report(job, model, spec, dataset)
    new, conflict = _new_metrics(registry, job.info.ref, registry_metrics(report))
    if conflict:
        _qualify(report, run_id)
        new = registry_metrics(report)
    outcome = decide(policy, report, job.facts)
    ctx = CardContext(
        model=job.info.ref,
        created_at=job.info.created_at.isoformat(timespec="seconds"),
        created_by=job.info.created_by,
        artifact_uri=job.info.artifact_uri,
        sha256=job.info.sha256,
        stage=job.info.stage,
        config=model.cfg,
        spec=spec,
        report=report,
        outcome=outcome,
        policy=policy,
        dataset=dataset,
        dataset_version=job.info.dataset_version_md5,
        validation=job.facts.training_validation,
        lineage=job.lineage,
    )
    files = write_report(ctx, pred, external_preds, job.report_dir)
    with registry.atomic():
        if new:
            registry.record_metrics(job.info.ref, new, run_id=run_id)
        registry.record_gate_decision(
            job.info.ref,
            policy=outcome.policy,
            verdict=outcome.verdict,
            reasons=outcome.reasons,
            run_id=run_id,
        )
    return _result(job, report, outcome, files, run_id=run_id, recorded=len(new))


def _report(
    job: _Job, model: TaskModel, spec: TaskSpec, dataset: str
) -> tuple[EvaluationReport, Predictions, dict[str, Predictions]]:
    """The evaluation report (test split, external cohorts, comparison with production) and the
    predictions behind it."""
    labels = list(model.cfg.labels)
    thresholds = [float(t) for t in model.cfg.decision_thresholds]
    store = job.workspace.store(dataset)
    excluded = validation_exclusions(job.workspace, dataset)
    cohort = select_cohort(store, spec, split="test", excluded_ids=excluded)
    if len(cohort.rows) == 0:
        raise EvaluationError(
            f"{job.info.ref}: no usable test record in data/{dataset} (left out: {cohort.excluded})"
        )
    pred = predictions(cohort, score(model, cohort, job.workspace.params.windows), job.params.age_bands)
    digest = records_digest(pred.record_ids)
    split = "test" if model.cfg.meta.get("test_records_sha256") in (None, digest) else f"test@{digest[:8]}"
    test = evaluate_cohort(
        pred,
        name="test",
        split=split,
        dataset=dataset,
        labels=labels,
        thresholds=thresholds,
        settings=job.boot,
        subgroups=list(job.params.subgroups),
        excluded=cohort.excluded,
    )
    comparison, note = _comparison(job, pred, cohort, labels)
    external_reports, external_preds = [], {}
    for name in job.externals:
        ext_report, ext_pred = _external_cohort(job, name, model, spec)
        external_reports.append(ext_report)
        external_preds[name] = ext_pred
    report = EvaluationReport(
        model=job.info.ref,
        task=spec.name,
        labels=labels,
        thresholds=thresholds,
        test=test,
        external=external_reports,
        comparison=comparison,
        settings=asdict(job.boot)
        | {"age_bands": job.params.age_bands, "subgroups": list(job.params.subgroups)},
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        comparison_note=note,
    )
    return report, pred, external_preds


def _comparison(
    job: _Job, pred: Predictions, cohort: Cohort, labels: list[str]
) -> tuple[Comparison | None, str]:
    """The paired comparison with the production model on the same records, or why there is none."""
    if job.production_path is None or job.facts.production is None:
        return None, ""
    production = load_task_model(job.production_path)
    if list(production.cfg.labels) != labels:
        return None, f"the production model predicts {list(production.cfg.labels)}, this one {labels}"
    proba = score(production, cohort, job.workspace.params.windows)
    return compare(pred, proba, production=job.facts.production, labels=labels, settings=job.boot), ""


def _result(
    job: _Job,
    report: EvaluationReport,
    outcome: GateOutcome,
    files: ReportFiles,
    *,
    run_id: int,
    recorded: int,
) -> EvaluationResult:
    return EvaluationResult(
        model_ref=job.info.ref,
        task=report.task,
        verdict=outcome.verdict,
        policy=outcome.policy,
        reasons=outcome.reasons,
        split=report.test.split,
        n_records=report.test.n_records,
        macro_auroc=report.test.macro["auroc"].to_dict(),
        external={c.name: c.macro["auroc"].to_dict() for c in report.external},
        comparison=report.comparison.to_dict() if report.comparison else None,
        report_dir=files.directory,
        report_html=files.index,
        model_card_md=files.model_card_md,
        model_card_html=files.model_card_html,
        evaluation_json=files.evaluation_json,
        registry_run_id=run_id,
        metrics_recorded=recorded,
        elapsed_s=round(time.perf_counter() - job.started, 2),
        images=[p.name for p in files.images],
    )


@dataclass
class GateResult:
    """A gate decided again from a model's latest evaluation."""

    model_ref: str
    policy: str
    verdict: str
    reasons: list[str]
    evaluation_json: Path
    registry_run_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"evaluation_json": str(self.evaluation_json)}


def gate(
    workspace: Workspace, model_ref: str, *, policy: str | None = None, flow_run_id: str | None = None
) -> GateResult:
    """Decide a model's gate again from its latest evaluation (``evaluation.json``) and the registry as it is
    now — e.g. after a new policy version, or when production changed — and record the decision."""
    params = workspace.params.evaluate
    with workspace.registry() as registry:
        info = registry.model(model_ref)
        if info.kind != "task":
            raise EvaluationError(f"{info.ref} is a {info.kind} model; only task models have gates")
        evaluation_json = (
            report_dir_for(workspace.settings.resolved_artifact_store, info.ref) / "evaluation.json"
        )
        if not evaluation_json.is_file():
            raise EvaluationError(
                f"{info.ref} has no evaluation at {evaluation_json}; run `ecgops evaluate` first"
            )
        report = EvaluationReport.from_dict(json.loads(evaluation_json.read_text())["evaluation"])
        model = load_task_model(registry.verify_artifact(info.ref))
        chosen = _policy_for(_spec_of(model), params, policy)
        outcome = decide(chosen, report, _facts(registry, info))
        parameters = {"model": info.ref, "policy": chosen.ref, "report_dir": str(evaluation_json.parent)}
        with registry.run("gate", parameters=parameters, prefect_flow_run_id=flow_run_id) as run_id:
            registry.record_gate_decision(
                info.ref,
                policy=outcome.policy,
                verdict=outcome.verdict,
                reasons=outcome.reasons,
                run_id=run_id,
            )
    return GateResult(info.ref, outcome.policy, outcome.verdict, outcome.reasons, evaluation_json, run_id)
