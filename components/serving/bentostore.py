"""BentoML's local stores: which home they live in, tags, and copying model artifacts into them.

``BENTOML_HOME`` (default ``~/bentoml``) holds BentoML's model and Bento stores; :func:`bentoml_home`
points them at another directory for a while (``ecgops bento pull --to DIR``, tests). Usage tracking is
off: nothing here talks to the network.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

_TAG_CHARS = re.compile(r"[^a-z0-9._-]+")
TAG_MAX = 63


def tag_part(text: str, max_length: int = TAG_MAX) -> str:
    """``text`` as a valid BentoML tag name or version: lower case, ``[a-z0-9._-]``, alphanumeric ends."""
    cleaned = _TAG_CHARS.sub("-", text.lower())[:max_length].strip("-._")
    if not cleaned:
        raise ValueError(f"{text!r} has no characters usable in a BentoML tag")
    return cleaned


@contextmanager
def bentoml_home(path: Path | None) -> Iterator[Path]:
    """Point BentoML's model store, Bento store and temporary build space at ``path`` (None: leave them)."""
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    if path is None:
        yield Path(BentoMLContainer.bentoml_home.get())
        return
    home = path.resolve()
    for sub in ("bentos", "models", "tmp", "envs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    container = BentoMLContainer
    overrides: list[tuple[Any, Any]] = [
        (container.bentoml_home, str(home)),
        (container.bento_store_dir, str(home / "bentos")),
        (container.model_store_dir, str(home / "models")),
        (container.tmp_bento_store_dir, str(home / "tmp")),
        (container.env_store_dir, str(home / "envs")),
        (container.bento_store, BentoStore(str(home / "bentos"))),
        (container.tmp_bento_store, BentoStore(str(home / "tmp"))),
        (container.model_store, ModelStore(str(home / "models"))),
    ]
    saved = [(provider, provider._override) for provider, _ in overrides]
    try:
        for provider, value in overrides:
            provider.set(value)
        yield home
    finally:
        for provider, value in saved:
            provider._override = value


def ensure_model(tag: str, source: Path, *, labels: dict[str, str], metadata: dict[str, Any]) -> str:
    """Copy the artifact directory ``source`` into BentoML's model store as ``tag`` (kept if present)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.info.labels.get("sha256") != labels.get("sha256"):
            raise ValueError(
                f"BentoML model {tag} already exists with another artifact (sha256 "
                f"{existing.info.labels.get('sha256')}); remove it with `bentoml models delete {tag}`"
            )
        return str(existing.tag)
    with bentoml.models.create(tag, labels=labels, metadata=metadata) as model:
        for item in source.iterdir():
            target = Path(model.path) / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
    return str(model.tag)
