"""SIGKILL (the whole process group) at every stage boundary of ``retrain``, driven from outside: a run is
killed as soon as Prefect reports its stage's task finished (its result, the cache record a re-run
reuses, is persisted by then); the next run picks up there and is killed at the next boundary, and so on.
The run after the last kill must leave the registry an uninterrupted run leaves: nothing lost, nothing
twice. (A kill *during* pretraining is in tests/flows/test_retrain.py.)

Two people work beside the chain's runs, on its SQLite registry: before the run that promotes, a release
manager promotes the candidate to production with ``ecgops registry promote`` while that run waits for the
workspace (the test holds the lock meanwhile), so the run must leave it there; beside the last run, once
its validation is done, a steward accepts the quarantined record with ``ecgops review accept``."""

from __future__ import annotations

import copy
import signal
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.registry import open_registry
from components.runs.lock import workspace_lock
from components.validation import list_quarantined
from components.workspace import Workspace as StageWorkspace
from tests.faults.conftest import (
    Reference,
    Started,
    Workspace,
    Zygote,
    flow_run_id_of,
    make_workspace,
    registry_shape,
    stage_done,
    wait_for,
    zygote_for,
)
from tests.flows.conftest import TASK, Finished

pytestmark = pytest.mark.slow

STAGES = ("ingest", "validate", "version", "pretrain", "finetune", "evaluate", "package", "promote")
MODEL = f"{TASK}@1"
RELEASE, STEWARD = "dr.release", "dr.steward"


@dataclass
class Kill:
    """What one killed run left: the stage states when it was killed and the registry after."""

    stage: str
    returncode: int
    states: dict[str, str]
    shape: dict[str, Any]


@dataclass
class KilledChain:
    workspace: Workspace
    drop: Path
    kills: dict[str, Kill] = field(default_factory=dict)
    promoted_by_hand: Finished | None = None
    accepted: Finished | None = None
    record: str = ""
    final: Finished | None = None


def _promote_while_waiting(chain: KilledChain, zygote: Zygote, started: Started) -> None:
    """With the workspace lock held here, the run started waits for it; a person promotes meanwhile."""
    ws = chain.workspace
    wait_for(lambda: "waiting for the workspace" in started.stderr.read_text(), "the run waiting", started)
    argv = ["registry", "promote", MODEL, "production", "--reason", "release by hand"]
    by_hand = zygote.start(argv, ws.root / "logs-promote-by-hand", env={"ECGOPS_USER": RELEASE})
    chain.promoted_by_hand = by_hand.finish(300)


def _kill_at(chain: KilledChain, zygote: Zygote, server: str, stage: str) -> None:
    ws = chain.workspace
    with workspace_lock(ws.settings, timeout_s=0) if stage == "promote" else nullcontext():
        run = zygote.run(chain.drop, ws.root / f"logs-{stage}")
        if stage == "promote":
            _promote_while_waiting(chain, zygote, run)
    try:
        states = wait_for(
            stage_done(server, flow_run_id_of(ws.settings, run), stage), f"stage {stage}", run, 600
        )
    finally:
        run.process.kill()
        run.process.wait()
    assert run.process.returncode is not None
    shape = registry_shape(ws.settings.resolved_registry_url)
    chain.kills[stage] = Kill(stage, run.process.returncode, states, shape)


def _last_run_beside_a_steward(chain: KilledChain, zygote: Zygote, server: str) -> None:
    ws = chain.workspace
    [chain.record] = list_quarantined(StageWorkspace(ws.settings))["record_id"].astype(str)
    run = zygote.run(chain.drop, ws.root / "logs-final")
    wait_for(stage_done(server, flow_run_id_of(ws.settings, run), "validate"), "validation", run, 600)
    argv = ["review", "accept", chain.record, "--note", "V2 is not used", "--reviewer", STEWARD]
    chain.accepted = zygote.start(argv, ws.root / "logs-accept").finish(300)
    chain.final = run.finish()


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory, prefect_server: str, drop: Path, reference: Reference
) -> KilledChain:
    """The chain of killed runs and the last run (the reference run goes on meanwhile)."""
    ws = make_workspace(tmp_path_factory.mktemp("faults-killed"), prefect_server)
    chain = KilledChain(ws, drop)
    with zygote_for(ws) as zygote:
        for stage in STAGES:
            _kill_at(chain, zygote, prefect_server, stage)
        _last_run_beside_a_steward(chain, zygote, prefect_server)
    return chain


def _foundations(shape: dict[str, Any]) -> list[Any]:
    return [m for m in shape["models"] if m[1] == "foundation"]


@pytest.mark.parametrize("stage", STAGES)
def test_killed_after_a_stage_the_next_run_does_not_redo_it(chain: KilledChain, stage: str) -> None:
    """Each kill ended a run whose stage had just finished; the next run took that stage from its cache —
    pretraining from the registry: the foundation decision reuses the registered model, no pretrain task."""
    kill = chain.kills[stage]
    assert kill.returncode == -signal.SIGKILL and kill.states[stage] == "Completed", kill.states
    if stage == STAGES[-1]:
        return
    following = STAGES[STAGES.index(stage) + 1]
    again = chain.kills[following].states
    if stage == "pretrain":
        assert "pretrain" not in again and again.get("foundation-decision") == "Completed", again
        assert _foundations(kill.shape) == _foundations(chain.kills[following].shape) != []
    else:
        assert again.get(stage) == "Cached", again


def test_after_every_kill_the_registry_is_the_uninterrupted_runs(
    chain: KilledChain, reference: Reference
) -> None:
    """Nothing lost, nothing twice: the uninterrupted run's registry, but for what the two people did
    (the model in production; their stage change and steward decision in the audit log)."""
    final = chain.final
    assert final is not None and final.returncode == 0, final and final.stderr[-4000:]
    assert final.result is not None and all(final.result["cached"].values()), final.result
    expected = copy.deepcopy(reference.finished().shape)
    expected["models"] = [
        (*m[:4], "production" if m[0] == MODEL else m[4], *m[5:]) for m in expected["models"]
    ]
    expected["audit"]["steward.decided"] = expected["audit"].get("steward.decided", 0) + 1
    assert registry_shape(chain.workspace.settings.resolved_registry_url) == expected


def test_a_promotion_by_hand_beside_a_run_is_kept(chain: KilledChain) -> None:
    """The run that promotes found the model already in production and left it there."""
    by_hand = chain.promoted_by_hand
    assert by_hand is not None and by_hand.returncode == 0, by_hand and by_hand.stderr[-3000:]
    assert chain.final is not None and chain.final.result is not None
    assert chain.final.result["tasks"][TASK]["promotion"] == f"{MODEL} stays in production"
    with open_registry(chain.workspace.settings.resolved_registry_url) as registry:
        assert registry.model(MODEL).stage == "production"
        changes = [
            (e.actor, e.details["from"], e.details["to"])
            for e in reversed(registry.audit(entity_id=MODEL, action="stage.changed", limit=None))
        ]
    assert changes[1:] == [(RELEASE, "candidate", "production")], changes


def test_a_steward_decision_beside_a_run_is_recorded_once(chain: KilledChain) -> None:
    """Both finished; the decision is in the registry and the audit log once, for the next validation."""
    accepted = chain.accepted
    assert accepted is not None and accepted.returncode == 0, accepted and accepted.stderr[-3000:]
    with open_registry(chain.workspace.settings.resolved_registry_url) as registry:
        decision = registry.steward_decisions("demo")[chain.record]
        entries = registry.audit(action="steward.decided", limit=None)
    assert (decision.decision, decision.reviewer) == ("accept", STEWARD)
    assert [(e.actor, e.entity_id) for e in entries] == [(STEWARD, f"demo/{chain.record}")]
