"""Pretraining recipes as data.

``schemas/recipes/<name>.yaml`` names a published pretraining method (its paper, what ecgops takes from
it and where it deviates) and the ``pretrain:`` settings that make it: the encoder architecture, the
objectives and their weights, augmentations, masking, the batch sampler. ``pretrain.recipe`` in
params.yaml picks one; every key under ``pretrain:`` there overrides the recipe's, so the workspace keeps
its budget (model size, epochs, batch size) whatever the recipe.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components.config import SCHEMAS_DIR, read_yaml
from components.errors import UserError

if TYPE_CHECKING:
    from components.training.params import PretrainParams
    from components.workspace import Workspace

RECIPES_DIR = SCHEMAS_DIR / "recipes"
DEFAULT_RECIPE = "ecgclip"


class RecipeError(UserError, ValueError):
    """A recipe that does not exist or cannot be read."""


class Recipe(BaseModel):
    """One recipe file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    paper: str
    follows: str
    settings: dict[str, Any]


def recipe_names() -> list[str]:
    """The recipes in ``schemas/recipes``."""
    return sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


@cache
def load_recipe(name: str) -> Recipe:
    """The recipe ``name``; :class:`RecipeError` names the recipes there are."""
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise RecipeError(f"unknown pretraining recipe {name!r}; recipes: {', '.join(recipe_names())}")
    try:
        recipe = Recipe.model_validate(read_yaml(path))
    except (ValueError, ValidationError) as exc:
        raise RecipeError(f"{path}: {exc}") from None
    if recipe.name != name:
        raise RecipeError(f"{path}: its name is {recipe.name!r}, not {name!r} as its file says")
    return recipe


def with_recipe(section: dict[str, Any]) -> dict[str, Any]:
    """The ``pretrain:`` section over its recipe's settings (the section's keys win, at every depth)."""
    name = section.get("recipe") or DEFAULT_RECIPE
    return _merged(load_recipe(str(name)).settings, section) | {"recipe": name}


def with_recipe_of(workspace: Workspace, name: str) -> PretrainParams:
    """The workspace's ``pretrain:`` keys over recipe ``name`` instead of the recipe params.yaml names
    (``ecgops pretrain --recipe``, ``ecgops recipes``)."""
    from components.config import ParamsError
    from components.training.params import PretrainParams

    load_recipe(name)
    try:
        return PretrainParams.model_validate(workspace.params_as_written("pretrain") | {"recipe": name})
    except ValidationError as exc:
        raise ParamsError(f"{workspace.root / 'params.yaml'}: pretrain with recipe {name}: {exc}") from None


def config_sha256(resolved: dict[str, Any]) -> str:
    """sha256 of a resolved ``pretrain:`` configuration (recipe and overrides), as recorded with the
    foundation model it trained."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged
