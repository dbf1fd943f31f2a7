"""One ecgops workspace: its settings, its ``params.yaml`` (read once), its registry, stores and run folders.

Everything that needs the workspace gets a :class:`Workspace` (the CLI, the flows, the ``dvc.yaml`` stages
and the dashboards build one) instead of reading ``params.yaml`` or opening the registry by hand::

    workspace = Workspace.current()          # the ECGOPS_* environment
    workspace.params.finetune.epochs         # every section typed; a misspelt key was an error at load
    with workspace.registry() as registry:   # closed after the block
        registry.models(task="AF")
    workspace.store()                        # the canonical store of params.yaml's dataset
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from components.config import Params, ParamsError, Settings, get_settings, load_params, raw_params

if TYPE_CHECKING:
    from components.io.store import DatasetStore
    from components.predictions.log import PredictionLog
    from components.registry import Registry


class Workspace:
    """Settings (where things live) and parameters (what the stages do) of one workspace."""

    def __init__(self, settings: Settings, params: Params | None = None) -> None:
        self.settings = settings
        if params is not None:
            self.__dict__["params"] = params

    @classmethod
    def current(cls) -> Workspace:
        """The workspace the ``ECGOPS_*`` environment names (its settings cached for the process)."""
        return cls(get_settings())

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def root(self) -> Path:
        return self.settings.workspace

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    @cached_property
    def params(self) -> Params:
        """``params.yaml`` at the workspace root, parsed once; :class:`~components.config.ParamsError`
        names a misspelt or unknown key."""
        return load_params(self.root / "params.yaml")

    def params_as_written(self, section: str) -> dict[str, Any]:
        """One section of ``params.yaml`` as the file writes it, before defaults or a recipe fill it in
        (``{}`` when absent): what resolving ``pretrain:`` over another recipe starts from."""
        raw = raw_params(self.root / "params.yaml")
        written = raw.get(section) if isinstance(raw, dict) else None
        return dict(written) if isinstance(written, dict) else {}

    @property
    def default_dataset(self) -> str:
        """The dataset ``params.yaml`` names (``ingest.dataset``)."""
        return self.params.ingest.dataset

    def dataset(self, name: str | None = None) -> str:
        """``name``, or the default dataset when none is given."""
        return name or self.default_dataset

    def with_registry(self, url: str | None) -> Workspace:
        """This workspace with its registry at ``url`` instead (itself when ``url`` is None)."""
        if url is None:
            return self
        return Workspace(self.settings.model_copy(update={"registry_url": url}), self.__dict__.get("params"))

    def with_params(self, **sections: BaseModel) -> Workspace:
        """This workspace with some ``params.yaml`` sections replaced, e.g. ``with_params(pretrain=p)``
        (a benchmark or test that trains with other parameters than the file's)."""
        unknown = sorted(set(sections) - set(Params.model_fields))
        if unknown:
            raise ParamsError(f"params.yaml has no section {', '.join(unknown)}")
        return Workspace(self.settings, Params.model_validate({**dict(self.params), **sections}))

    @property
    def registry_url(self) -> str:
        return self.settings.resolved_registry_url

    def registry_exists(self) -> bool:
        """False for a SQLite registry file that was never created (a fresh workspace): readers such as the
        dashboard then show first steps instead of creating one."""
        from sqlalchemy.engine import make_url

        url = make_url(self.registry_url)
        if url.get_backend_name() != "sqlite":
            return True
        database = url.database or ""
        return database in ("", ":memory:") or Path(database).is_file()

    def registry(self, *, actor: str | None = None) -> Registry:
        """The workspace's registry: ``with workspace.registry() as registry:`` closes it after the block;
        a long-lived process (the dashboard) keeps the handle."""
        from components.registry import open_registry

        return open_registry(self.registry_url, actor=actor or self.settings.actor)

    def store_dir(self, dataset: str | None = None) -> Path:
        """``data/<dataset>``, the canonical store's folder (it may not exist yet)."""
        return self.settings.data_dir / self.dataset(dataset)

    def store(self, dataset: str | None = None, manifest_columns: list[str] | None = None) -> DatasetStore:
        """The canonical store of ``dataset`` (default: params.yaml's)."""
        from components.io.store import DatasetStore

        return DatasetStore.open(self.store_dir(dataset), manifest_columns)

    def prediction_log(self) -> PredictionLog:
        """The prediction log: ``ECGOPS_PREDICTION_LOG``, else ``prediction_log.url`` of params.yaml (a
        relative folder is under the workspace root), else ``<state dir>/predictions``."""
        from components.predictions.log import PredictionLog

        return PredictionLog(self.params.prediction_log.resolved_url(self.settings))

    def store_datasets(self) -> list[str]:
        """Datasets present in the checked-out canonical store (``data/<name>/store.json``)."""
        root = self.settings.data_dir
        if not root.is_dir():
            return []
        return sorted(p.parent.name for p in root.glob("*/store.json"))

    def datasets(self, registry: Registry | None) -> list[str]:
        """Datasets known to ``registry`` or present in ``data/``; params.yaml's default first."""
        names = set(self.store_datasets())
        if registry is not None:
            names.update(registry.dataset_names())
        default = self.default_dataset
        return ([default] if default in names else []) + sorted(names - {default})

    def validation_dir(self, dataset: str) -> Path:
        """Where the validation runs of ``dataset`` keep their reports, one folder per run."""
        return self.state_dir / "validation" / dataset

    def pretrain_dir(self, dataset: str) -> Path:
        """The pretraining run folder of ``dataset`` (checkpoints, ``run.json``)."""
        return self.state_dir / "pretrain" / dataset

    def finetune_dir(self, task: str, dataset: str, mode: str, label_fraction: float) -> Path:
        """The fine-tuning run folder of one task, dataset, mode and label fraction."""
        return self.state_dir / "finetune" / task / dataset / f"{mode}-{label_fraction:g}"
