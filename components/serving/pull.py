"""Pull: the Bento of the model in a stage (``TASK@STAGE``) or a registered Bento tag → the local store.

The archive is fetched from wherever the registry says it lies, its sha256 checked against the
registry, then imported into BentoML's Bento store (``BENTOML_HOME``, or ``bentoml_home``), replacing
a local copy of the same tag. ``bentoml serve TAG`` serves it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from components.registry import BentoInfo, Registry
from components.registry.errors import ArtifactMismatchError
from components.serving.artifacts import fetch_file
from components.serving.bentostore import bentoml_home
from components.serving.errors import PackagingError
from components.workspace import Workspace


@dataclass
class PullResult:
    """A pulled Bento and where it now lives."""

    target: str
    tag: str
    model: str
    task: str | None
    uri: str
    sha256: str
    bentoml_home: str
    replaced: bool
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_bento(registry: Registry, target: str) -> BentoInfo:
    """``TASK@STAGE`` → the newest Bento of the task's model in that stage; otherwise a Bento tag."""
    if "@" in target and ":" not in target:
        task, _, stage = target.partition("@")
        if not task or not stage:
            raise PackagingError(f"{target!r} is not TASK@STAGE (e.g. superdiagnostic@production)")
        return registry.bento_for(task, stage)
    return registry.bento(target)


def pull(workspace: Workspace, target: str, *, home: Path | None = None) -> PullResult:
    """Fetch, verify (sha256) and import the Bento ``target`` names (in ``workspace``'s registry); ``home``:
    another ``BENTOML_HOME``."""
    import bentoml
    from bentoml.exceptions import NotFound

    started = time.perf_counter()
    with workspace.registry() as registry:
        info = resolve_bento(registry, target)
    with tempfile.TemporaryDirectory(prefix="ecgops-pull-") as tmp:
        local = Path(tmp) / PurePosixPath(info.artifact_uri.rstrip("/")).name
        actual = fetch_file(info.artifact_uri, local)
        if actual != info.sha256:
            raise ArtifactMismatchError(f"bento {info.tag}", info.artifact_uri, info.sha256, actual)
        with bentoml_home(home) as store_home:
            try:
                bentoml.bentos.get(info.tag)
                bentoml.bentos.delete(info.tag)
                replaced = True
            except NotFound:
                replaced = False
            imported = bentoml.bentos.import_bento(str(local))
    if str(imported.tag) != info.tag:
        raise PackagingError(f"the archive of {info.tag} holds the Bento {imported.tag}")
    return PullResult(
        target=target,
        tag=info.tag,
        model=info.model,
        task=info.task,
        uri=info.artifact_uri,
        sha256=info.sha256,
        bentoml_home=str(store_home),
        replaced=replaced,
        elapsed_s=round(time.perf_counter() - started, 2),
    )
