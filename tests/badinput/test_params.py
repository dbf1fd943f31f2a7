"""params.yaml, misspelt or broken: every section is typed, an unknown key anywhere is an error naming its
dotted path, and the CLI says so in one red line (exit 2) before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config import (
    PACKAGE_ROOT,
    IngestParams,
    Params,
    ParamsError,
    Settings,
    load_params,
    parse_params,
)
from tests.badinput.corpus import broken_drop
from tests.finetune.workspace import run_cli


def test_the_repository_params_yaml_validates_and_every_section_is_typed() -> None:
    params = load_params(PACKAGE_ROOT / "params.yaml")
    raw = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    assert set(raw) == set(Params.model_fields)  # every section in the file has a model, and vice versa
    assert params.ingest.target_fs == raw["ingest"]["target_fs"]
    assert params.pretrain.ecg.width == raw["pretrain"]["ecg"]["width"]
    assert params.finetune.tasks == raw["finetune"]["tasks"]
    assert params.evaluate.gate_policies == raw["evaluate"]["gate_policies"]
    assert params.serve.max_body_bytes == raw["serve"]["max_body_bytes"]
    assert params.package.bento_prefix == raw["package"]["bento_prefix"]
    assert params.orchestration.promote_to == raw["orchestration"]["promote_to"]
    assert params.compute.shard_records == raw["compute"]["shard_records"]
    assert params.section("ingest") == params.ingest.model_dump(mode="json")


def test_absent_file_or_sections_mean_the_defaults(tmp_path: Path) -> None:
    assert load_params(tmp_path / "params.yaml") == parse_params({})
    (tmp_path / "params.yaml").write_text("ingest:\npretrain:\n")  # empty sections, as YAML writes them
    params = load_params(tmp_path / "params.yaml")
    assert params.ingest.target_fs == 100 and params.compute.task_runner == "thread"
    with pytest.raises(KeyError, match="no section 'ingset'"):
        params.section("ingset")


def test_a_workspace_with_other_sections_keeps_the_rest_and_names_a_misspelt_one(tmp_path: Path) -> None:
    from components.finetune.params import FinetuneParams
    from components.workspace import Workspace

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {"target_fs": 250}}))
    workspace = Workspace(Settings(workspace=tmp_path, patient_salt="x"))  # type: ignore[arg-type]
    tuned = workspace.with_params(finetune=FinetuneParams(max_epochs=7))
    assert tuned.params.finetune.max_epochs == 7 and tuned.params.ingest.target_fs == 250
    assert workspace.params.finetune.max_epochs != 7  # the workspace itself is unchanged
    with pytest.raises(ParamsError, match="no section fintune"):
        workspace.with_params(fintune=FinetuneParams())
    with pytest.raises(ValueError, match="finetune"):
        workspace.with_params(finetune=IngestParams())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ingest:\n  target_fss: 500\n", "unknown key ingest.target_fss (did you mean target_fs?)"),
        ("ingets:\n  target_fs: 500\n", "unknown key ingets (did you mean ingest?)"),
        ("pretrain:\n  ecg:\n    widht: 64\n", "unknown key pretrain.ecg.widht (did you mean width?)"),
        ("pretrain:\n  text:\n    kind: scratch\n    froze: true\n", "unknown key pretrain.text.froze"),
        ("finetune:\n  augment:\n    lead_dropuot: 0.1\n", "unknown key finetune.augment.lead_dropuot"),
        ("finetune:\n  scratch_ecg:\n    depht: 2\n", "unknown key finetune.scratch_ecg.depht"),
        ("serve:\n  max_body: 10\n", "unknown key serve.max_body (did you mean max_body_bytes?)"),
        ("orchestration:\n  promote: staging\n", "unknown key orchestration.promote"),
        ("compute:\n  runner: dask\n", "unknown key compute.runner"),
        ("package:\n  prefix: x\n", "unknown key package.prefix"),
        ("evaluate:\n  bootstrap: 500\n", "unknown key evaluate.bootstrap (did you mean bootstrap_rounds?)"),
        ("ingest:\n  target_fs: fast\n", "ingest.target_fs: Input should be a valid integer"),
        ("ingest:\n  target_fs: 0\n", "ingest.target_fs: Input should be greater than 0"),
        ("ingest:\n  chunk_records: 0\n", "ingest.chunk_records: Input should be greater than or equal to 1"),
        ("ingest:\n  dataset: ../../etc\n", "ingest.dataset: String should match pattern"),
        ("ingest:\n  hash_buckets: 5\n", "ingest: val_buckets [8] are not buckets 0-4"),
        ("ingest:\n  val_buckets: [9]\n", "buckets [9] are both val_buckets and test_buckets"),
        ("ingest:\n  val_buckets: [x]\n", "ingest.val_buckets.0: Input should be a valid integer"),
        ("compute:\n  task_runner: ray\n", "compute.task_runner: Input should be 'thread' or 'dask'"),
        ("serve:\n  port: 70000\n", "serve.port: Input should be less than or equal to 65535"),
        ("ingest: 500\n", "ingest: Input should be a valid dictionary"),
        ("- ingest\n- pretrain\n", "must be a mapping of sections (ingest, pretrain, ...), got list"),
        ("ingest:\n  target_fs: 100\n  target_fs: 500\n", "key 'target_fs' is given twice"),
        ("ingest:\n  target_fs: [100\n", "not valid YAML"),
    ],
)
def test_a_bad_params_yaml_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "pydantic" not in str(caught.value)


def test_a_params_yaml_that_is_not_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"ingest:\n  dataset: \xff\xfe\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: not UTF-8 text \(byte 19 is 0xff\)"):
        load_params(path)


def test_dvc_set_style_keys_land_in_the_typed_sections(tmp_path: Path) -> None:
    """``dvc exp run -S pretrain.ecg.width=64 -S ingest.target_fs=500`` rewrites params.yaml in place."""
    raw = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    raw["pretrain"]["ecg"]["width"] = 64
    raw["ingest"]["target_fs"] = 500
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    assert (params.pretrain.ecg.width, params.ingest.target_fs) == (64, 500)
    raw["pretrain"]["ecg"]["wdith"] = 64  # a typo in -S adds a key: refused, not ignored
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"unknown key pretrain\.ecg\.wdith"):
        load_params(tmp_path / "params.yaml")


def test_cli_says_which_key_in_one_red_line_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    settings = Settings(workspace=root, registry_url=f"sqlite:///{tmp_path}/r.db", patient_salt="x")  # type: ignore[arg-type]
    (root / "params.yaml").write_text("ingest:\n  target_fss: 500\n  workers: 1\n")
    drop = broken_drop(tmp_path / "drop")
    for args in (["ingest", str(drop), "--no-version"], ["review", "list"], ["tasks"]):
        code, out, err = run_cli(args, settings)
        lines = [line for line in err.splitlines() if line.strip()]
        if args[0] == "tasks":  # reads no params
            assert code == 0, err
            continue
        assert code == 2, (args, out, err)
        assert lines == [
            f"error: {root / 'params.yaml'}: unknown key ingest.target_fss (did you mean target_fs?)"
        ]
    assert not (root / "data").exists()
