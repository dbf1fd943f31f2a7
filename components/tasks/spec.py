"""Tasks as data: ``schemas/tasks/<name>.yaml`` → a validated :class:`TaskSpec`.

A task names its label system and labels (each a set of codes, or PTB-XL diagnostic classes/subclasses
that expand to codes through ``schemas/vocab``), the positive-label rule, the leads the model reads,
sampling rate and duration, its gate policy and what the model card says about intended use and
limitations. ``extends: <task>`` reuses another task and overrides some keys (lead-set variants).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.config import SCHEMAS_DIR, YamlError, read_yaml
from components.io.leads import STANDARD_LEADS
from components.tasks.errors import TaskError
from components.tasks.vocab import CLASS_TOKEN, SUBCLASS_TOKEN, known_systems, vocabulary

TASKS_DIR = SCHEMAS_DIR / "tasks"
LEAD_SETS: dict[str, tuple[str, ...]] = {
    "12-lead": tuple(STANDARD_LEADS),
    "limb": ("I", "II", "III", "aVR", "aVL", "aVF"),
    "precordial": ("V1", "V2", "V3", "V4", "V5", "V6"),
}


class LabelSpec(BaseModel):
    """One output of the model: positive when a record carries any of its codes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_./+-]+$")
    description: str = ""
    codes: list[str] = Field(default_factory=list, description="codes of the task's label system")
    diagnostic_class: list[str] = Field(default_factory=list, description="SCP: PTB-XL diagnostic classes")
    diagnostic_subclass: list[str] = Field(default_factory=list, description="SCP: diagnostic subclasses")

    @model_validator(mode="after")
    def _has_selector(self) -> LabelSpec:
        if not (self.codes or self.diagnostic_class or self.diagnostic_subclass):
            raise ValueError(f"label {self.name}: give codes, diagnostic_class or diagnostic_subclass")
        return self


class PositiveRule(BaseModel):
    """When a record counts as positive for a label, and what happens to records with no label at all."""

    model_config = ConfigDict(extra="forbid")

    min_likelihood: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="a code counts when its likelihood is at least this (PTB-XL: 0 = any statement)",
    )
    unlabelled: Literal["exclude", "negative"] = Field(
        default="exclude",
        description="records with none of the labels: left out (PTB-XL benchmark) or all-negative",
    )


class TaskSpec(BaseModel):
    """A validated task definition."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)
    version: int = Field(ge=1)
    title: str
    description: str = ""
    label_system: str
    labels: list[LabelSpec] = Field(min_length=1)
    positive_rule: PositiveRule = PositiveRule()
    leads: list[str] = Field(default_factory=lambda: list(STANDARD_LEADS))
    required_leads: list[str] = Field(
        default_factory=list, description="leads a record must carry (empty: all of `leads`)"
    )
    fs: int | None = Field(default=None, gt=0, description="Hz; None: the foundation model's rate")
    duration_s: float | None = Field(default=None, gt=0)
    gate: str | None = Field(default=None, description="schemas/gates/<gate>.yaml; default: the task name")
    mapping: str = Field(default="scp_snomed", description="schemas/mappings/<mapping>.yaml")
    intended_use: str = ""
    limitations: list[str] = Field(default_factory=list)

    @field_validator("leads", mode="before")
    @classmethod
    def _lead_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value in LEAD_SETS:
                return list(LEAD_SETS[value])
            if value in STANDARD_LEADS:
                return [value]
            raise ValueError(f"unknown lead set {value!r}; use one of {sorted(LEAD_SETS)} or a list of leads")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        if self.label_system not in known_systems():
            raise ValueError(
                f"label_system {self.label_system!r} has no vocabulary; known: {known_systems()}"
            )
        unknown = [lead for lead in self.leads if lead not in STANDARD_LEADS]
        if unknown:
            raise ValueError(f"leads: unknown {unknown}; standard leads are {list(STANDARD_LEADS)}")
        if len(set(self.leads)) != len(self.leads) or not self.leads:
            raise ValueError("leads: give each lead once, at least one")
        if not set(self.required_leads) <= set(self.leads):
            raise ValueError(f"required_leads {self.required_leads} must be among leads {self.leads}")
        names = [label.name for label in self.labels]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"labels: duplicated names {duplicated}")
        for i, label in enumerate(self.labels):
            try:
                resolve_label(label, self.label_system)
            except ValueError as exc:
                raise ValueError(f"labels.{i}: {exc}") from None
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def gate_policy(self) -> str:
        return self.gate or self.name

    @property
    def needed_leads(self) -> list[str]:
        return self.required_leads or self.leads

    def label_codes(self) -> list[frozenset[str]]:
        """Per label, the codes (and class tokens) that make a record positive."""
        return [resolve_label(label, self.label_system) for label in self.labels]

    def digest(self) -> str:
        """SHA-256 of the task's canonical JSON (recorded with every model trained on it)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def resolve_label(label: LabelSpec, system: str) -> frozenset[str]:
    """The codes a label stands for; ``ValueError`` for codes or classes the vocabulary lacks."""
    vocab = vocabulary(system)
    unknown = [c for c in label.codes if c not in vocab]
    if unknown:
        raise ValueError(f"label {label.name}: unknown {system} code(s) {unknown}")
    codes = set(label.codes)
    for field, key, token in (
        ("diagnostic_class", "diagnostic_class", CLASS_TOKEN),
        ("diagnostic_subclass", "diagnostic_subclass", SUBCLASS_TOKEN),
    ):
        wanted = getattr(label, field)
        if wanted and system != "SCP":
            raise ValueError(f"label {label.name}: {field} exists only for the SCP label system")
        for value in wanted:
            matched = {code for code, entry in vocab.items() if entry.get(key) == value}
            if not matched:
                known = sorted({str(e[key]) for e in vocab.values() if e.get(key)})
                raise ValueError(
                    f"label {label.name}: no SCP statement has {field} {value!r}; known: {known}"
                )
            codes |= matched | {f"{token}{value}"}
    return frozenset(codes)


def explain(error: ValidationError) -> str:
    """A pydantic error as ``where: what`` lines, without pydantic's links."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = read_yaml(path)
    except YamlError as exc:
        raise TaskError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{path}: a task file holds a mapping (name, labels, ...), got {type(raw).__name__}")
    return raw


def _task_path(name: str, tasks_dir: Path) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = tasks_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(task_names(tasks_dir)) or "(none)"
        raise TaskError(f"unknown task {name!r}: no {path}; known tasks: {known}")
    return path


def _raw_task(path: Path, tasks_dir: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = _read_yaml(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if base in seen or base == path.stem:
        raise TaskError(f"{path}: `extends` forms a cycle through {' -> '.join((*seen, path.stem, base))}")
    merged = _raw_task(_task_path(str(base), tasks_dir), tasks_dir, (*seen, path.stem))
    return merged | raw


def load_task(name: str, tasks_dir: Path = TASKS_DIR) -> TaskSpec:
    """The task ``schemas/tasks/<name>.yaml`` (or a path to a task file), validated.

    Every problem is a :class:`TaskError` naming the file and the offending key.
    """
    path = _task_path(name, tasks_dir)
    raw = _raw_task(path, tasks_dir)
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise TaskError(f"{path}: {explain(exc)}") from None
    if spec.name != path.stem:
        raise TaskError(f"{path}: name {spec.name!r} must match the file name {path.stem!r}")
    return spec


def task_from_dict(data: dict[str, Any]) -> TaskSpec:
    """A task stored with a model (its ``meta.task_spec``), validated again."""
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskError(f"stored task definition: {explain(exc)}") from None


def task_names(tasks_dir: Path = TASKS_DIR) -> list[str]:
    """Names of the shipped tasks."""
    return sorted(p.stem for p in tasks_dir.glob("*.yaml"))


def task_family(name: str, tasks_dir: Path = TASKS_DIR) -> list[str]:
    """Task ``name`` and the tasks that extend it (directly or through another): base first, then by name.

    A family is one task read from different lead sets (``ptbxl-superdiagnostic`` and its ``-lead-i``,
    ``-lead-ii`` and ``-limb`` variants); one Bento can serve it (docs/serving.md).
    """
    base = _task_path(name, tasks_dir).stem
    members = [task for task in task_names(tasks_dir) if task != base and base in _ancestors(task, tasks_dir)]
    return [base, *members]


def _ancestors(name: str, tasks_dir: Path) -> list[str]:
    """The tasks ``name`` extends, nearest first (:class:`TaskError` for a cycle or a missing base)."""
    chain: list[str] = []
    base = _read_yaml(_task_path(name, tasks_dir)).get("extends")
    while base is not None:
        if base in chain or base == name:
            cycle = " -> ".join([name, *chain, str(base)])
            raise TaskError(f"task {name}: `extends` forms a cycle through {cycle}")
        chain.append(str(base))
        base = _read_yaml(_task_path(str(base), tasks_dir)).get("extends")
    return chain
