"""Fingerprints the cache keys are built from: code, parameters, drops, stores, policies, decisions.

Each is a short hex digest of exactly what a stage's output depends on, so a stage re-runs when (and only
when) one of them changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from components.config import PACKAGE_ROOT, Settings

#: the source a stage's result depends on, relative to the package root
#: The code a stage's cached result depends on: the stage's components, and where its task and the typed
#: result it returns are written (a change to either must not hand back a result of the old shape).
_TASK_CODE = ("components/orchestration/outcomes.py",)
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "ingest": ("components/io", "components/config.py", "schemas/leads.yaml", "flows/data.py", *_TASK_CODE),
    "validate": (
        "components/validation",
        "components/quality",
        "components/io/store.py",
        "schemas/validation",
        "schemas/vocab",
        "flows/data.py",
        *_TASK_CODE,
    ),
    "version": ("components/io/versioning.py", "components/io/datasets.py", "flows/data.py", *_TASK_CODE),
    "pretrain": (
        "components/training",
        "components/models",
        "components/metrics",
        "components/runs",
        "components/quality",
        "components/io/store.py",
        "components/io/store_view.py",
        "schemas/prompts",
        "schemas/recipes",
        "flows/training.py",
        *_TASK_CODE,
    ),
    "finetune": (
        "components/finetune",
        "components/tasks",
        "components/models",
        "components/metrics",
        "components/runs",
        "components/training/batches.py",
        "components/io/store.py",
        "components/io/store_view.py",
        "components/io/canonical.py",
        "schemas/tasks",
        "schemas/mappings",
        "flows/training.py",
        *_TASK_CODE,
    ),
    "evaluate": (
        "components/evaluation",
        "components/tasks",
        "components/models",
        "components/metrics",
        "components/io/store_view.py",
        "components/io/canonical.py",
        "schemas/gates",
        "schemas/tasks",
        "schemas/mappings",
        "flows/release.py",
        *_TASK_CODE,
    ),
    "package": (
        "components/serving",
        "components/packaging",
        "components/models",
        "serving",
        "flows/release.py",
        *_TASK_CODE,
    ),
}
_SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".txt")


def digest(value: Any) -> str:
    """sha256 of a JSON-serialisable value (keys sorted), as hex."""
    payload = json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()


@cache
def code_version(stage: str) -> str:
    """Digest of the source files a stage depends on (paths and contents; missing paths count too)."""
    h = hashlib.sha256()
    for relative in STAGE_CODE[stage]:
        root = PACKAGE_ROOT / relative
        files = [root] if root.is_file() else sorted(_source_files(root))
        h.update(f"{relative}:{len(files)}\n".encode())
        for path in files:
            h.update(str(path.relative_to(PACKAGE_ROOT)).encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _source_files(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return (
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts
    )


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or ``absent``."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


def drop_fingerprint(drop: Path) -> str:
    """Identity of a drop folder: every file's relative path, size and modification time."""
    drop = drop.resolve()
    if not drop.exists():
        raise FileNotFoundError(f"drop folder {drop} does not exist")
    entries = []
    for base, dirs, files in os.walk(drop):
        dirs.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(base, name))
            entries.append((os.path.relpath(os.path.join(base, name), drop), stat.st_size, stat.st_mtime_ns))
    return digest([str(drop), entries])


def store_state(settings: Settings, dataset: str) -> str:
    """Identity of a dataset's canonical store now: its description, manifest and quarantine tables.

    Signal shards are written once and only ever referenced through the manifest, so these three files
    change whenever the store's content does.
    """
    root = settings.data_dir / dataset
    if not (root / "store.json").is_file():
        return "absent"
    return digest(
        [file_digest(root / name) for name in ("store.json", "manifest.parquet", "quarantine.parquet")]
    )


def data_state(settings: Settings) -> str:
    """Identity of everything under ``data/`` that DVC versions (every dataset's store)."""
    data = settings.data_dir
    datasets = sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    return digest({name: store_state(settings, name) for name in datasets})


def steward_decisions_fingerprint(settings: Settings, dataset: str) -> str:
    """Identity of the steward decisions on a dataset (a new accept/reject changes validation)."""
    from components.workspace import Workspace

    with Workspace(settings).registry() as registry:
        decisions = registry.steward_decisions(dataset)
    return digest(sorted((d.record_id, d.decision, d.id) for d in decisions.values()))


def workspace_identity(settings: Settings) -> dict[str, str]:
    """Where results land: part of every key, so two workspaces sharing a Prefect home never mix."""
    return {
        "workspace": str(settings.workspace.resolve()),
        "registry": settings.resolved_registry_url,
        "artifacts": settings.resolved_artifact_store,
    }
