"""Lineage trees, both ways, in a constant number of queries.

Up (from a Bento or model): one recursive CTE collects the model and its parent models, then one query per
related table loads their runs, dataset versions, validation runs, gate decisions and stages.
Down (from a dataset version or model): one recursive CTE collects every model trained on the dataset
version (or the model itself) and every model fine-tuned from those, then their Bentos and stages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import CTE, Select, select
from sqlalchemy.orm import Session

from components.registry.models import (
    Bento,
    Dataset,
    DatasetVersion,
    GateDecision,
    Model,
    Run,
    StageAssignment,
    ValidationRun,
)
from components.registry.views import LineageNode, aware


def up_from_bento(s: Session, bento_id: int) -> LineageNode:
    """The Bento, the model it serves, and everything that model came from."""
    bento = s.get_one(Bento, bento_id)
    model, runs = _up(s, bento.model_id, extra_run_ids=[bento.run_id])
    return LineageNode(
        kind="bento",
        id=bento.id,
        label=f"bento {bento.tag}",
        attrs={"tag": bento.tag, "artifact_uri": bento.artifact_uri, "sha256": bento.sha256},
        children=(*_run_children(runs, bento.run_id), model),
    )


def up_from_model(s: Session, model_id: int) -> LineageNode:
    """The model, its training run, dataset version, validation, gate and parent models, recursively."""
    return _up(s, model_id, extra_run_ids=[])[0]


def _up(s: Session, model_id: int, extra_run_ids: list[int | None]) -> tuple[LineageNode, dict[int, Run]]:
    base = (
        select(Model.id, Model.parent_model_id).where(Model.id == model_id).cte("ancestors", recursive=True)
    )
    previous = base.alias()
    cte = base.union_all(
        select(Model.id, Model.parent_model_id).where(Model.id == previous.c.parent_model_id)
    )
    models, stages = _models_with_stages(s, select(cte.c.id))
    ids = list(models)
    versions = {
        dv.id: (dv, name)
        for dv, name in s.execute(
            select(DatasetVersion, Dataset.name)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(DatasetVersion.id.in_({m.dataset_version_id for m in models.values()} - {None}))
        )
    }
    validations = {
        v.id: v
        for v in s.scalars(
            select(ValidationRun).where(
                ValidationRun.id.in_({m.validation_run_id for m in models.values()} - {None})
            )
        )
    }
    gates: dict[int, GateDecision] = {}
    for gate in s.scalars(
        select(GateDecision).where(GateDecision.model_id.in_(ids)).order_by(GateDecision.id)
    ):
        gates[gate.model_id] = gate
    runs = _runs(
        s,
        extra_run_ids
        + [m.run_id for m in models.values()]
        + [dv.run_id for dv, _ in versions.values()]
        + [v.run_id for v in validations.values()]
        + [g.run_id for g in gates.values()],
    )

    def node(m: Model) -> LineageNode:
        children: list[LineageNode] = list(_run_children(runs, m.run_id))
        if m.dataset_version_id is not None:
            dv, dataset = versions[m.dataset_version_id]
            children.append(_dataset_version_node(dv, dataset, _run_children(runs, dv.run_id)))
        if m.validation_run_id is not None:
            v = validations[m.validation_run_id]
            children.append(
                LineageNode(
                    kind="validation_run",
                    id=v.id,
                    label=f"validation #{v.id} policy {v.policy_version}: {v.verdict}",
                    attrs={
                        "policy_version": v.policy_version,
                        "verdict": v.verdict,
                        "report_uri": v.report_uri,
                        "created_at": aware(v.created_at),
                    },
                    children=_run_children(runs, v.run_id),
                )
            )
        if (gate := gates.get(m.id)) is not None:
            children.append(
                LineageNode(
                    kind="gate",
                    id=gate.id,
                    label=f"gate {gate.policy}: {gate.verdict}",
                    attrs={"policy": gate.policy, "verdict": gate.verdict, "reasons": list(gate.reasons)},
                    children=_run_children(runs, gate.run_id),
                )
            )
        if m.parent_model_id is not None:
            children.append(node(models[m.parent_model_id]))
        return _model_node(m, stages.get(m.id), children)

    return node(models[model_id]), runs


def down_from_dataset_version(s: Session, dataset_version_id: int) -> LineageNode:
    """The dataset version and every model and Bento built on it, as a tree of parent -> child models."""
    dv, dataset = s.execute(
        select(DatasetVersion, Dataset.name)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(DatasetVersion.id == dataset_version_id)
    ).one()
    seeds = select(Model.id).where(Model.dataset_version_id == dataset_version_id)
    return _dataset_version_node(dv, dataset, _descendant_nodes(s, _descendants(seeds), root_id=None))


def down_from_model(s: Session, model_id: int) -> LineageNode:
    """The model, its Bentos and every model fine-tuned from it, recursively."""
    (root,) = _descendant_nodes(
        s, _descendants(select(Model.id).where(Model.id == model_id)), root_id=model_id
    )
    return root


def _descendants(seeds: Select[int]) -> CTE:
    base = seeds.cte("descendants", recursive=True)
    previous = base.alias()
    return base.union(select(Model.id).where(Model.parent_model_id == previous.c.id))


def _descendant_nodes(s: Session, cte: CTE, root_id: int | None) -> tuple[LineageNode, ...]:
    models, stages = _models_with_stages(s, select(cte.c.id))
    ids = list(models)
    bentos: dict[int, list[Bento]] = defaultdict(list)
    for bento in s.scalars(select(Bento).where(Bento.model_id.in_(ids)).order_by(Bento.id)):
        bentos[bento.model_id].append(bento)
    children_of: dict[int | None, list[Model]] = defaultdict(list)
    for m in models.values():
        parent = m.parent_model_id if m.parent_model_id in models and m.id != root_id else None
        children_of[parent].append(m)

    def node(m: Model) -> LineageNode:
        children = [
            LineageNode(
                kind="bento",
                id=b.id,
                label=f"bento {b.tag}",
                attrs={"tag": b.tag, "artifact_uri": b.artifact_uri, "sha256": b.sha256},
            )
            for b in bentos[m.id]
        ]
        children.extend(node(child) for child in children_of[m.id])
        return _model_node(m, stages.get(m.id), children)

    return tuple(node(m) for m in children_of[None])


def _models_with_stages(s: Session, ids: Select[int]) -> tuple[dict[int, Model], dict[int, str]]:
    """The models whose ids ``ids`` selects, in id order, and the stages of those that have one."""
    models: dict[int, Model] = {}
    stages: dict[int, str] = {}
    rows = s.execute(
        select(Model, StageAssignment.stage)
        .outerjoin(StageAssignment, StageAssignment.model_id == Model.id)
        .where(Model.id.in_(ids))
        .order_by(Model.id)
    )
    for model, stage in rows:
        models[model.id] = model
        if stage is not None:
            stages[model.id] = stage
    return models, stages


def _runs(s: Session, ids: Iterable[int | None]) -> dict[int, Run]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {r.id: r for r in s.scalars(select(Run).where(Run.id.in_(wanted)))}


def _run_children(runs: dict[int, Run], run_id: int | None) -> tuple[LineageNode, ...]:
    if run_id is None or run_id not in runs:
        return ()
    r = runs[run_id]
    finished = aware(r.finished_at) if r.finished_at is not None else None
    started = aware(r.started_at)
    return (
        LineageNode(
            kind="run",
            id=r.id,
            label=f"run #{r.id} {r.kind} ({r.status}) code {r.code_version or '?'}",
            attrs={
                "kind": r.kind,
                "status": r.status,
                "parameters": r.parameters,
                "code_version": r.code_version,
                "host": r.host,
                "prefect_flow_run_id": r.prefect_flow_run_id,
                "started_at": started,
                "finished_at": finished,
                "duration_s": (finished - started).total_seconds() if finished is not None else None,
            },
        ),
    )


def _dataset_version_node(dv: DatasetVersion, dataset: str, children: Iterable[LineageNode]) -> LineageNode:
    return LineageNode(
        kind="dataset_version",
        id=dv.id,
        label=f"dataset {dataset} version {dv.dvc_md5[:12]}",
        attrs={
            "dataset": dataset,
            "dvc_md5": dv.dvc_md5,
            "git_rev": dv.git_rev,
            "n_records": dv.n_records,
            "n_quarantined": dv.n_quarantined,
            "n_patients": dv.n_patients,
        },
        children=tuple(children),
    )


def _model_node(m: Model, stage: str | None, children: Iterable[LineageNode]) -> LineageNode:
    label = f"{m.kind} model {m.name}@{m.version}"
    if m.task is not None:
        label += f" task {m.task}"
    if stage is not None:
        label += f" [{stage}]"
    return LineageNode(
        kind="model",
        id=m.id,
        label=label,
        attrs={
            "name": m.name,
            "version": m.version,
            "kind": m.kind,
            "task": m.task,
            "stage": stage,
            "artifact_uri": m.artifact_uri,
            "sha256": m.sha256,
            "created_at": aware(m.created_at),
        },
        children=tuple(children),
    )
