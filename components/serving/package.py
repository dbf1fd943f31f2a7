"""The package stage: a gated task model → a Bento → the artifact store → the registry.

``package(workspace, "superdiagnostic@3")`` refuses a model whose latest gate decision is not "pass" unless
``force=True`` with a ``reason`` (written to the audit log). It copies the task model and its
foundation model (sha256-verified against the registry) into BentoML's model store, builds the Bento
from ``serving/`` plus the ``components`` and ``schemas`` it imports (so the served code is the
packaged code), labels it with model version, dataset version, gate verdict and git revision, exports
it to ``<artifact store>/bentos/<name>/<version>.bento`` (a directory or any fsspec URL) and records
URI and sha256 with :meth:`Registry.register_bento`.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from components.config import PACKAGE_ROOT
from components.models.task_model import load_task_model_config
from components.registry import GateDecisionInfo, ModelInfo, Registry
from components.registry.provenance import code_version
from components.serving.artifacts import join_uri, store_file
from components.serving.bentostore import ensure_model, tag_part
from components.serving.card import build_card
from components.serving.errors import PackagingError, PackagingRefusedError
from components.serving.params import PackageParams, ServeParams
from components.workspace import Workspace

BENTOFILE = PACKAGE_ROOT / "serving" / "bentofile.yaml"
#: one build at a time per process: BentoML imports the service with process-wide effects (cwd, args),
#: and two builds sharing a foundation model would both add it to the model store
_BUILD_LOCK = threading.Lock()
#: what the Bento's source holds: the service and the library it imports (no tests, data or caches)
SOURCES = ("serving", "components", "schemas")


@dataclass
class PackageResult:
    """A packaged Bento: its tag, where the archive lies, and its sha256 (as in the registry)."""

    model: str
    task: str
    tag: str
    uri: str
    sha256: str
    gate_verdict: str
    forced: bool
    size_bytes: int
    registry_run_id: int
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Bento:
    """One Bento to build: the task model and its foundation model (artifacts verified against the
    registry), the gate decision and whether it was overridden, the ``serve:`` and ``package:``
    parameters, and the artifact store the archive goes to."""

    model: ModelInfo
    foundation: ModelInfo
    task_dir: Path
    foundation_dir: Path
    gate: GateDecisionInfo | None
    forced: bool
    serve: ServeParams
    pack: PackageParams
    artifact_store: str


def package(
    workspace: Workspace,
    model_ref: str,
    *,
    force: bool = False,
    reason: str | None = None,
    flow_run_id: str | None = None,
) -> PackageResult:
    """Build, export and register the Bento of task model ``model_ref`` (``name@version`` or ``name``);
    ``flow_run_id`` (a Prefect flow run) is recorded on the registry run."""
    started = time.perf_counter()
    serve, pack = workspace.params.serve, workspace.params.package
    if force and not (reason and reason.strip()):
        raise PackagingError("--force needs a --reason (it is written to the audit log)")
    with workspace.registry() as registry:
        model = registry.model(model_ref)
        if model.kind != "task" or model.task is None:
            raise PackagingError(f"{model.ref} is a {model.kind} model; only task models are packaged")
        gate = registry.latest_gate_decision(model.ref)
        passed = gate is not None and gate.verdict == "pass"
        if not passed and not force:
            raise PackagingRefusedError(
                f"refusing to package {model.ref}: it {_gate_problem(gate)} "
                "(use --force --reason to override)"
            )
        if model.parent is None:
            raise PackagingError(f"{model.ref} names no foundation model (its parent); /embed needs one")
        foundation = registry.model(model.parent)
        if foundation.kind != "foundation":
            raise PackagingError(f"{model.ref} descends from {foundation.ref}, not from a foundation model")
        bento = _Bento(
            model=model,
            foundation=foundation,
            task_dir=registry.verify_artifact(model.ref),
            foundation_dir=registry.verify_artifact(foundation.ref),
            gate=gate,
            forced=force and not passed,
            serve=serve,
            pack=pack,
            artifact_store=workspace.settings.resolved_artifact_store,
        )
        parameters = {"model": model.ref, "force": force, "reason": reason}
        with registry.run("package", parameters=parameters, prefect_flow_run_id=flow_run_id) as run_id:
            result = _build_and_export(registry, bento, run_id)
            with registry.atomic():
                registry.register_bento(
                    result.tag, model=model.ref, artifact_uri=result.uri, sha256=result.sha256, run_id=run_id
                )
                if result.forced:
                    _audit_forced(registry, model, result.tag, gate, reason or "")
    result.elapsed_s = round(time.perf_counter() - started, 2)
    return result


def _gate_problem(gate: GateDecisionInfo | None) -> str:
    if gate is None:
        return "has no gate decision"
    return f"failed gate {gate.policy}: {'; '.join(gate.reasons) or 'no reasons given'}"


def _build_and_export(registry: Registry, bento: _Bento, run_id: int) -> PackageResult:
    """Build the Bento in a temporary context, export it and copy the archive to the artifact store."""
    import bentoml

    model, pack = bento.model, bento.pack
    assert model.task is not None
    cfg = load_task_model_config(bento.task_dir)
    name = tag_part(f"{pack.bento_prefix}-{model.task}")
    bento_version = tag_part(f"v{model.version}-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}")
    tag = f"{name}:{bento_version}"
    git_revision = code_version()
    card = build_card(
        model,
        cfg,
        bento_tag=tag,
        foundation=bento.foundation.ref,
        gate=bento.gate,
        forced=bento.forced,
        metrics=registry.metrics(model.ref),
        git_revision=git_revision,
        actor=registry.actor,
    )
    labels = _labels(bento, git_revision)
    with tempfile.TemporaryDirectory(prefix="ecgops-bento-") as tmp:
        context = Path(tmp) / "context"
        _write_context(context, card.model_dump_json(indent=2))
        built = _build_from_store(bento, context, tag, labels, _readme(card.model.ref, tag, labels))
        archive = Path(tmp) / f"{name}-{bento_version}.{pack.export_format}"
        exported = Path(
            bentoml.bentos.export_bento(built.tag, str(archive), output_format=pack.export_format)
        )
        uri = join_uri(bento.artifact_store, "bentos", name, exported.name)
        digest = store_file(exported, uri)
        size = exported.stat().st_size
    return PackageResult(
        model=model.ref,
        task=model.task,
        tag=str(built.tag),
        uri=uri,
        sha256=digest,
        gate_verdict=labels["gate_verdict"],
        forced=bento.forced,
        size_bytes=size,
        registry_run_id=run_id,
        elapsed_s=0.0,
    )


def _labels(bento: _Bento, git_revision: str) -> dict[str, str]:
    """The Bento's labels: model and dataset version, gate verdict, foundation model, git revision."""
    model, gate = bento.model, bento.gate
    return {
        "task": model.task or "",
        "model": model.ref,
        "model_version": str(model.version),
        "dataset_version": model.dataset_version_md5 or "none",
        "gate_verdict": gate.verdict if gate is not None else "none",
        "gate_policy": gate.policy if gate is not None else "none",
        "forced": str(bento.forced).lower(),
        "foundation": bento.foundation.ref,
        "git_revision": git_revision,
    }


def _build_from_store(
    bento: _Bento, context: Path, tag: str, labels: dict[str, str], description: str
) -> Any:
    """Both models copied into BentoML's model store, then the Bento of ``context`` built as ``tag``; one
    build at a time."""
    with _BUILD_LOCK:
        task_tag = _store_model(bento.model, bento.task_dir, bento.pack)
        foundation_tag = _store_model(bento.foundation, bento.foundation_dir, bento.pack)
        return _build(
            context,
            tag,
            labels=labels,
            description=description,
            args={
                "task_model": task_tag,
                "foundation_model": foundation_tag,
                "serve": bento.serve.model_dump(),
            },
        )


def _build(context: Path, tag: str, *, labels: dict[str, str], description: str, args: dict[str, Any]) -> Any:
    """``bentoml build`` of ``context`` as ``tag`` (name:version) per ``serving/bentofile.yaml``."""
    import bentoml

    config = yaml.safe_load(BENTOFILE.read_text())
    name, _, bento_version = tag.partition(":")
    python = {**config["python"], "packages": _pinned(config["python"]["packages"])}
    _forget_service_module()
    try:
        return bentoml.bentos.build(
            config["service"],
            name=name,
            version=bento_version,
            labels=labels,
            description=description,
            include=config["include"],
            exclude=config["exclude"],
            python=python,
            args=args,
            build_ctx=str(context),
        )
    finally:
        _forget_service_module()


def _store_model(model: ModelInfo, directory: Path, pack: PackageParams) -> str:
    """Copy a registered model's artifact into BentoML's model store; returns its BentoML tag."""
    tag = (
        f"{tag_part(f'{pack.bento_prefix}-{model.name}')}:{tag_part(f'v{model.version}-{model.sha256[:12]}')}"
    )
    labels = {"ecgops_model": model.ref, "kind": model.kind, "sha256": model.sha256, "task": model.task or ""}
    metadata = {"artifact_uri": model.artifact_uri, "dataset_version": model.dataset_version_md5 or ""}
    try:
        return ensure_model(tag, directory, labels=labels, metadata=metadata)
    except ValueError as exc:
        raise PackagingError(str(exc)) from exc


def _write_context(context: Path, card_json: str) -> None:
    """The Bento's build context: the service, the ``components`` library and ``schemas``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "model_card.json")
    for source in SOURCES:
        shutil.copytree(PACKAGE_ROOT / source, context / source, ignore=ignore)
    (context / "serving" / "model_card.json").write_text(card_json)


def _forget_service_module() -> None:
    """Drop an imported ``serving`` package so BentoML imports the one in the build context."""
    for module in [m for m in sys.modules if m == "serving" or m.startswith("serving.")]:
        del sys.modules[module]


def _pinned(packages: list[str]) -> list[str]:
    """``name==installed version`` for each runtime requirement (local builds such as ``+cpu`` dropped:
    the same release from the package index)."""
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package).split('+')[0]}")
        except PackageNotFoundError as exc:
            raise PackagingError(f"runtime requirement {package!r} is not installed here") from exc
    return pins


def _readme(ref: str, tag: str, labels: dict[str, str]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in labels.items())
    return (
        f"# {tag}\n\necgops ECG service for task model {ref}.\n\n| label | value |\n| --- | --- |\n{rows}\n\n"
        f"Serve: `bentoml serve {tag}` (or `ecgops serve {tag}`); API docs at `/docs.json`.\n"
    )


def _audit_forced(
    registry: Registry, model: ModelInfo, tag: str, gate: GateDecisionInfo | None, reason: str
) -> None:
    """Audit entry for a Bento built although the gate did not pass (inside the registering transaction)."""
    registry.record_audit(
        action="bento.forced",
        entity_type="bento",
        entity_id=tag,
        summary=f"packaged {model.ref} although it {_gate_problem(gate)}",
        reason=reason,
        details={"model": model.ref, "gate_decision_id": gate.id if gate else None, "forced": True},
    )
