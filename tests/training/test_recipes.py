"""Pretraining recipes as data: each file is a valid ``pretrain:`` configuration, params.yaml's keys
override the recipe's at any depth, an unknown recipe is an error naming the ones there are, and the CLI
lists them and pretrains with one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.config import PACKAGE_ROOT, ParamsError, Settings, load_params
from components.training.params import PretrainParams
from components.training.recipes import RecipeError, load_recipe, recipe_names, with_recipe_of
from components.workspace import Workspace
from tests.finetune.workspace import run_cli


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_is_a_valid_pretrain_configuration_that_names_its_paper(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.paper and recipe.follows
    params = PretrainParams.model_validate({"recipe": name})
    for section, values in recipe.settings.items():
        given = getattr(params, section)
        if isinstance(values, dict):
            assert {k: getattr(given, k) for k in values} == values, section
        else:
            assert given == values, section


def test_the_keys_under_pretrain_override_the_recipe_at_any_depth() -> None:
    params = PretrainParams.model_validate({"recipe": "ecgclip", "objectives": {"ecg_ecg": 0.5}})
    recipe = load_recipe("ecgclip").settings
    assert params.objectives.ecg_ecg == 0.5
    assert params.masking.ratio == recipe["masking"]["ratio"]  # the rest is the recipe's
    assert params.augment.lead_dropout == recipe["augment"]["lead_dropout"]
    other = PretrainParams.model_validate({"objectives": {"ecg_ecg": 0.25}})
    assert params.config_sha256 != other.config_sha256 != PretrainParams().config_sha256


def test_the_repository_params_yaml_leaves_the_method_to_its_recipe() -> None:
    raw = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())["pretrain"]
    assert raw["recipe"] == "ecgclip" and not {"objectives", "augment", "masking", "sampler"} & set(raw)
    assert "arch" not in raw["ecg"]
    assert load_params(PACKAGE_ROOT / "params.yaml").pretrain.objectives.clip == 1.0


def test_an_unknown_recipe_is_an_error_naming_the_recipes(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("pretrain:\n  recipe: ecg-fmm\n")
    with pytest.raises(
        ParamsError, match=r"pretrain: unknown pretraining recipe 'ecg-fmm'; recipes: .*ecgclip"
    ):
        load_params(tmp_path / "params.yaml")
    workspace = Workspace(Settings(workspace=tmp_path, patient_salt="x"))  # type: ignore[arg-type]
    with pytest.raises(RecipeError, match="unknown pretraining recipe 'clip'"):
        with_recipe_of(workspace, "clip")


def test_cli_lists_the_recipes_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"pretrain": {"ecg": {"width": 16}}}))
    settings = Settings(workspace=tmp_path, patient_salt="x")  # type: ignore[arg-type]
    code, out, _ = run_cli(["recipes", "--json"], settings)
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == set(recipe_names()) and rows["ecgclip"]["selected"]
    assert rows["ecgclip"]["settings"]["ecg"]["width"] == 16  # the workspace's key over the recipe
    assert rows["ecgclip"]["config_sha256"] == with_recipe_of(Workspace(settings), "ecgclip").config_sha256
    code, _, err = run_cli(["pretrain", "--recipe", "nope", "--no-register"], settings)
    assert code != 0 and "unknown pretraining recipe 'nope'; recipes: cape, ecg-fm, ecgclip" in err
