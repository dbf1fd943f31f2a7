"""Which foundation model a fine-tuning run starts from: a registry reference, a directory, or the newest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.config import Settings
from components.finetune.errors import FinetuneError
from components.models.checkpoint import CONFIG, load_config
from components.models.config import FoundationConfig
from components.workspace import Workspace


@dataclass(frozen=True)
class FoundationChoice:
    """A foundation model: its registry reference (None when it is not registered) and artifact."""

    ref: str | None
    path: Path
    config: FoundationConfig


def _registered_ref(settings: Settings, path: Path) -> str | None:
    with Workspace(settings).registry() as registry:
        for info in registry.models(kind="foundation"):
            if Path(info.artifact_uri).resolve() == path.resolve():
                return info.ref
    return None


def resolve_foundation(from_model: str | None, settings: Settings) -> FoundationChoice:
    """``from_model`` as a foundation model: a directory holding one, a registry reference
    (``ecg-fm@2``, ``ecg-fm``), or None for the newest registered foundation model.

    Registered artifacts are checked against their sha256 before use.
    """
    from components.registry import NotFoundError

    if from_model is not None and (Path(from_model) / CONFIG).is_file():
        path = Path(from_model).resolve()
        return FoundationChoice(_registered_ref(settings, path), path, load_config(path))
    with Workspace(settings).registry() as registry:
        if from_model is None:
            newest = registry.models(kind="foundation", limit=1)
            if not newest:
                raise FinetuneError(
                    "no foundation model is registered: run `ecgops pretrain` first, pass --from, "
                    "or train a baseline with --mode scratch"
                )
            info = newest[0]
        else:
            try:
                info = registry.model(from_model)
            except NotFoundError:
                raise FinetuneError(
                    f"--from {from_model}: neither a registered model nor a directory with {CONFIG}"
                ) from None
            if info.kind != "foundation":
                raise FinetuneError(
                    f"--from {info.ref} is a {info.kind} model; it must be a foundation model"
                )
        path = registry.verify_artifact(info.ref)
    return FoundationChoice(info.ref, path, load_config(path))
