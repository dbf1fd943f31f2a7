"""Gate policies (``schemas/gates/<name>.yaml``, versioned) and the decision engine.

A policy states absolute floors (macro and per-class AUROC, on the point estimate or the lower CI bound),
a minimum test size, a calibration ceiling, non-inferiority against the production model (the paired
difference's lower CI bound must not fall below −δ), the largest allowed subgroup gap, an
external-cohort floor and the data checks (the training data version passed validation). The engine
turns a policy and an :class:`EvaluationReport` plus registry facts into a verdict with one reason per
check — failures first — which is what the registry records and promotion consults.

The ``shadow:`` section is not an evaluation check: it says whether promotion to production needs a passed
shadow report (``evaluation.release.promote``) and what a shadow report must show to pass
(:func:`shadow_verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.config import SCHEMAS_DIR, load_named_yaml, yaml_path
from components.evaluation.compute import EvaluationReport
from components.evaluation.errors import EvaluationError
from components.metrics.agreement import LabelAgreement

GATES_DIR = SCHEMAS_DIR / "gates"
Bound = Literal["point", "ci_low"]


class FloorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bound: Bound = Field(default="ci_low", description="which value must reach the floor")
    macro_auroc: float | None = Field(default=None, ge=0.0, le=1.0)
    per_class_auroc: float | dict[str, float] | None = Field(
        default=None, description="one floor for every label, or a floor per label"
    )
    undefined_class: Literal["fail", "skip"] = Field(
        default="fail", description="a label whose AUROC cannot be estimated (no positives in the test set)"
    )

    @field_validator("per_class_auroc")
    @classmethod
    def _floors_are_aurocs(cls, value: float | dict[str, float] | None) -> float | dict[str, float] | None:
        floors = value if isinstance(value, dict) else {} if value is None else {"every label": value}
        outside = {label: floor for label, floor in floors.items() if not 0.0 <= floor <= 1.0}
        if outside:
            raise ValueError(f"an AUROC floor lies between 0 and 1, got {outside}")
        return value


class CalibrationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_ece: float | None = Field(
        default=None, gt=0.0, le=1.0, description="macro expected calibration error"
    )


class NonInferiorityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float = Field(ge=0.0, le=1.0, description="δ: candidate − production macro AUROC, lower CI ≥ −δ")


class SubgroupPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: list[Literal["sex", "age", "site", "device"]] = ["sex", "age", "site", "device"]
    max_gap: float = Field(gt=0.0, le=1.0, description="largest − smallest subgroup macro AUROC")
    min_records: int = Field(default=30, ge=1, description="smaller groups are reported, not gated")


class ExternalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    macro_auroc: float = Field(ge=0.0, le=1.0, description="floor on each external cohort's macro AUROC")
    bound: Bound = "point"
    min_positives: int = Field(default=5, ge=1, description="labels with fewer positives do not count")
    required: bool = Field(default=False, description="fail when no external cohort was evaluated")


class DataPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_validation: bool = Field(default=True, description="the training data version was validated")
    allowed_verdicts: list[Literal["pass", "warn", "fail"]] = ["pass", "warn"]


class ShadowPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = Field(
        default=False,
        description="production promotion needs a passed shadow report of the candidate against the task's "
        "current production model",
    )
    min_records: int = Field(default=50, ge=1, description="records replayed through both models")
    min_kappa: float | None = Field(default=None, ge=-1.0, le=1.0, description="each label's Cohen's kappa")
    max_flip_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="each label's share of records whose decision flipped"
    )


class GatePolicy(BaseModel):
    """A versioned promotion gate for one or more tasks."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int = Field(ge=1)
    tasks: list[str] = Field(min_length=1, description="tasks this policy may gate")
    description: str = ""
    min_test_records: int = Field(default=1, ge=1)
    floors: FloorPolicy = FloorPolicy()
    calibration: CalibrationPolicy = CalibrationPolicy()
    non_inferiority: NonInferiorityPolicy | None = None
    subgroups: SubgroupPolicy | None = None
    external: ExternalPolicy | None = None
    data: DataPolicy = DataPolicy()
    shadow: ShadowPolicy | None = None

    @property
    def ref(self) -> str:
        """How the registry names the policy: ``name@vN``."""
        return f"{self.name}@v{self.version}"


def load_policy(name: str, gates_dir: Path = GATES_DIR) -> GatePolicy:
    """``schemas/gates/<name>.yaml`` (or a path to one), validated; errors name the file and key."""
    from components.tasks.errors import TaskError
    from components.tasks.spec import explain

    policy = load_named_yaml(
        name, gates_dir, GatePolicy, what="gate policy", error=TaskError, explain=explain
    )
    if (problem := _task_problem(policy)) is not None:
        raise TaskError(f"{yaml_path(name, gates_dir)}: {problem}")
    return policy


def policy_named(
    recorded: str, configured: str | None = None, gates_dir: Path = GATES_DIR
) -> GatePolicy | None:
    """The policy a gate decision names (``name@vN``, as :attr:`GatePolicy.ref` records it), as it is now:
    ``configured`` (a task's ``evaluate.gate_policies`` entry, a name or a path) when it bears that name,
    else ``<gates_dir>/<name>.yaml``; ``None`` when neither exists. The version may have moved on since
    the decision."""
    name = recorded.rpartition("@v")[0] or recorded
    for source in (configured, name):
        if source is None:
            continue
        path = yaml_path(source, gates_dir)
        if path.is_file() and (policy := load_policy(str(path), gates_dir)).name == name:
            return policy
    return None


def _task_problem(policy: GatePolicy) -> str | None:
    """What the policy names that its tasks lack (an unknown task, a floor for a label none of them has)."""
    from components.tasks.spec import load_task, task_names

    unknown = [task for task in policy.tasks if task not in task_names()]
    if unknown:
        return f"tasks: unknown task(s) {unknown}; known: {', '.join(task_names())}"
    per_class = policy.floors.per_class_auroc
    if not isinstance(per_class, dict):
        return None
    labels = {label for task in policy.tasks for label in load_task(task).label_names}
    stray = sorted(set(per_class) - labels)
    if stray:
        return f"floors.per_class_auroc: {stray} are not labels of {policy.tasks} (labels: {sorted(labels)})"
    return None


@dataclass(frozen=True)
class ValidationFact:
    """A validation run of a dataset version, as the registry has it."""

    validation_run_id: int
    dataset_version: str
    verdict: str


@dataclass(frozen=True)
class RegistryFacts:
    """What the gate needs from the registry besides the evaluation."""

    training_validation: ValidationFact | None
    dataset_version: str | None
    production: str | None  # the task's production model now
    is_production: bool = False


@dataclass(frozen=True)
class GateCheck:
    check: str
    passed: bool
    message: str

    @property
    def reason(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} ({self.check}) {self.message}"


@dataclass
class GateOutcome:
    policy: str
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        return "pass" if all(c.passed for c in self.checks) else "fail"

    @property
    def reasons(self) -> list[str]:
        """Every check as one line, failures first."""
        return [c.reason for c in sorted(self.checks, key=lambda c: c.passed)]

    def to_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "verdict": self.verdict, "reasons": self.reasons}


def _value(bound: str) -> str:
    return "point estimate" if bound == "point" else "lower 95 % CI bound"


def _floors(policy: GatePolicy, report: EvaluationReport) -> list[GateCheck]:
    floors, test, out = policy.floors, report.test, []
    if floors.macro_auroc is not None:
        est = test.macro["auroc"]
        value = est.bound(floors.bound)
        ok = math.isfinite(value) and value >= floors.macro_auroc
        out.append(
            GateCheck(
                "floor.macro_auroc",
                ok,
                f"macro AUROC {est.text()}: {_value(floors.bound)} "
                f"{value:.3f} {'≥' if ok else '<'} floor {floors.macro_auroc:.3f}",
            )
        )
    per_class = floors.per_class_auroc
    if per_class is None:
        return out
    for label in report.labels:
        floor = per_class.get(label) if isinstance(per_class, dict) else per_class
        if floor is None:
            continue
        est = test.per_label[label]["auroc"]
        if not est.defined:
            out.append(
                GateCheck(
                    f"floor.auroc.{label}",
                    floors.undefined_class == "skip",
                    f"AUROC of {label} cannot be estimated ({test.positives.get(label, 0)} positives "
                    f"among {test.n_records} test records)",
                )
            )
            continue
        value = est.bound(floors.bound)
        ok = math.isfinite(value) and value >= floor
        shown = f"{value:.3f}" if math.isfinite(value) else "n/a (no CI)"
        out.append(
            GateCheck(
                f"floor.auroc.{label}",
                ok,
                f"{label} AUROC {est.text()}: {_value(floors.bound)} {shown} "
                f"{'≥' if ok else '<'} floor {floor:.3f}",
            )
        )
    return out


def _non_inferiority(policy: GatePolicy, report: EvaluationReport, facts: RegistryFacts) -> list[GateCheck]:
    rule = policy.non_inferiority
    if rule is None:
        return []
    if facts.production is None:
        return [
            GateCheck("non_inferiority", True, "no production model for the task: nothing to compare with")
        ]
    if facts.is_production:
        return [GateCheck("non_inferiority", True, f"{report.model} is the production model itself")]
    comparison = report.comparison
    if comparison is None or comparison.production != facts.production:
        compared = comparison.production if comparison else "none"
        why = report.comparison_note or "evaluate the model again"
        return [
            GateCheck(
                "non_inferiority",
                False,
                f"no paired comparison with the production model {facts.production} (compared with: "
                f"{compared}); {why}",
            )
        ]
    low = comparison.difference.bound("ci_low")
    ok = math.isfinite(low) and low >= -rule.margin
    return [
        GateCheck(
            "non_inferiority",
            ok,
            f"macro AUROC difference vs {facts.production} on {comparison.n_records} paired records "
            f"{comparison.difference.text()}: lower bound {low:.3f} {'≥' if ok else '<'} "
            f"−δ = {-rule.margin:.3f} "
            f"(candidate {comparison.candidate_macro_auroc.text()}, production "
            f"{comparison.production_macro_auroc.text()})",
        )
    ]


def _subgroups(policy: GatePolicy, report: EvaluationReport) -> list[GateCheck]:
    rule = policy.subgroups
    if rule is None:
        return []
    out = []
    for attribute in rule.attributes:
        groups = [
            s
            for s in report.test.subgroups
            if s.attribute == attribute and s.n_records >= rule.min_records and s.macro_auroc.defined
        ]
        if len(groups) < 2:
            out.append(
                GateCheck(
                    f"subgroup_gap.{attribute}",
                    True,
                    f"{attribute}: fewer than two groups of ≥ {rule.min_records} records to compare",
                )
            )
            continue
        low = min(groups, key=lambda s: s.macro_auroc.value)
        high = max(groups, key=lambda s: s.macro_auroc.value)
        gap = high.macro_auroc.value - low.macro_auroc.value
        ok = gap <= rule.max_gap
        out.append(
            GateCheck(
                f"subgroup_gap.{attribute}",
                ok,
                f"{attribute}: macro AUROC gap {gap:.3f} {'≤' if ok else '>'} {rule.max_gap:.3f} "
                f"({low.group} {low.macro_auroc.value:.3f}, n={low.n_records} vs "
                f"{high.group} {high.macro_auroc.value:.3f}, n={high.n_records})",
            )
        )
    return out


def _external(policy: GatePolicy, report: EvaluationReport) -> list[GateCheck]:
    rule = policy.external
    if rule is None:
        return []
    if not report.external:
        return [
            GateCheck(
                "external",
                not rule.required,
                "no external cohort was evaluated" + (" (the policy requires one)" if rule.required else ""),
            )
        ]
    out = []
    for cohort in report.external:
        eligible = [
            lab
            for lab in report.labels
            if cohort.positives.get(lab, 0) >= rule.min_positives
            and cohort.n_records - cohort.positives.get(lab, 0) >= rule.min_positives
            and cohort.per_label[lab]["auroc"].defined
        ]
        if not eligible:
            out.append(
                GateCheck(
                    f"external.{cohort.name}",
                    not rule.required,
                    f"external cohort {cohort.name}: no label with ≥ {rule.min_positives} positives and "
                    f"negatives among {cohort.n_records} records; the floor cannot be checked",
                )
            )
            continue
        values = [cohort.per_label[lab]["auroc"].bound(rule.bound) for lab in eligible]
        value = float(sum(values) / len(values))
        ok = math.isfinite(value) and value >= rule.macro_auroc
        out.append(
            GateCheck(
                f"external.{cohort.name}",
                ok,
                f"external cohort {cohort.name} ({cohort.n_records} records): macro AUROC over "
                f"{', '.join(eligible)} — {_value(rule.bound)} {value:.3f} {'≥' if ok else '<'} "
                f"floor {rule.macro_auroc:.3f}",
            )
        )
    return out


def _data(policy: GatePolicy, facts: RegistryFacts) -> list[GateCheck]:
    rule = policy.data
    if not rule.require_validation:
        return []
    if facts.dataset_version is None:
        return [GateCheck("data.validation", False, "the training data has no registered dataset version")]
    fact = facts.training_validation
    if fact is None:
        return [
            GateCheck(
                "data.validation",
                False,
                f"training dataset version {facts.dataset_version[:12]} has no recorded validation run",
            )
        ]
    ok = fact.verdict in rule.allowed_verdicts
    return [
        GateCheck(
            "data.validation",
            ok,
            f"training dataset version {fact.dataset_version[:12]}: validation run {fact.validation_run_id} "
            f"verdict {fact.verdict} ({'allowed' if ok else 'not allowed'}: "
            f"{', '.join(rule.allowed_verdicts)})",
        )
    ]


def decide(policy: GatePolicy, report: EvaluationReport, facts: RegistryFacts) -> GateOutcome:
    """Apply ``policy`` to an evaluation; every check contributes a reason."""
    if report.task not in policy.tasks:
        raise EvaluationError(f"gate policy {policy.ref} is for tasks {policy.tasks}, not {report.task}")
    n = report.test.n_records
    checks = [
        GateCheck(
            "min_test_records",
            n >= policy.min_test_records,
            f"{n} test records ({report.test.n_patients} patients) "
            f"{'≥' if n >= policy.min_test_records else '<'} {policy.min_test_records}",
        )
    ]
    checks += _floors(policy, report)
    if policy.calibration.max_ece is not None:
        ece = report.test.macro["ece"]
        ok = ece.defined and ece.value <= policy.calibration.max_ece
        checks.append(
            GateCheck(
                "calibration",
                ok,
                f"macro ECE {ece.text()} {'≤' if ok else '>'} {policy.calibration.max_ece:.3f}",
            )
        )
    checks += _non_inferiority(policy, report, facts)
    checks += _subgroups(policy, report)
    checks += _external(policy, report)
    checks += _data(policy, facts)
    return GateOutcome(policy.ref, checks)


def _shadow_label_checks(policy: ShadowPolicy, row: LabelAgreement) -> list[GateCheck]:
    """The kappa and flip-rate bounds on one label (an undefined statistic fails its bound)."""
    out = []
    if policy.min_kappa is not None:
        ok = math.isfinite(row.kappa) and row.kappa >= policy.min_kappa
        shown = f"{row.kappa:.3f}" if math.isfinite(row.kappa) else "undefined (no records)"
        out.append(
            GateCheck(
                f"shadow.kappa.{row.label}",
                ok,
                f"{row.label}: Cohen's kappa {shown} {'≥' if ok else '<'} {policy.min_kappa:.3f}",
            )
        )
    if policy.max_flip_rate is not None:
        ok = math.isfinite(row.flip_rate) and row.flip_rate <= policy.max_flip_rate
        shown = f"{row.flip_rate:.3f}" if math.isfinite(row.flip_rate) else "undefined (no records)"
        out.append(
            GateCheck(
                f"shadow.flip_rate.{row.label}",
                ok,
                f"{row.label}: flip rate {shown} ({row.flips_to_positive} to positive, "
                f"{row.flips_to_negative} to negative of {row.n}) {'≤' if ok else '>'} "
                f"{policy.max_flip_rate:.3f}",
            )
        )
    return out


def shadow_verdict(
    policy: ShadowPolicy, n_records: int, agreement: list[LabelAgreement]
) -> tuple[bool, list[str]]:
    """Whether a shadow evaluation passes ``policy``: enough records, and every label's kappa and flip rate
    within the bounds. Reasons as the gate writes them (``FAIL (check) …`` first, then ``PASS``), each
    naming the label and its number against the bound."""
    ok = n_records >= policy.min_records
    checks = [
        GateCheck(
            "shadow.min_records",
            ok,
            f"{n_records} records replayed through both models {'≥' if ok else '<'} {policy.min_records}",
        )
    ]
    if not agreement:
        checks.append(GateCheck("shadow.labels", False, "no label was compared"))
    for row in agreement:
        checks += _shadow_label_checks(policy, row)
    outcome = GateOutcome("shadow", checks)
    return outcome.verdict == "pass", outcome.reasons
