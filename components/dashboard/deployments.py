"""Deployments: Bentos per task and stage with their pull command, all Bentos, the audit log."""

from __future__ import annotations

import json

import pandas as pd

from components.registry import AuditEntryInfo, BentoInfo, DeploymentSlotInfo


def slots_frame(slots: list[DeploymentSlotInfo]) -> pd.DataFrame:
    """One row per task and stage: the model there, its Bento (URI, sha256) and the exact pull command."""
    return pd.DataFrame(
        [
            {
                "task": slot.task,
                "stage": slot.stage,
                "model": slot.model.ref,
                "models in stage": slot.n_models,
                "gate": slot.model.gate_verdict or "",
                "promoted": "by override: " + (slot.stage_reason or "") if slot.forced else "gate passed",
                "since": slot.assigned_at,
                "by": slot.assigned_by or "",
                "bento": slot.bento.tag if slot.bento else "(not packaged)",
                "artifact URI": slot.bento.artifact_uri if slot.bento else "",
                "sha256": slot.bento.sha256 if slot.bento else "",
                "pull": slot.pull_command if slot.bento else "",
            }
            for slot in slots
        ]
    )


def bentos_frame(bentos: list[BentoInfo]) -> pd.DataFrame:
    """One row per Bento: tag, task, model, artifact URI, sha256, when and by whom."""
    return pd.DataFrame(
        [
            {
                "bento": b.tag,
                "task": b.task or "",
                "model": b.model,
                "artifact URI": b.artifact_uri,
                "sha256": b.sha256,
                "built": b.created_at,
                "by": b.created_by,
            }
            for b in bentos
        ]
    )


def audit_frame(entries: list[AuditEntryInfo]) -> pd.DataFrame:
    """One row per audit entry: when, who, what, on which entity, why, details."""
    return pd.DataFrame(
        [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "entity": f"{e.entity_type} {e.entity_id}",
                "summary": e.summary,
                "reason": e.reason or "",
                "details": json.dumps(e.details, default=str) if e.details else "",
            }
            for e in entries
        ]
    )
