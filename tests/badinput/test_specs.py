"""Task and gate YAML, broken: every problem a TaskError naming the file and the key (CLI: one red line,
exit 2). Cases the finetune/evaluation tests already hold are not repeated here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.evaluation.gates import load_policy
from components.tasks.errors import TaskError
from components.tasks.spec import load_task
from tests.finetune.workspace import LENIENT_POLICY

TASK: dict[str, Any] = {
    "name": "x",
    "version": 1,
    "title": "t",
    "label_system": "SCP",
    "labels": [{"name": "NORM", "codes": ["NORM"]}, {"name": "MI", "diagnostic_class": ["MI"]}],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"labels": [{"name": "AFIB", "codes": ["AFIB", "NOT-A-CODE"]}]},
            "unknown SCP code(s) ['NOT-A-CODE']",
        ),
        (
            {"labels": [{"name": "X", "diagnostic_subclass": ["NOPE"]}]},
            "no SCP statement has diagnostic_subclass",
        ),
        ({"labels": [{"name": "X"}]}, "label X: give codes, diagnostic_class or diagnostic_subclass"),
        (
            {"labels": [{"name": "bad name!", "codes": ["NORM"]}]},
            "labels.0.name: String should match pattern",
        ),
        ({"labels": "NORM"}, "labels: Input should be a valid list"),
        ({"fs": 0}, "fs: Input should be greater than 0"),
        ({"version": "one"}, "version: Input should be a valid integer"),
    ],
)
def test_bad_task_files_name_file_and_key(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(TASK | change))
    with pytest.raises(TaskError) as caught:
        load_task(str(path))
    assert str(caught.value).startswith(f"{path}: ") and expected in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: x\nname: y\nversion: 1\n", "key 'name' is given twice"),
        (b"name: x\x00\xff\xfe\n", "not UTF-8 text"),
        (b"", "a task file holds a mapping (name, labels, ...), got NoneType"),
        (b"extends: nope\nname: x\n", "unknown task 'nope'"),
    ],
)
def test_unreadable_task_files_are_task_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(TaskError, match=None) as caught:
        load_task(str(path), tasks_dir=tmp_path)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"floors": {"macro_auroc": 1.7}}, "floors.macro_auroc: Input should be less than or equal to 1"),
        ({"floors": {"macro_auroc": -0.2}}, "floors.macro_auroc: Input should be greater than or equal to 0"),
        ({"floors": {"macro_auroc": "high"}}, "floors.macro_auroc: Input should be a valid number"),
        ({"floors": {"macro_auroc": float("nan")}}, "floors.macro_auroc"),
        (
            {"floors": {"per_class_auroc": 1.7}},
            "an AUROC floor lies between 0 and 1, got {'every label': 1.7}",
        ),
        (
            {"floors": {"per_class_auroc": {"MI": -0.2}}},
            "an AUROC floor lies between 0 and 1, got {'MI': -0.2}",
        ),
        (
            {"floors": {"per_class_auroc": {"AFIB": 0.8}}},
            "floors.per_class_auroc: ['AFIB'] are not labels of",
        ),
        ({"floors": {"per_class_auroc": "high"}}, "floors.per_class_auroc"),
        ({"calibration": {"max_ece": 0}}, "calibration.max_ece: Input should be greater than 0"),
        ({"subgroups": {"max_gap": 2}}, "subgroups.max_gap: Input should be less than or equal to 1"),
        ({"external": {"macro_auroc": 1.5}}, "external.macro_auroc: Input should be less than or equal to 1"),
        (
            {"non_inferiority": {"margin": -0.1}},
            "non_inferiority.margin: Input should be greater than or equal",
        ),
        ({"min_test_records": 0}, "min_test_records: Input should be greater than or equal to 1"),
        ({"tasks": ["no-such-task"]}, "tasks: unknown task(s) ['no-such-task']"),
    ],
)
def test_bad_gate_thresholds_name_the_field(tmp_path: Path, sections: dict[str, Any], expected: str) -> None:
    policy = LENIENT_POLICY | {"name": "p"} | sections
    if "floors" in sections:
        policy["floors"] = LENIENT_POLICY["floors"] | sections["floors"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy))
    with pytest.raises(TaskError) as caught:
        load_policy(str(path))
    assert str(caught.value).startswith(f"{path}: ") and expected in str(caught.value), str(caught.value)


def test_gate_files_that_are_not_yaml_mappings(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    for content, expected in [
        (b"- a\n- b\n", "Input should be a valid dictionary"),
        (b"name: p\x00\xff\n", "not UTF-8 text"),
        (b"name: p\nname: q\n", "key 'name' is given twice"),
    ]:
        path.write_bytes(content)
        with pytest.raises(TaskError, match=None) as caught:
            load_policy(str(path))
        assert expected in str(caught.value)
