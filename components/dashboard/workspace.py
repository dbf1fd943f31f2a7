"""The workspace a dashboard session shows: settings, whether a registry exists yet, datasets, first steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from components.config import Settings, load_params
from components.registry import Registry, open_registry

#: what each page tells a newcomer to run when it has nothing to show yet
FIRST_STEPS: dict[str, str] = {
    "workspace": (
        "This workspace has no registry yet. Run the demo (`make demo`, i.e. `ecgops run --drop samples`) "
        "or ingest a hospital drop: `ecgops ingest DROP --dataset NAME`, then `ecgops validate "
        "--dataset NAME`."
    ),
    "quality": (
        "No validation run yet. Ingest a drop (`ecgops ingest DROP --dataset NAME`), then run "
        "`ecgops validate --dataset NAME` (or `ecgops run --drop DROP` for the whole flow)."
    ),
    "datasets": (
        "No dataset version yet. `ecgops ingest DROP --dataset NAME` reads a drop into the canonical store, "
        "versions it with DVC and records the version here."
    ),
    "models": (
        "No model yet. Pretrain a foundation model with `ecgops pretrain --dataset NAME` (or run the whole "
        "flow with `ecgops run --drop DROP`), then fine-tune task models on it."
    ),
    "deployments": (
        "No task model is in staging or production yet. Fine-tune and evaluate a task model, package it "
        "as a Bento, then promote it: `ecgops registry promote MODEL staging`."
    ),
}


@dataclass(frozen=True)
class Workspace:
    """One ecgops workspace (``ECGOPS_*`` settings) as the dashboard sees it."""

    settings: Settings

    @classmethod
    def from_environment(cls) -> Workspace:
        """The workspace named by the ``ECGOPS_*`` environment (read afresh, not the cached settings)."""
        return cls(Settings())

    @property
    def registry_url(self) -> str:
        return self.settings.resolved_registry_url

    def registry_exists(self) -> bool:
        """False for a SQLite registry file that was never created (a fresh workspace); the dashboard only
        reads, so it does not create one."""
        url = make_url(self.registry_url)
        if url.get_backend_name() != "sqlite":
            return True
        database = url.database or ""
        return database in ("", ":memory:") or Path(database).is_file()

    def open_registry(self) -> Registry:
        """A registry handle for this workspace (callers keep one per process)."""
        return open_registry(self.registry_url)

    def default_dataset(self) -> str:
        """The dataset ``params.yaml`` names (``ingest.dataset``)."""
        return load_params(self.settings.workspace / "params.yaml").ingest.dataset

    def store_datasets(self) -> list[str]:
        """Datasets present in the checked-out canonical store (``data/<name>/store.json``)."""
        root = self.settings.data_dir
        if not root.is_dir():
            return []
        return sorted(p.parent.name for p in root.glob("*/store.json"))

    def datasets(self, registry: Registry | None) -> list[str]:
        """Datasets known to the registry or present in ``data/``; the params.yaml default first."""
        names = set(self.store_datasets())
        if registry is not None:
            names.update(registry.dataset_names())
        default = self.default_dataset()
        return ([default] if default in names else []) + sorted(names - {default})
