"""The model card: intended use, training data and version, label definitions, metrics with CIs, subgroup
summary, gate decision, known limitations and lineage — written as Markdown and as HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from components.evaluation.compute import EvaluationReport
from components.evaluation.gates import GateOutcome, GatePolicy, ValidationFact
from components.models.task_model import TaskModelConfig
from components.tasks.spec import TaskSpec
from components.tasks.vocab import describe

Block = str | list[str] | tuple[list[str], list[list[str]]]  # paragraph | bullets | (header, rows)


@dataclass
class CardContext:
    """Everything the card states, gathered by the evaluation stage."""

    model: str
    created_at: str
    created_by: str
    artifact_uri: str
    sha256: str
    stage: str | None
    config: TaskModelConfig
    spec: TaskSpec
    report: EvaluationReport
    outcome: GateOutcome
    policy: GatePolicy
    dataset: str
    dataset_version: str | None
    validation: ValidationFact | None
    lineage: list[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    blocks: list[Block]


def _label_rows(spec: TaskSpec) -> list[list[str]]:
    rows = []
    for label, codes in zip(spec.labels, spec.label_codes(), strict=True):
        selectors = []
        if label.diagnostic_class:
            selectors.append("diagnostic class " + ", ".join(label.diagnostic_class))
        if label.diagnostic_subclass:
            selectors.append("diagnostic subclass " + ", ".join(label.diagnostic_subclass))
        explicit = sorted(c for c in codes if ":" not in c)
        shown = ", ".join(f"{c} ({describe(spec.label_system, c)})" for c in explicit[:12])
        if len(explicit) > 12:
            shown += f", … ({len(explicit)} codes)"
        rows.append([label.name, label.description, "; ".join(selectors) or "codes", shown])
    return rows


def derived_limitations(ctx: CardContext) -> list[str]:
    """Limitations that follow from this evaluation's numbers, in addition to the task's own."""
    report, test, meta = ctx.report, ctx.report.test, ctx.config.meta
    out = []
    if test.n_records < 500:
        out.append(
            f"The test set holds only {test.n_records} records ({test.n_patients} patients); "
            "confidence intervals are wide."
        )
    few = [f"{lab} ({n})" for lab, n in test.positives.items() if n < 20]
    if few:
        out.append(f"Few positive test records for {', '.join(few)}: these labels' metrics are uncertain.")
    if not report.external:
        out.append("Not evaluated on an external cohort: performance at other sites and devices is unknown.")
    for cohort in report.external:
        if cohort.n_mapped:
            out.append(
                f"External cohort {cohort.name}: labels of {cohort.n_mapped} records were translated to "
                f"{ctx.spec.label_system} with the {ctx.spec.mapping} mapping (some pairs are approximate)."
            )
    fraction = float(meta.get("label_fraction", 1.0))
    if fraction < 1.0:
        out.append(
            f"Trained with {fraction:.0%} of the training patients' labels (label-efficiency setting)."
        )
    for label, note in (meta.get("threshold_notes") or {}).items():
        out.append(f"Decision threshold of {label} defaulted to 0.5: {note}.")
    if ctx.policy.subgroups is not None:
        small = [
            f"{s.attribute}={s.group} ({s.n_records})"
            for s in test.subgroups
            if s.n_records < ctx.policy.subgroups.min_records
        ]
        if small:
            out.append(
                f"Subgroups under {ctx.policy.subgroups.min_records} records were reported but not gated: "
                + ", ".join(small[:12])
                + (" …" if len(small) > 12 else "")
                + "."
            )
    return out


def _recipe(meta: dict[str, Any]) -> str:
    """The foundation's pretraining recipe and the sha256 of its resolved configuration, when known."""
    if not meta.get("foundation_recipe"):
        return ""
    return (
        f" (pretraining recipe {meta['foundation_recipe']}, config sha256 {meta['foundation_config_sha256']})"
    )


def sections(ctx: CardContext) -> list[Section]:
    """The card's content, renderer-independent."""
    cfg, spec, report, test = ctx.config, ctx.spec, ctx.report, ctx.report.test
    meta: dict[str, Any] = cfg.meta
    details = [
        f"Model: {ctx.model} (task {cfg.task} v{meta.get('task_version', '?')}), "
        f"stage: {ctx.stage or 'unknown'}",
        f"Training mode: {cfg.mode}; foundation model: "
        f"{meta.get('foundation') or 'none (trained from scratch)'}{_recipe(meta)}",
        f"Input: {', '.join(cfg.leads)} at {cfg.fs} Hz, {cfg.n_samples / cfg.fs:g} s "
        f"(records must carry {', '.join(cfg.needed_leads)})",
        f"Encoder: {cfg.ecg.arch} (width {cfg.ecg.width}, depth {cfg.ecg.depth}); linear multi-label head",
        f"Artifact: {ctx.artifact_uri} (sha256 {ctx.sha256[:16]}…); "
        f"created {ctx.created_at} by {ctx.created_by}",
    ]
    validation = (
        f"validation run {ctx.validation.validation_run_id}: {ctx.validation.verdict}"
        if ctx.validation
        else "no validation run recorded"
    )
    data = [
        f"Dataset: {ctx.dataset}, version {ctx.dataset_version or 'not versioned'} ({validation})",
        f"Training: {meta.get('train_records', '?')} records of {meta.get('train_patients', '?')} patients "
        f"(label fraction {float(meta.get('label_fraction', 1.0)):g}); "
        f"validation: {meta.get('val_records', '?')} records (checkpoint selection and decision thresholds)",
        f"Test: {test.n_records} records of {test.n_patients} patients; patient-level splits",
        f"Positive rule: likelihood ≥ {spec.positive_rule.min_likelihood:g}; "
        f"records without any of the labels: {spec.positive_rule.unlabelled}",
        f"Decision thresholds ({meta.get('threshold_rule', 'n/a')} on validation): "
        + ", ".join(f"{lab} {t:.3f}" for lab, t in zip(report.labels, report.thresholds, strict=True)),
    ]
    metric_rows = [
        [
            lab,
            str(test.positives[lab]),
            test.per_label[lab]["auroc"].text(),
            test.per_label[lab]["pr_auc"].text(),
            test.per_label[lab]["sensitivity"].text(),
            test.per_label[lab]["specificity"].text(),
            test.per_label[lab]["f1"].text(),
        ]
        for lab in report.labels
    ]
    metric_rows.append(
        [
            "macro",
            "",
            *(test.macro[m].text() for m in ("auroc", "pr_auc", "sensitivity", "specificity", "f1")),
        ]
    )
    metrics: list[Block] = [
        f"Test split, {test.n_records} records; 95 % patient-level bootstrap CIs "
        f"({report.settings.get('rounds', '?')} resamples).",
        (["label", "positives", "AUROC", "PR-AUC", "sensitivity", "specificity", "F1"], metric_rows),
    ]
    for cohort in report.external:
        metrics.append(
            f"External cohort {cohort.name} ({cohort.n_records} records): "
            f"macro AUROC {cohort.macro['auroc'].text()}"
        )
    if report.comparison is not None:
        c = report.comparison
        metrics.append(f"Against production {c.production}: macro AUROC difference {c.difference.text()}")
    groups = sorted(test.subgroups, key=lambda s: s.macro_auroc.value if s.macro_auroc.defined else 2.0)
    subgroup_rows = [
        [f"{s.attribute}={s.group}", str(s.n_records), s.macro_auroc.text()]
        for s in groups
        if s.macro_auroc.defined
    ]
    gate: list[Block] = [f"Policy {ctx.outcome.policy}: {ctx.outcome.verdict.upper()}", ctx.outcome.reasons]
    return [
        Section("Model details", [details]),
        Section("Intended use", [spec.intended_use or "Not stated by the task definition."]),
        Section("Training data", [data]),
        Section(
            "Label definitions",
            [(["label", "meaning", "defined by", f"{spec.label_system} codes"], _label_rows(spec))],
        ),
        Section("Metrics", metrics),
        Section(
            "Subgroups",
            [
                "Macro AUROC per subgroup, lowest first.",
                (["subgroup", "records", "macro AUROC (95 % CI)"], subgroup_rows),
            ],
        ),
        Section("Gate decision", gate),
        Section("Known limitations", [list(spec.limitations) + derived_limitations(ctx)]),
        Section("Lineage", [ctx.lineage or ["(not recorded)"]]),
    ]


def to_markdown(ctx: CardContext) -> str:
    out = [f"# Model card: {ctx.model}", "", f"_{ctx.spec.title}_", ""]
    for section in sections(ctx):
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                out += [block, ""]
            elif isinstance(block, list):
                out += [f"- {item}" for item in block] + [""]
            else:
                header, rows = block
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
                out.append("")
    return "\n".join(out)


def html_sections(ctx: CardContext) -> str:
    """The card's sections as an HTML fragment (embedded in the evaluation report)."""
    out = []
    for section in sections(ctx):
        out.append(f"<h3>{escape(section.title)}</h3>")
        for block in section.blocks:
            if isinstance(block, str):
                out.append(f"<p>{escape(block)}</p>")
            elif isinstance(block, list):
                out.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block) + "</ul>")
            else:
                header, rows = block
                head = "".join(f"<th>{escape(h)}</th>" for h in header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
                )
                out.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n".join(out)


def to_html(ctx: CardContext, css: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model card {escape(ctx.model)}</title>"
        f"<style>{css}</style></head><body><h1>Model card: {escape(ctx.model)}</h1>"
        f"<p><i>{escape(ctx.spec.title)}</i></p>{html_sections(ctx)}</body></html>\n"
    )
