"""Tasks as data: shipped tasks load, invalid task files fail with errors that say where and what."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.evaluation.gates import load_policy
from components.tasks.errors import TaskError
from components.tasks.mapping import load_mapping
from components.tasks.spec import LEAD_SETS, load_task, task_names
from tests.finetune.workspace import run_cli


def test_every_shipped_task_loads_with_its_gate_and_mapping() -> None:
    names = task_names()
    assert {"ptbxl-superdiagnostic", "ptbxl-rhythm", "cinc-dx"} <= set(names)
    for name in names:
        spec = load_task(name)
        assert spec.name == name
        policy = load_policy(spec.gate_policy)
        assert name in policy.tasks, f"gate {policy.ref} does not list task {name}"
        load_mapping(spec.mapping)
        assert all(codes for codes in spec.label_codes())


def test_superdiagnostic_aggregates_scp_statements_by_diagnostic_class() -> None:
    spec = load_task("ptbxl-superdiagnostic")
    assert spec.label_names == ["NORM", "MI", "STTC", "CD", "HYP"]
    codes = dict(zip(spec.label_names, spec.label_codes(), strict=True))
    assert {"IMI", "ASMI", "AMI", "INJAS", "PMI"} <= codes["MI"]
    assert {"CLBBB", "CRBBB", "1AVB", "LAFB", "WPW"} <= codes["CD"]
    assert "NORM" in codes["NORM"] and "SR" not in codes["NORM"]  # rhythm statements are not diagnostic


def test_lead_variants_extend_the_task_with_their_own_leads_and_gate() -> None:
    base = load_task("ptbxl-superdiagnostic")
    lead_i, lead_ii, limb = (load_task(f"ptbxl-superdiagnostic-{v}") for v in ("lead-i", "lead-ii", "limb"))
    assert (lead_i.leads, lead_ii.leads, limb.leads) == (["I"], ["II"], list(LEAD_SETS["limb"]))
    assert lead_i.label_names == base.label_names and lead_i.positive_rule == base.positive_rule
    assert lead_i.gate_policy == "ptbxl-superdiagnostic-single-lead" != base.gate_policy


GOOD = {
    "name": "x",
    "version": 1,
    "title": "t",
    "label_system": "SCP",
    "labels": [{"name": "NORM", "diagnostic_class": ["NORM"]}],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"labels": [{"name": "A", "codes": ["XYZ"]}]}, "labels.0: label A: unknown SCP code(s) ['XYZ']"),
        ({"labels": [{"name": "A"}]}, "labels.0: label A: give codes, diagnostic_class or"),
        ({"labels": [{"name": "A", "diagnostic_class": ["NOPE"]}]}, "no SCP statement has diagnostic_class"),
        ({"labels": []}, "labels: List should have at least 1 item"),
        ({"leads": ["I", "V7"]}, "leads: unknown ['V7']"),
        ({"leads": "precordial-ish"}, "unknown lead set 'precordial-ish'"),
        ({"required_leads": ["V1"], "leads": ["I"]}, "required_leads ['V1'] must be among leads ['I']"),
        ({"label_system": "ICD"}, "label_system 'ICD' has no vocabulary"),
        ({"positive_rule": {"min_likelihood": 150}}, "positive_rule.min_likelihood: Input should be less"),
        ({"labelz": []}, "labelz: Extra inputs are not permitted"),
        (
            {"labels": [{"name": "A", "codes": ["NORM"]}, {"name": "A", "codes": ["SR"]}]},
            "labels: duplicated names ['A']",
        ),
        (
            {"label_system": "SNOMED", "labels": [{"name": "A", "diagnostic_class": ["MI"]}]},
            "diagnostic_class exists only for the SCP label system",
        ),
        ({"name": "other"}, "name 'other' must match the file name 'x'"),
    ],
)
def test_invalid_task_files_say_where_and_what(tmp_path: Path, change: dict, expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(GOOD | change))
    with pytest.raises(TaskError) as info:
        load_task(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "pydantic" not in message and "errors.pydantic.dev" not in message


def test_good_task_file_loads_and_broken_yaml_and_cycles_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(GOOD))
    assert load_task(str(tmp_path / "x.yaml")).label_names == ["NORM"]
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(str(tmp_path / "broken.yaml"))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"extends": "b", "name": "a"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"extends": "a", "name": "b"}))
    with pytest.raises(TaskError, match="cycle"):
        load_task("a", tasks_dir=tmp_path)
    with pytest.raises(TaskError, match=r"unknown task 'nope'.*known tasks: a, b, broken, x"):
        load_task("nope", tasks_dir=tmp_path)


def test_cli_reports_a_bad_task_file_as_one_red_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(GOOD | {"name": "bad", "labels": [{"name": "A", "codes": ["XYZ"]}]}))
    code, _, err = run_cli(["finetune", "--task", str(path)])
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unknown SCP code(s) ['XYZ']" in lines[0]
    assert "Traceback" not in err
