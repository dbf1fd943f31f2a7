"""The package stage: a gated task model → a Bento → the artifact store → the registry.

``package(workspace, "superdiagnostic@3")`` refuses a model whose latest gate decision is not "pass" unless
``force=True`` with a ``reason`` (written to the audit log). It copies the task model and its
foundation model (sha256-verified against the registry) into BentoML's model store, builds the Bento
from ``serving/`` plus the ``components`` and ``schemas`` it imports (so the served code is the
packaged code), labels it with model version, dataset version, gate verdict and git revision, exports
it to ``<artifact store>/bentos/<name>/<version>.bento`` (a directory or any fsspec URL) and records
URI and sha256 with :meth:`Registry.register_bento`.

With ``PackageOptions(family=True)`` the Bento also holds the other task models of the model's task family
(:mod:`components.serving.family`) and routes each request by the leads it carries
(:mod:`components.serving.routing`). The registry records it under the base model (a Bento row names one
model); its members are in the Bento's ``members`` label, its model card and a ``bento.family`` audit entry.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from components.config import PACKAGE_ROOT
from components.models.task_model import load_task_model_config
from components.predictions.params import PredictionLogParams
from components.registry import GateDecisionInfo, ModelInfo, Registry
from components.registry.models import STAGES
from components.registry.provenance import code_version
from components.serving.artifacts import join_uri, store_file
from components.serving.bentostore import ensure_model, tag_part
from components.serving.card import CardContext, bento_card, build_card
from components.serving.errors import PackagingError, PackagingRefusedError
from components.serving.family import Family, FamilyMember, family_members
from components.serving.params import PackageParams, ServeParams
from components.serving.schemas import ModelCard
from components.tasks.windows import WindowParams
from components.workspace import Workspace

BENTOFILE = PACKAGE_ROOT / "serving" / "bentofile.yaml"
#: one build at a time per process: BentoML imports the service with process-wide effects (cwd, args),
#: and two builds sharing a foundation model would both add it to the model store
_BUILD_LOCK = threading.Lock()
#: what the Bento's source holds: the service and the library it imports (no tests, data or caches)
SOURCES = ("serving", "components", "schemas")


@dataclass(frozen=True)
class PackageOptions:
    """How to package: override a failed gate (``force`` with a ``reason``, audited), and whether the Bento
    serves the model's task family (``family``; members from ``stage`` when given, see
    :mod:`components.serving.family`)."""

    force: bool = False
    reason: str | None = None
    family: bool = False
    stage: str | None = None

    def __post_init__(self) -> None:
        if self.force and not (self.reason and self.reason.strip()):
            raise PackagingError("--force needs a --reason (it is written to the audit log)")
        if self.stage is not None and not self.family:
            raise PackagingError("--stage picks the models of the family's other tasks: it needs --family")
        if self.stage is not None and self.stage not in STAGES:
            raise PackagingError(f"unknown stage {self.stage!r}; the stages are {', '.join(STAGES)}")


@dataclass
class PackageResult:
    """A packaged Bento: its tag, where the archive lies, and its sha256 (as in the registry); for a family
    Bento, the other task models it serves and the family's tasks left out for want of a gated model."""

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
    members: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Bento:
    """One Bento to build: the task model and its foundation model (artifacts verified against the
    registry), the gate decision and whether it was overridden, the family's other members (none for one
    task), the ``serve:``, ``windows:`` and ``package:`` parameters, and the artifact store the archive
    goes to."""

    model: ModelInfo
    foundation: ModelInfo
    task_dir: Path
    foundation_dir: Path
    gate: GateDecisionInfo | None
    forced: bool
    family: Family | None
    serve: ServeParams
    windows: WindowParams
    prediction_log: PredictionLogParams
    pack: PackageParams
    artifact_store: str

    @property
    def members(self) -> tuple[FamilyMember, ...]:
        return self.family.members if self.family is not None else ()


def package(
    workspace: Workspace,
    model_ref: str,
    options: PackageOptions | None = None,
    *,
    flow_run_id: str | None = None,
) -> PackageResult:
    """Build, export and register the Bento of task model ``model_ref`` (``name@version`` or ``name``);
    ``flow_run_id`` (a Prefect flow run) is recorded on the registry run."""
    started = time.perf_counter()
    options = options or PackageOptions()
    with workspace.registry() as registry:
        model, gate, passed = _gated_model(registry, model_ref, options)
        foundation = _foundation_of(registry, model)
        bento = _Bento(
            model=model,
            foundation=foundation,
            task_dir=registry.verify_artifact(model.ref),
            foundation_dir=registry.verify_artifact(foundation.ref),
            gate=gate,
            forced=options.force and not passed,
            family=family_members(registry, model, options.stage) if options.family else None,
            serve=workspace.params.serve,
            windows=workspace.params.windows,
            prediction_log=workspace.params.prediction_log,
            pack=workspace.params.package,
            artifact_store=workspace.settings.resolved_artifact_store,
        )
        parameters = {"model": model.ref, "force": options.force, "reason": options.reason}
        parameters |= {"family": options.family, "stage": options.stage}
        with registry.run("package", parameters=parameters, prefect_flow_run_id=flow_run_id) as run_id:
            result = _build_and_export(registry, bento, run_id)
            with registry.atomic():
                registry.register_bento(
                    result.tag, model=model.ref, artifact_uri=result.uri, sha256=result.sha256, run_id=run_id
                )
                if result.forced:
                    _audit_forced(registry, model, result.tag, gate, options.reason or "")
                if bento.family is not None:
                    _audit_family(registry, bento, result.tag, options.stage)
    result.elapsed_s = round(time.perf_counter() - started, 2)
    return result


def _gated_model(
    registry: Registry, model_ref: str, options: PackageOptions
) -> tuple[ModelInfo, GateDecisionInfo | None, bool]:
    """The task model to package, its latest gate decision and whether it passed (refused unless it did
    or ``force``)."""
    model = registry.model(model_ref)
    if model.kind != "task" or model.task is None:
        raise PackagingError(f"{model.ref} is a {model.kind} model; only task models are packaged")
    gate = registry.latest_gate_decision(model.ref)
    passed = gate is not None and gate.verdict == "pass"
    if not passed and not options.force:
        raise PackagingRefusedError(
            f"refusing to package {model.ref}: it {_gate_problem(gate)} (use --force --reason to override)"
        )
    return model, gate, passed


def _foundation_of(registry: Registry, model: ModelInfo) -> ModelInfo:
    if model.parent is None:
        raise PackagingError(f"{model.ref} names no foundation model (its parent); /embed needs one")
    foundation = registry.model(model.parent)
    if foundation.kind != "foundation":
        raise PackagingError(f"{model.ref} descends from {foundation.ref}, not from a foundation model")
    return foundation


def _gate_problem(gate: GateDecisionInfo | None) -> str:
    if gate is None:
        return "has no gate decision"
    return f"failed gate {gate.policy}: {'; '.join(gate.reasons) or 'no reasons given'}"


def _build_and_export(registry: Registry, bento: _Bento, run_id: int) -> PackageResult:
    """Build the Bento in a temporary context, export it and copy the archive to the artifact store."""
    import bentoml

    model, pack = bento.model, bento.pack
    assert model.task is not None
    suffix = "-family" if bento.family is not None else ""
    name = tag_part(f"{pack.bento_prefix}-{model.task}{suffix}")
    bento_version = tag_part(f"v{model.version}-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}")
    tag = f"{name}:{bento_version}"
    git_revision = code_version()
    card = _card(registry, bento, CardContext(tag, git_revision, registry.actor, bento.windows))
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
        members=[m.model.ref for m in bento.members],
        left_out=list(bento.family.left_out) if bento.family is not None else [],
    )


def _card(registry: Registry, bento: _Bento, context: CardContext) -> ModelCard:
    """The Bento's card: the base model's, with a card for each other member of its family."""
    base = build_card(
        bento.model,
        load_task_model_config(bento.task_dir),
        foundation=bento.foundation.ref,
        gate=bento.gate,
        forced=bento.forced,
        metrics=registry.metrics(bento.model.ref),
        context=context,
    )
    members = [
        build_card(
            member.model,
            load_task_model_config(member.task_dir),
            foundation=member.model.parent or "",
            gate=member.gate,
            forced=False,
            metrics=registry.metrics(member.model.ref),
            context=context,
        )
        for member in bento.members
    ]
    return bento_card(base, members)


def _labels(bento: _Bento, git_revision: str) -> dict[str, str]:
    """The Bento's labels: model and dataset version, gate verdict, foundation model, the family's other
    members (``none`` for one task model), git revision."""
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
        "members": ",".join(m.model.ref for m in bento.members) or "none",
        "git_revision": git_revision,
    }


def _build_from_store(
    bento: _Bento, context: Path, tag: str, labels: dict[str, str], description: str
) -> Any:
    """Every model copied into BentoML's model store, then the Bento of ``context`` built as ``tag``; one
    build at a time. The Bento holds one foundation model, the base model's (``/embed``, ``/zero_shot``):
    a task model carries its fine-tuned encoder, so members need none of their own."""
    with _BUILD_LOCK:
        task_tag = _store_model(bento.model, bento.task_dir, bento.pack)
        member_tags = [_store_model(m.model, m.task_dir, bento.pack) for m in bento.members]
        foundation_tag = _store_model(bento.foundation, bento.foundation_dir, bento.pack)
        return _build(
            context,
            tag,
            labels=labels,
            description=description,
            args={
                "task_model": task_tag,
                "foundation_model": foundation_tag,
                "members": member_tags,
                "serve": bento.serve.model_dump(),
                "windows": bento.windows.model_dump(),
                "prediction_log": bento.prediction_log.model_dump(),
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


def _audit_family(registry: Registry, bento: _Bento, tag: str, stage: str | None) -> None:
    """Audit entry naming the members of a family Bento (the registry's Bento row names the base model)."""
    members = [m.model.ref for m in bento.members]
    left_out = list(bento.family.left_out) if bento.family is not None else []
    registry.record_audit(
        action="bento.family",
        entity_type="bento",
        entity_id=tag,
        summary=f"bento {tag} serves {bento.model.ref} and its family members {', '.join(members)}",
        details={"base": bento.model.ref, "members": members, "left_out": left_out, "stage": stage},
    )
