"""A person promotes a model to production while the retrain flow is promoting it from candidate to
staging. The interleaving is made deterministic with PostgreSQL's row locks: the person's promotion is
held uncommitted (its stage rows locked), the flow's ``promote`` task runs until it waits on those rows,
then the person commits. The flow must find the model in production and leave it there."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from components.config import Settings
from components.registry import open_registry
from components.workspace import Workspace
from flows import release
from tests.faults.conftest import wait_for

psycopg = pytest.importorskip("psycopg")
TASK = "race-task"


def _blocked_session(admin: Any) -> int | None:
    """The pid of a session of this database waiting on another's lock, if any."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
    ).fetchone()
    return int(row[0]) if row else None


def test_the_flow_never_undoes_a_promotion_a_person_made_meanwhile(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    setup = open_registry(pg_database, actor="trainer")
    ref = setup.register_model("race", kind="task", task=TASK, artifact_uri=str(tmp_path)).ref
    setup.record_gate_decision(ref, policy="test@v1", verdict="pass", reasons=["ok"])
    settings = Settings(workspace=tmp_path, registry_url=pg_database)
    monkeypatch.setattr(Workspace, "current", lambda: Workspace(settings))
    person = open_registry(pg_database, actor="dr.release")
    admin = psycopg.connect(
        make_url(pg_database).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    holding, commit = threading.Event(), threading.Event()
    flow_said: list[str] = []

    def promote_by_hand() -> None:
        with person.atomic():
            person.promote(ref, "production", reason="release by hand")
            holding.set()
            commit.wait(timeout=300)

    def promote_by_flow() -> None:
        flow_said.append(release.promote_task.fn(ref, "staging", "flow-run-1"))

    by_hand, by_flow = threading.Thread(target=promote_by_hand), threading.Thread(target=promote_by_flow)
    try:
        by_hand.start()
        assert holding.wait(timeout=120), "the person's promotion never took the stage rows"
        by_flow.start()
        wait_for(lambda: _blocked_session(admin), "the flow's promotion waiting on the person's")
    finally:
        commit.set()
        by_hand.join(timeout=120)
        if by_flow.is_alive():
            by_flow.join(timeout=120)
        admin.close()
        person.close()
    try:
        assert flow_said == [f"{ref} stays in production"]
        assert setup.model(ref).stage == "production"
        changes = [
            (e.actor, e.details["from"], e.details["to"])
            for e in reversed(setup.audit(action="stage.changed", limit=None))
        ]
        assert changes[-1] == ("dr.release", "candidate", "production")
        assert all(actor != "retrain" and to != "staging" for actor, _, to in changes), changes
    finally:
        setup.close()
