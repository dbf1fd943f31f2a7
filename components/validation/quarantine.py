"""From failing record expectations and steward decisions to the quarantine list.

Status of a listed record: ``quarantined`` (awaiting review, excluded), ``rejected`` (a steward
confirmed the quarantine, excluded) or ``accepted`` (a steward overrode it, used for training).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from components.validation.gx_runner import ExpectationOutcome
from components.validation.policy import Policy

EXCLUDED_STATUSES = ("quarantined", "rejected")
QUARANTINE_COLUMNS = (
    "record_id",
    "source_record",
    "split",
    "reasons",
    "reason_ids",
    "status",
    "decision_note",
    "reviewer",
    "decided_at",
)


def _value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None if np.isnan(v) else str(v)
    return v


def first_positions(record_ids: pd.Series) -> dict[str, int]:
    """Row position of the first occurrence of each record id (unique unless the manifest is broken)."""
    out: dict[str, int] = {}
    for i, rid in enumerate(record_ids.astype(str)):
        out.setdefault(rid, i)
    return out


def record_reasons(
    outcomes: list[ExpectationOutcome], features: pd.DataFrame, policy: Policy, severity: str = "quarantine"
) -> dict[str, list[dict[str, Any]]]:
    """Per failing record id, the reasons: expectation id, description, column, value and worst lead."""
    first_row = first_positions(features["record_id"])
    reasons: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        if outcome.severity != severity or outcome.success or not outcome.failing_record_ids:
            continue
        spec = policy.spec(outcome.id)
        positions = np.asarray([first_row[rid] for rid in outcome.failing_record_ids], dtype=np.int64)
        values = features[outcome.column].to_numpy()[positions] if outcome.column else [None] * len(positions)
        leads = (
            features[spec.lead_column].to_numpy()[positions] if spec.lead_column else [None] * len(positions)
        )
        for rid, value, lead in zip(outcome.failing_record_ids, values, leads, strict=True):
            reasons.setdefault(rid, []).append(
                {
                    "expectation": outcome.id,
                    "description": outcome.description,
                    "column": outcome.column,
                    "value": _value(value),
                    "lead": lead or None,
                    "limits": {k: v for k, v in outcome.kwargs.items() if k != "column"},
                }
            )
    return reasons


def quarantine_table(
    reasons: Mapping[str, list[dict[str, Any]]],
    manifest: pd.DataFrame,
    decisions: Mapping[str, Any],
) -> pd.DataFrame:
    """One row per quarantined record, with the latest steward decision applied."""
    by_id = manifest.drop_duplicates("record_id").set_index("record_id")
    rows = []
    for rid in sorted(reasons):
        decision = decisions.get(rid)
        status = (
            "quarantined"
            if decision is None
            else ("accepted" if decision.decision == "accept" else "rejected")
        )
        rows.append(
            {
                "record_id": rid,
                "source_record": str(by_id.at[rid, "source_record"]),
                "split": str(by_id.at[rid, "split"]),
                "reasons": json.dumps(reasons[rid], ensure_ascii=False),
                "reason_ids": ",".join(r["expectation"] for r in reasons[rid]),
                "status": status,
                "decision_note": None if decision is None else decision.note,
                "reviewer": None if decision is None else decision.reviewer,
                "decided_at": None if decision is None else decision.decided_at.isoformat(),
            }
        )
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))


def excluded_ids(quarantine: pd.DataFrame) -> list[str]:
    """Record ids that training must not use."""
    return quarantine.loc[quarantine["status"].isin(EXCLUDED_STATUSES), "record_id"].astype(str).tolist()
