"""Datasets: versions with their counts, sources and sites, the label distribution and its shift.

Counts, sources, sites and splits are the statistics ingest recorded with each version in the registry.
Labels are counted from the version's own ``manifest.parquet``: the checked-out one for the current
version (``data.dvc``), otherwise the copy in the local DVC cache (each version's files are there until
``dvc gc``). A record counts once for each code in its ``labels``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from components.config import SCHEMAS_DIR
from components.dashboard.quality import short_md5
from components.io.versioning import current_version
from components.registry import DatasetVersionInfo
from components.workspace import Workspace

MANIFEST_NAME = "manifest.parquet"


def versions_frame(versions: list[DatasetVersionInfo]) -> pd.DataFrame:
    """One row per dataset version: when, counts, sources, sites, splits, parent, git revision."""

    def listing(counts: dict[str, Any] | None) -> str:
        items = sorted((counts or {}).items(), key=lambda kv: -int(kv[1]))
        return ", ".join(f"{k} {int(v):,}" for k, v in items)

    return pd.DataFrame(
        [
            {
                "version": short_md5(v.dvc_md5),
                "dataset": v.dataset,
                "recorded at": v.created_at,
                "records": v.n_records,
                "quarantined at ingest": v.n_quarantined,
                "patients": v.n_patients,
                "sources": listing(v.statistics.get("sources")),
                "sites": listing(v.statistics.get("sites")),
                "splits": listing(v.statistics.get("splits")),
                "parent": short_md5(v.parent_md5) if v.parent_md5 else "",
                "git revision": (v.git_rev or "")[:10],
                "md5": v.dvc_md5,
            }
            for v in versions
        ]
    )


def count_shift(now: dict[str, Any] | None, before: dict[str, Any] | None, what: str) -> pd.DataFrame:
    """Counts of a version next to its parent's (sources, sites or splits), with the change."""
    now, before = now or {}, before or {}
    keys = sorted(set(now) | set(before), key=lambda k: -int(now.get(k, 0)))
    return pd.DataFrame(
        [
            {
                what: k,
                "records": int(now.get(k, 0)),
                "previous version": int(before.get(k, 0)),
                "change": int(now.get(k, 0)) - int(before.get(k, 0)),
            }
            for k in keys
        ]
    )


def version_manifest(workspace: Workspace, dataset: str, md5: str) -> Path | None:
    """Where the manifest of ``dataset`` at DVC version ``md5`` is on this machine, if anywhere."""
    settings = workspace.settings
    bare = md5.removesuffix(".dir")
    current = current_version(workspace)
    if current is not None and current.removesuffix(".dir") == bare:
        path = settings.data_dir / dataset / MANIFEST_NAME
        return path if path.is_file() else None
    if not (settings.workspace / ".dvc").is_dir():
        return None
    from dvc.repo import Repo

    with Repo(str(settings.workspace)) as repo:
        odb = repo.cache.local
        listing = Path(odb.oid_to_path(f"{bare}.dir"))
        if not listing.is_file():
            return None
        wanted = f"{dataset}/{MANIFEST_NAME}"
        entry = next((e for e in json.loads(listing.read_text()) if e.get("relpath") == wanted), None)
        if entry is None:
            return None
        path = Path(odb.oid_to_path(entry["md5"]))
    return path if path.is_file() else None


@dataclass(frozen=True)
class LabelCounts:
    """How many records of a manifest carry each ``(label system, code)``."""

    n_records: int
    counts: dict[tuple[str, str], int]


def label_counts(manifest: Path) -> LabelCounts:
    """Count the label codes of every record of a manifest.

    Only the two label columns are read, and each distinct ``(labels, label system)`` pair is parsed
    once: records share a few thousand label sets even in large archives.
    """
    frame = pq.read_table(manifest, columns=["labels", "label_system"]).to_pandas()
    sets = frame.value_counts(["labels", "label_system"], dropna=False)
    counter: Counter[tuple[str, str]] = Counter()
    for (labels, system), n in sets.items():
        if isinstance(labels, str) and labels:
            for code in json.loads(labels):
                counter[(system if isinstance(system, str) else "", code)] += int(n)
    return LabelCounts(n_records=len(frame), counts=dict(counter))


@cache
def label_descriptions() -> dict[tuple[str, str], str]:
    """``(system, code) -> description`` from the label vocabularies in ``schemas/vocab``."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted((SCHEMAS_DIR / "vocab").glob("*.yaml")):
        vocab = yaml.safe_load(path.read_text()) or {}
        for code, entry in (vocab.get("codes") or {}).items():
            out[(str(vocab.get("system", "")), str(code))] = str((entry or {}).get("description", ""))
    return out


def label_shift(now: LabelCounts, before: LabelCounts | None) -> pd.DataFrame:
    """Per label: records and share now and in the previous version, and the change in percentage points.

    Sorted by the size of the change (largest first), then by share.
    """
    names = label_descriptions()
    keys = set(now.counts) | (set(before.counts) if before else set())
    rows = []
    for system, code in keys:
        n_now = now.counts.get((system, code), 0)
        share_now = 100.0 * n_now / now.n_records if now.n_records else 0.0
        row: dict[str, Any] = {
            "label": code,
            "system": system,
            "meaning": names.get((system, code), ""),
            "records": n_now,
            "share %": share_now,
        }
        if before is not None:
            n_before = before.counts.get((system, code), 0)
            share_before = 100.0 * n_before / before.n_records if before.n_records else 0.0
            row |= {
                "previous records": n_before,
                "previous share %": share_before,
                "change (pp)": share_now - share_before,
            }
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if before is not None:
        frame = frame.assign(_size=frame["change (pp)"].abs()).sort_values(
            ["_size", "share %"], ascending=False
        )
        return frame.drop(columns="_size").reset_index(drop=True)
    return frame.sort_values("share %", ascending=False).reset_index(drop=True)


def total_variation(now: LabelCounts, before: LabelCounts) -> float:
    """Total variation distance (0 = same, 1 = disjoint) between the two versions' label mixes."""
    keys = set(now.counts) | set(before.counts)
    total_now, total_before = sum(now.counts.values()), sum(before.counts.values())
    if not total_now or not total_before:
        return 0.0 if total_now == total_before else 1.0
    return 0.5 * sum(
        abs(now.counts.get(k, 0) / total_now - before.counts.get(k, 0) / total_before) for k in keys
    )
