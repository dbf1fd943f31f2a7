"""Dataset versions as the rest of the platform sees them: ingest → DVC version → registry row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.io.ingest import IngestOptions, IngestSummary, ingest
from components.io.versioning import (
    DataVersion,
    VersioningError,
    checkout_version,
    current_version,
    version_data,
)
from components.workspace import Workspace


def ingest_and_version(
    workspace: Workspace,
    drop: Path,
    *,
    dataset: str | None = None,
    fmt: str = "auto",
    options: IngestOptions = IngestOptions(),
) -> IngestSummary:
    """Ingest a drop; when the store changed (or was never versioned), version it and register the version."""
    summary = ingest(workspace, drop, dataset=dataset, fmt=fmt, options=options)
    summary.version = version_dataset(workspace, summary.dataset).to_dict()
    return summary


def version_dataset(workspace: Workspace, dataset: str) -> DataVersion:
    """Version ``data/`` with DVC (add + push) and register it (both idempotent when nothing changed)."""
    data_version = version_data(workspace)
    register_version(workspace, dataset, data_version, data_version.previous)
    return data_version


def register_version(
    workspace: Workspace, dataset: str, data_version: DataVersion, parent: str | None
) -> None:
    """Record a dataset version (with its counts) in the registry."""
    store = workspace.store(dataset)
    manifest = store.manifest
    statistics: dict[str, Any] = {
        "splits": manifest["split"].value_counts().to_dict(),
        "sources": manifest["source"].value_counts().to_dict(),
        "sites": manifest["site"].fillna("unknown").value_counts().to_dict(),
        "fs": store.info.fs,
        "n_samples": store.info.n_samples,
        "n_files": data_version.n_files,
        "size_bytes": data_version.size_bytes,
        "remote": data_version.remote,
    }
    with workspace.registry() as registry:
        known = {v.dvc_md5 for v in registry.dataset_versions(dataset)}
        # data.dvc may name a version this registry never saw (a fresh clone, another dataset's version)
        lineage_parent = parent if parent in known and parent != data_version.md5 else None
        registry.record_dataset_version(
            dataset,
            data_version.md5,
            git_rev=data_version.git_rev,
            n_records=len(manifest),
            n_quarantined=len(store.quarantine),
            n_patients=int(manifest["patient_key"].nunique()),
            statistics=statistics,
            parent_md5=lineage_parent,
        )


def list_versions(workspace: Workspace) -> list[dict[str, Any]]:
    """Versions known from the registry and from the local DVC cache, newest registry entries first."""
    current = current_version(workspace)
    seen: dict[str, dict[str, Any]] = {}
    with workspace.registry() as registry:
        registered = registry.dataset_versions()
    for info in registered:
        seen.setdefault(
            info.dvc_md5, {"md5": info.dvc_md5, "dataset": info.dataset, "known_from": "registry"}
        )
    cache = workspace.root / ".dvc" / "cache" / "files" / "md5"
    for path in sorted(cache.glob("*/*.dir")) if cache.is_dir() else []:
        md5 = path.parent.name + path.name
        seen.setdefault(md5, {"md5": md5, "dataset": None, "known_from": "local DVC cache"})
    return [{**item, "current": item["md5"] == current} for item in seen.values()]


def restore_version(workspace: Workspace, version: str) -> DataVersion:
    """Check out a version given by md5 or unique prefix."""
    matches = sorted({v["md5"] for v in list_versions(workspace) if v["md5"].startswith(version)})
    if len(matches) > 1:
        raise VersioningError(f"version prefix {version!r} is ambiguous: {', '.join(matches)}")
    return checkout_version(workspace, matches[0] if matches else version)
