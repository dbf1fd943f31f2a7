"""Steward review of quarantined records: list them, record accept/reject decisions in the registry.

Decisions are appended (never edited or deleted) and keyed by the stable record id, so they survive
re-ingest and re-validation; ``validate`` applies the latest decision per record on its next run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from components.errors import UserError
from components.validation.quarantine import excluded_ids
from components.workspace import Workspace


class ReviewError(UserError, ValueError):
    """A review request that cannot be honoured (no validation yet, unknown record, empty note)."""


def latest_run_dir(workspace: Workspace, dataset: str) -> Path:
    """The newest validation run directory of ``dataset`` with a result."""
    root = workspace.validation_dir(dataset)
    runs = sorted((p for p in root.glob("*/result.json")), reverse=True) if root.is_dir() else []
    if not runs:
        raise ReviewError(f"dataset {dataset!r} has not been validated yet (run `ecgops validate`)")
    return runs[0].parent


def excluded_records(workspace: Workspace, dataset: str | None = None) -> list[str]:
    """Record ids the latest validation of ``dataset`` excludes from training (quarantined or rejected)."""
    name = workspace.dataset(dataset)
    return excluded_ids(pd.read_parquet(latest_run_dir(workspace, name) / "quarantine.parquet"))


def validation_exclusions(workspace: Workspace, dataset: str) -> frozenset[str]:
    """Records the latest validation of ``dataset`` keeps out of training and evaluation (none if never
    validated)."""
    try:
        return frozenset(excluded_records(workspace, dataset))
    except ReviewError:
        return frozenset()


def list_quarantined(
    workspace: Workspace, dataset: str | None = None, *, status: str | None = None
) -> pd.DataFrame:
    """Records quarantined by the latest validation, with the current steward decision of each.

    ``status`` filters on ``quarantined`` (awaiting review), ``accepted`` or ``rejected``. Decisions
    made after that validation are shown too (they take effect on the next ``validate``).
    """
    name = workspace.dataset(dataset)
    run_dir = latest_run_dir(workspace, name)
    table = pd.read_parquet(run_dir / "quarantine.parquet")
    with workspace.registry() as registry:
        decisions = registry.steward_decisions(name)
    for i, rid in enumerate(table["record_id"].astype(str)):
        d = decisions.get(rid)
        if d is not None:
            table.loc[i, "status"] = "accepted" if d.decision == "accept" else "rejected"
            table.loc[i, "decision_note"] = d.note
            table.loc[i, "reviewer"] = d.reviewer
            table.loc[i, "decided_at"] = d.decided_at.isoformat()
    table["reasons_text"] = [
        "; ".join(f"{r['expectation']}" + (f" ({r['lead']})" if r.get("lead") else "") for r in json.loads(s))
        for s in table["reasons"]
    ]
    table["plot"] = [
        str(workspace.validation_dir(name) / "plots" / f"{rid}.png") for rid in table["record_id"]
    ]
    if status is not None:
        table = table[table["status"] == status]
    return table.reset_index(drop=True)


def decide(
    workspace: Workspace,
    record_ids: list[str],
    decision: Literal["accept", "reject"],
    note: str,
    *,
    dataset: str | None = None,
    reviewer: str | None = None,
) -> list[Any]:
    """Record a steward decision for each record id (all must be in the latest quarantine list).

    ``accept`` overrides the quarantine (the record is used), ``reject`` confirms it. A note saying
    why is required; the reviewer defaults to the configured actor.
    """
    name = workspace.dataset(dataset)
    if not note.strip():
        raise ReviewError("a note saying why is required")
    if decision not in ("accept", "reject"):
        raise ReviewError(f"decision must be accept or reject, not {decision!r}")
    listed = set(
        pd.read_parquet(latest_run_dir(workspace, name) / "quarantine.parquet")["record_id"].astype(str)
    )
    unknown = [r for r in record_ids if r not in listed]
    if unknown:
        raise ReviewError(f"not in the latest quarantine list of {name!r}: {', '.join(unknown)}")
    who = reviewer or workspace.settings.actor
    with workspace.registry() as registry, registry.atomic():
        return [
            registry.record_steward_decision(
                dataset=name, record_id=r, decision=decision, note=note, reviewer=who
            )
            for r in record_ids
        ]
