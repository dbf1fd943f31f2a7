"""PostgreSQL drops the registry's connections (``pg_terminate_backend``: a real server-side disconnect,
what a restart does to every session): a write caught mid-transaction is run again and recorded once,
pooled connections are replaced, an ``atomic()`` block fails clearly with nothing recorded, and a whole
retraining run survives it with the same registry as an uninterrupted run."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from components.registry import Registry, RegistryUnavailableError, open_registry
from components.registry.db import make_engine, reconnecting
from tests.faults.conftest import (
    Reference,
    admin_connection,
    terminate_sessions,
    unfinished_runs,
    wait_for,
    waiting_writer,
    writes_held,
)
from tests.flows.conftest import TASK

psycopg = pytest.importorskip("psycopg")


def _record_version(registry: Registry, md5: str) -> None:
    registry.record_dataset_version(
        "demo", md5, git_rev=None, n_records=3, n_quarantined=0, n_patients=2, statistics={}, parent_md5=None
    )


def test_a_write_whose_session_is_terminated_mid_transaction_is_recorded_once(pg_database: str) -> None:
    registry = open_registry(pg_database)
    admin = admin_connection(pg_database)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            _record_version(registry, "a" * 32)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    try:
        with writes_held(pg_database, "dataset_versions"):
            writer = threading.Thread(target=write)
            writer.start()
            victim = wait_for(lambda: waiting_writer(admin, "dataset_versions"), "the write waiting")
            admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
        writer.join(timeout=120)
        assert not writer.is_alive() and not errors, errors
        assert [v.dvc_md5 for v in registry.dataset_versions()] == ["a" * 32]
        assert [a.action for a in registry.audit()] == ["dataset_version.recorded"]

        assert terminate_sessions(admin) >= 1  # the pool's idle connection: replaced on the next call
        _record_version(registry, "b" * 32)
        assert sorted(v.dvc_md5 for v in registry.dataset_versions()) == ["a" * 32, "b" * 32]
    finally:
        registry.close()
        admin.close()


def test_a_connection_lost_inside_atomic_fails_clearly_and_records_nothing(pg_database: str) -> None:
    registry = open_registry(pg_database)
    admin = admin_connection(pg_database)
    failed: list[BaseException] = []

    def block() -> None:
        try:
            with registry.atomic():
                _record_version(registry, "c" * 32)
        except BaseException as exc:
            failed.append(exc)

    try:
        with writes_held(pg_database, "dataset_versions"):
            writer = threading.Thread(target=block)
            writer.start()
            victim = wait_for(lambda: waiting_writer(admin, "dataset_versions"), "the block waiting")
            admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
        writer.join(timeout=120)
        [error] = failed
        assert isinstance(error, RegistryUnavailableError)
        assert "lost the connection to the registry database" in str(error)
        assert "rolled back and nothing of it was recorded" in str(error)
        assert registry.dataset_versions() == [] and registry.dataset_names() == []
    finally:
        registry.close()
        admin.close()


def test_a_server_that_stays_away_fails_clearly_after_the_retry_window(tmp_path: Any) -> None:
    """No server answers at a socket directory without a server: retried, then a clear error."""
    engine = make_engine(f"postgresql+psycopg://postgres@/test?host={tmp_path}")
    try:
        with pytest.raises(RegistryUnavailableError, match=r"could not reconnect within 1 s"):
            reconnecting(engine, lambda: engine.connect().close(), window_s=1.0)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_run_survives_the_registry_dropping_its_sessions(reference: Reference) -> None:
    """The reference run (conftest): every session of its registry was ended while it was inside a write;
    the write was run again, the run completed, and its registry holds each stage's rows once."""
    ref = reference.finished()
    if not ref.on_postgres:
        pytest.skip("no PostgreSQL server: the reference run used SQLite")
    assert ref.run is not None and ref.sessions_ended >= 1
    assert "lost the connection to the registry database" in ref.run.stderr
    url = ref.workspace.settings.resolved_registry_url
    assert unfinished_runs(url) == []
    shape = ref.shape
    assert len(shape["dataset_versions"]) == len(shape["validation_runs"]) == len(shape["bentos"]) == 1
    assert [(m[0], m[4]) for m in shape["models"]] == [("ecg-fm@1", None), (f"{TASK}@1", "staging")]
    assert all(len(verdicts) <= 1 for verdicts in shape["gate_decisions"].values())
    assert set(shape["succeeded_runs"].values()) == {1}, shape["succeeded_runs"]
    assert shape["audit"]["dataset_version.recorded"] == 1
