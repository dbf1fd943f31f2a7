"""The registry's browsing reads (counts, pages, histories, deployment slots) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.registry import InvalidArgumentError, MetricInfo, NotFoundError, Registry
from tests.registry.helpers import MD5_A, MD5_B, add_dataset


@pytest.fixture
def filled(reg: Registry, artifact: tuple[Path, str]) -> Registry:
    """Two dataset versions, a foundation model and 7 task models over two tasks, with metrics, gates,
    Bentos and stages (af: v1 fails its gate, v2 staging, v3 production with a Bento; sinus: v1 production
    without a Bento)."""
    path, sha = artifact
    add_dataset(reg, MD5_A)
    add_dataset(reg, MD5_B, parent=MD5_A)
    vr_a = reg.record_validation_run(MD5_A, policy_version="1", verdict="warn", report_uri="a", statistics={})
    reg.record_validation_run(MD5_B, policy_version="1", verdict="fail", report_uri="b1", statistics={})
    vr_b = reg.record_validation_run(
        MD5_B, policy_version="2", verdict="pass", report_uri="b2", statistics={}
    )
    fm = reg.register_model(
        "fm", kind="foundation", artifact_uri=str(path), sha256=sha, validation_run_id=vr_a
    )
    for version in range(1, 4):
        model = reg.register_model(
            "af-probe",
            kind="task",
            task="af",
            artifact_uri=str(path),
            sha256=sha,
            parent=fm.id,
            validation_run_id=vr_b,
        )
        reg.record_metrics(
            model.id,
            [
                MetricInfo("test", "all", "auroc", 0.80 + version / 100, 0.75, 0.9, n=100),
                MetricInfo("test", "sex=F", "auroc", 0.78 + version / 100, 0.7, 0.88, n=50),
                MetricInfo("val", "all", "auroc", 0.79, 0.7, 0.85, n=40),
            ],
        )
        verdict = "fail" if version == 1 else "pass"
        reg.record_gate_decision(
            model.id, policy="af@1", verdict=verdict, reasons=["floor"] if version == 1 else []
        )
    reg.record_gate_decision("af-probe@1", policy="af@1", verdict="fail", reasons=["still below floor"])
    reg.promote("af-probe@2", "staging")
    reg.promote("af-probe@3", "production")
    reg.register_bento("af:old", model="af-probe@3", artifact_uri=str(path), sha256=sha)
    reg.register_bento("af:new", model="af-probe@3", artifact_uri=str(path), sha256=sha)
    reg.register_bento("af:v2", model="af-probe@2", artifact_uri=str(path), sha256=sha)
    sinus = reg.register_model("sinus", kind="task", task="sinus", artifact_uri=str(path), sha256=sha)
    reg.record_gate_decision(sinus.id, policy="sinus@1", verdict="pass", reasons=[])
    reg.promote(sinus.id, "production")
    for name in ("rhythm-a", "rhythm-b", "rhythm-c"):
        reg.register_model(name, kind="task", task="sinus", artifact_uri=str(path), sha256=sha)
    reg.record_steward_decision(
        dataset="demo", record_id="r1", decision="reject", note="flat", reviewer="ann"
    )
    reg.record_steward_decision(
        dataset="demo", record_id="r1", decision="accept", note="ok now", reviewer="bob"
    )
    return reg


def test_validation_runs_per_dataset_version_are_paged_and_counted(filled: Registry) -> None:
    assert filled.dataset_names() == ["demo"]
    every = filled.validation_runs(dataset="demo")
    assert [r.report_uri for r in every] == ["b2", "b1", "a"]
    assert filled.count_validation_runs(dataset="demo") == 3
    assert [r.report_uri for r in filled.validation_runs(dataset_version_md5=MD5_B)] == ["b2", "b1"]
    assert filled.count_validation_runs(dataset_version_md5=MD5_B) == 2
    assert [r.report_uri for r in filled.validation_runs(dataset="demo", offset=1, limit=1)] == ["b1"]
    assert (
        filled.validation_runs(dataset="other") == [] and filled.count_validation_runs(dataset="other") == 0
    )
    with pytest.raises(InvalidArgumentError, match="offset"):
        filled.validation_runs(offset=-1)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"task": "af"},
        {"task": "sinus"},
        {"kind": "foundation"},
        {"stage": "production"},
        {"name": "af-probe"},
    ],
)
def test_model_pages_concatenate_to_the_full_listing(filled: Registry, filters: dict[str, str]) -> None:
    everything = filled.models(**filters)
    assert filled.count_models(**filters) == len(everything)
    pages = [filled.model_page(**filters, offset=o, limit=3) for o in range(0, len(everything) + 3, 3)]
    assert [m.ref for page in pages for m in page] == [m.ref for m in everything]
    assert all(len(p) <= 3 for p in pages)


def test_tasks_names_metric_keys_and_history(filled: Registry) -> None:
    assert filled.model_tasks() == ["af", "sinus"]
    assert filled.model_names(task="sinus") == ["rhythm-a", "rhythm-b", "rhythm-c", "sinus"]
    assert filled.model_names(kind="foundation") == ["fm"]
    assert filled.metric_keys(name="af-probe") == [
        ("test", "all", "auroc"),
        ("test", "sex=F", "auroc"),
        ("val", "all", "auroc"),
    ]
    history = filled.metric_history(name="af-probe", metric="auroc", split="test", cohort="all")
    assert [(p.model, p.value, p.stage) for p in history] == [
        ("af-probe@1", pytest.approx(0.81), "candidate"),
        ("af-probe@2", pytest.approx(0.82), "staging"),
        ("af-probe@3", pytest.approx(0.83), "production"),
    ]
    assert [p.model for p in filled.metric_history(task="af", split="test", cohort="all", last=2)] == [
        "af-probe@2",
        "af-probe@3",
    ]
    assert len(filled.metric_history(name="af-probe")) == 9
    with pytest.raises(InvalidArgumentError, match="name or a task"):
        filled.metric_history(metric="auroc")


def test_gate_history_newest_first(filled: Registry) -> None:
    gates = filled.gate_decisions("af-probe@1")
    assert [g.reasons for g in gates] == [["still below floor"], ["floor"]]
    assert gates[0].id == filled.latest_gate_decision("af-probe@1").id  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        filled.gate_decisions("nope@1")


def test_deployment_slots_are_what_bento_pull_fetches(filled: Registry) -> None:
    slots = filled.deployment_slots()
    assert [(s.task, s.stage, s.model.ref, s.n_models) for s in slots] == [
        ("af", "production", "af-probe@3", 1),
        ("af", "staging", "af-probe@2", 1),
        ("sinus", "production", "sinus@1", 1),
    ]
    for slot in slots[:2]:
        assert slot.bento is not None and slot.bento == filled.bento_for(slot.task, slot.stage)
        assert slot.pull_command == f"ecgops bento pull {slot.task}@{slot.stage}"
    assert slots[0].bento is not None and slots[0].bento.tag == "af:new"
    assert slots[2].bento is None
    with pytest.raises(NotFoundError, match="has no Bento"):
        filled.bento_for("sinus", "production")
    candidates = filled.deployment_slots(stages=("candidate",))
    assert [(s.task, s.model.ref, s.n_models) for s in candidates] == [
        ("af", "af-probe@1", 1),
        ("sinus", "rhythm-c@1", 3),
    ]
    with pytest.raises(InvalidArgumentError, match="stage"):
        filled.deployment_slots(stages=("live",))


def test_bento_and_audit_pages(filled: Registry) -> None:
    assert [b.tag for b in filled.bento_page()] == ["af:v2", "af:new", "af:old"]
    assert [b.tag for b in filled.bento_page(task="af", offset=1, limit=1)] == ["af:new"]
    assert filled.count_bentos() == 3 and filled.count_bentos(task="sinus") == 0
    assert filled.count_bentos(model="af-probe@3") == 2
    everything = filled.audit(limit=None)
    assert filled.count_audit() == len(everything)
    paged = [e for o in range(0, len(everything), 7) for e in filled.audit_page(offset=o, limit=7)]
    assert [e.id for e in paged] == [e.id for e in everything]
    changes = filled.audit_page(action="stage.changed", limit=100)
    assert changes == filled.audit(action="stage.changed", limit=100)
    assert filled.count_audit(action="stage.changed", entity_id="af-probe@3") == 2
    assert "steward.decided" in filled.audit_actions() and filled.audit_actions() == sorted(
        filled.audit_actions()
    )


def test_steward_decision_history_newest_first(filled: Registry) -> None:
    history = filled.steward_decision_history("demo", "r1")
    assert [(d.decision, d.reviewer) for d in history] == [("accept", "bob"), ("reject", "ann")]
    assert history[0] == filled.steward_decisions("demo")["r1"]
    assert filled.steward_decision_history("demo", "r2") == []
    count, newest = filled.steward_decision_stamp("demo")
    assert count == 2 and newest == history[0].id
    assert filled.steward_decision_stamp("other") == (0, 0)
