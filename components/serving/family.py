"""Which task models a family Bento packages besides the one it is built for.

A task's family is the task and the tasks that ``extends`` it with other lead sets (schemas/tasks:
``ptbxl-superdiagnostic`` and its ``-lead-i``, ``-lead-ii``, ``-limb`` variants). ``ecgops package MODEL
--family`` packages MODEL (the base, named explicitly and gated as any packaged model) and, for each
other task of its family, the newest model of that task whose latest gate decision passed — among the
models in ``--stage STAGE`` when given. A task without such a model is left out (and reported); a family
with no member besides the base is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.registry import GateDecisionInfo, ModelInfo, Registry
from components.serving.errors import PackagingError
from components.tasks.spec import task_family


@dataclass(frozen=True)
class FamilyMember:
    """A task model packaged beside the base one: its registry entry, verified artifact and gate decision."""

    model: ModelInfo
    task_dir: Path
    gate: GateDecisionInfo | None


@dataclass(frozen=True)
class Family:
    """The members a family Bento packages (family order) and the family's tasks left out for want of a
    model."""

    members: tuple[FamilyMember, ...]
    left_out: tuple[str, ...]


def family_members(registry: Registry, base: ModelInfo, stage: str | None = None) -> Family:
    """The other members of ``base``'s task family (:class:`PackagingError` when there are none)."""
    assert base.task is not None
    tasks = task_family(base.task)[1:]
    if not tasks:
        raise PackagingError(
            f"no task in schemas/tasks extends {base.task}: a family Bento is packaged from the model of the "
            "family's base task (the task the lead-set variants extend)"
        )
    members, left_out = [], []
    for task in tasks:
        candidates = registry.models(task=task, kind="task", stage=stage)
        found = next((m for m in candidates if m.gate_verdict == "pass"), None)
        if found is None:
            left_out.append(task)
            continue
        gate = registry.latest_gate_decision(found.ref)
        members.append(FamilyMember(found, registry.verify_artifact(found.ref), gate))
    if not members:
        where = f" in stage {stage}" if stage is not None else ""
        raise PackagingError(
            f"no other task of the family of {base.task} ({', '.join(tasks)}) has a model{where} whose gate "
            "passed; fine-tune and gate one, or package without --family"
        )
    return Family(tuple(members), tuple(left_out))
