"""Imports run downwards only (docs/architecture.md, "Floors"): a package of ``components/`` imports
packages on lower floors, never one on its own floor or above. The exceptions are listed, with why."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

FLOORS = {
    "errors": 0,
    "config": 1,
    "workspace": 1.5,
    "localserver": 1,
    "process_env": 1,
    "metrics": 1,
    "registry": 2,
    "predictions": 2,
    "io": 3,
    "models": 4,
    "quality": 4,
    "validation": 5,
    "runs": 5,
    "training": 6,
    "tasks": 7,
    "finetune": 8,
    "evaluation": 8,
    "inference": 8.5,
    "serving": 9,
    "dashboard": 9,
    "monitoring": 9,
    "orchestration": 10,
    "dvc_stages": 10,
    "cli": 11,
}

#: (importing package, imported package): why the arrow may run up
EXCEPTIONS = {
    ("config", "training"): "type-only: Params types each section with its stage's model",
    ("config", "finetune"): "type-only: Params types each section with its stage's model",
    ("config", "evaluation"): "type-only: Params types each section with its stage's model",
    ("config", "serving"): "type-only: Params types each section with its stage's model",
    ("config", "tasks"): "type-only: Params types each section with its stage's model",
    ("config", "inference"): "type-only: Params types each section with its stage's model",
    ("config", "runs"): "type-only: Params types each section with its stage's model",
    ("config", "predictions"): "type-only: Params types each section with its stage's model",
    ("runs", "training"): "type-only: the foundation policy compares pretrain parameters",
    ("workspace", "registry"): "Workspace.registry() opens the registry on demand (imported in the call)",
    ("workspace", "io"): "Workspace.store() opens a store on demand (imported in the call)",
    ("workspace", "predictions"): "Workspace.prediction_log() opens the log on demand (imported in the call)",
}


def _imports(path: Path) -> set[str]:
    """The ``components`` packages a module imports (at the top, in functions or for type checking)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("components.")}
    return found


def test_every_import_runs_down_a_floor_or_is_a_listed_exception() -> None:
    root = REPO_ROOT / "components"
    packages = {p.name.removesuffix(".py") for p in root.iterdir() if not p.name.startswith("_")}
    packages -= {"py.typed"}
    assert packages <= set(FLOORS), f"put these on a floor: {sorted(packages - set(FLOORS))}"
    upwards = set()
    for path in root.rglob("*.py"):
        source = path.relative_to(root).parts[0].removesuffix(".py")
        if source == "__init__":
            continue
        for target in _imports(path) - {source}:
            if FLOORS[target] >= FLOORS[source] and (source, target) not in EXCEPTIONS:
                upwards.add(f"{path.relative_to(REPO_ROOT)} imports components.{target}")
    assert not upwards, "\n".join(sorted(upwards))
