"""Targets of a task from the manifest: likelihood rule, class aggregation, mapping between label systems."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components.io.leads import STANDARD_LEADS
from components.tasks.mapping import load_mapping
from components.tasks.spec import TaskSpec
from components.tasks.vocab import CLASS_TOKEN, SUBCLASS_TOKEN, vocabulary


def records_digest(record_ids: Iterable[object]) -> str:
    """SHA-256 of a sorted set of record ids (which records a split held)."""
    ids = sorted(str(r) for r in record_ids)
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def record_codes(labels_json: object) -> dict[str, float]:
    """A manifest ``labels`` cell (JSON ``{code: likelihood}``) as a dict."""
    if not isinstance(labels_json, str) or not labels_json.strip():
        return {}
    return {str(k): float(v) for k, v in json.loads(labels_json).items()}


def _with_class_tokens(codes: dict[str, float]) -> dict[str, float]:
    """SCP codes plus ``class:``/``subclass:`` tokens for their PTB-XL diagnostic (sub)classes."""
    vocab = vocabulary("SCP")
    out = dict(codes)
    for code, likelihood in codes.items():
        entry = vocab.get(code, {})
        for key, token in (("diagnostic_class", CLASS_TOKEN), ("diagnostic_subclass", SUBCLASS_TOKEN)):
            if entry.get(key):
                name = f"{token}{entry[key]}"
                out[name] = max(out.get(name, 0.0), likelihood)
    return out


@dataclass
class LabelTable:
    """Per manifest row: the task's 0/1 targets and whether the row has a usable label."""

    targets: np.ndarray  # (n, n_labels) int8
    usable: np.ndarray  # (n,) bool
    reasons: list[str]  # "" where usable, else why not
    mapped: np.ndarray  # (n,) bool: labels came through the mapping from another system

    def counts(self) -> dict[str, int]:
        return dict(Counter(r for r in self.reasons if r))


def task_targets(manifest: pd.DataFrame, task: TaskSpec) -> LabelTable:
    """Targets of ``task`` for every manifest row.

    A code counts when its likelihood is ≥ ``positive_rule.min_likelihood`` (SNOMED codes carry 100).
    Records in another label system are translated with the task's mapping first. Records with none of
    the task's labels are unusable under ``unlabelled: exclude`` and all-negative under ``negative``.
    """
    label_codes = task.label_codes()
    rule = task.positive_rule
    n = len(manifest)
    targets = np.zeros((n, len(label_codes)), dtype=np.int8)
    usable = np.zeros(n, dtype=bool)
    mapped = np.zeros(n, dtype=bool)
    reasons: list[str] = []
    mapping = None
    for i, (labels_json, system) in enumerate(zip(manifest["labels"], manifest["label_system"], strict=True)):
        codes = {c: v for c, v in record_codes(labels_json).items() if v >= rule.min_likelihood}
        system = str(system) if isinstance(system, str) else ""
        if not codes:
            reasons.append("no label codes at the likelihood rule")
            continue
        if system != task.label_system:
            if {system, task.label_system} != {"SCP", "SNOMED"}:
                reasons.append(f"label system {system or 'unknown'} cannot be mapped to {task.label_system}")
                continue
            mapping = mapping or load_mapping(task.mapping)
            codes = mapping.translate(codes, system, task.label_system)
            mapped[i] = True
        if task.label_system == "SCP":
            codes = _with_class_tokens(codes)
        present = set(codes)
        row = [bool(present & wanted) for wanted in label_codes]
        targets[i] = row
        if any(row) or rule.unlabelled == "negative":
            usable[i] = True
            reasons.append("")
        else:
            reasons.append("none of the task's labels")
    return LabelTable(targets, usable, reasons, mapped)


@dataclass
class TaskRecords:
    """The manifest rows of one split that a task can use, with their targets and what was left out."""

    split: str
    rows: np.ndarray
    targets: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def positives(self, labels: list[str]) -> dict[str, int]:
        return {name: int(self.targets[:, j].sum()) for j, name in enumerate(labels)}


def lead_requirement(needed: list[str]) -> np.ndarray:
    """``(12,)`` bool of the leads a record must carry."""
    return np.isin(np.asarray(STANDARD_LEADS), needed)


def select_records(
    manifest: pd.DataFrame,
    lead_masks: np.ndarray,
    task: TaskSpec,
    *,
    split: str | None,
    excluded_ids: frozenset[str] = frozenset(),
    table: LabelTable | None = None,
) -> TaskRecords:
    """Rows of ``split`` (None: all) usable for ``task``: labelled, carrying the task's needed leads and
    not excluded by validation. ``excluded`` counts every left-out row by reason."""
    table = table or task_targets(manifest, task)
    in_split = (
        np.ones(len(manifest), dtype=bool) if split is None else (manifest["split"].to_numpy() == split)
    )
    need = lead_requirement(task.needed_leads)
    has_leads: np.ndarray = np.all(
        np.asarray(lead_masks, dtype=bool).reshape(-1, len(STANDARD_LEADS))[:, need], axis=1
    )
    validated = ~manifest["record_id"].isin(excluded_ids).to_numpy()
    counts: Counter[str] = Counter()
    keep = np.zeros(len(manifest), dtype=bool)
    for i in np.flatnonzero(in_split):
        if not validated[i]:
            counts["excluded by validation"] += 1
        elif not has_leads[i]:
            counts[f"lacks a needed lead ({', '.join(task.needed_leads)})"] += 1
        elif not table.usable[i]:
            counts[table.reasons[i]] += 1
        else:
            keep[i] = True
    rows = np.flatnonzero(keep)
    return TaskRecords(split or "all", rows, table.targets[rows], dict(counts))
