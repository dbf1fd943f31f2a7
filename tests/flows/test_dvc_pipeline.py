"""dvc.yaml in a temporary git repository: `dvc repro` on a clean clone reproduces the foundation model
from data.dvc bit for bit, and `dvc exp run -S pretrain.recipe=cape` runs an experiment with another
recipe (DDP on CPU is covered by the pretraining tests)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.models.checkpoint import foundation_meta
from tests.conftest import REPO_ROOT, SAMPLES
from tests.flows.conftest import TINY

pytestmark = pytest.mark.slow


def _sh(cwd: Path, env: dict[str, str], *command: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dvc_repro_on_a_clean_clone_reproduces_the_model_and_exp_run_works(tmp_path: Path) -> None:
    # Only what the commands need, with the thread count pinned: the two pretrainings must not depend on
    # what else is in this process's environment (weights differ bit for bit with the thread count).
    env = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR") if k in os.environ}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "2",
        "PYTHONHASHSEED": "0",
        "ECGOPS_PATIENT_SALT": "dvc-test-salt",
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@ecgops.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@ecgops.invalid",
    }
    origin = tmp_path / "origin"
    origin.mkdir()
    shutil.copy(REPO_ROOT / "dvc.yaml", origin)
    params = TINY | {"compute": {"accelerator": "cpu", "devices": 1, "strategy": "auto"}}
    params["pretrain"] = {"recipe": "ecgclip", **TINY["pretrain"]}  # as the repository's params.yaml names it
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (origin / ".gitignore").write_text(".ecgops/\n")
    _sh(origin, env, "git", "init", "-q")
    _sh(origin, env, "dvc", "init", "-q")
    _sh(origin, env, "dvc", "remote", "add", "-d", "storage", str(tmp_path / "remote"))
    _sh(origin, env, "ecgops", "ingest", str(SAMPLES), "--json")  # data/ + data.dvc, pushed to the remote
    _sh(origin, env, "git", "add", "-A")
    _sh(origin, env, "git", "commit", "-qm", "hospital drop")
    stages = [line.split()[0] for line in _sh(origin, env, "dvc", "stage", "list").splitlines()]
    assert stages == ["validate", "pretrain", "finetune", "evaluate", "package"]
    _sh(origin, env, "dvc", "repro", "pretrain")
    _sh(origin, env, "git", "add", "-A")
    _sh(origin, env, "git", "commit", "-qm", "foundation model")
    model = Path("pipeline/foundation/model.safetensors")
    metrics = json.loads((origin / "pipeline/metrics/pretrain.json").read_text())
    assert metrics["zero_shot_macro_auroc"] > 0
    curve = (origin / "pipeline/plots/pretrain_loss.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,val_loss" and len(curve) == 1 + params["pretrain"]["max_epochs"]

    clone = tmp_path / "clone"
    _sh(tmp_path, env, "git", "clone", "-q", str(origin), str(clone))
    assert not (clone / "data").exists() and not (clone / model).exists()
    _sh(clone, env, "dvc", "pull", "-q", "data.dvc")
    _sh(clone, env, "dvc", "repro", "pretrain")
    assert _sha256(clone / model) == _sha256(origin / model)
    assert json.loads((clone / "pipeline/metrics/pretrain.json").read_text()) == metrics
    status = json.loads(_sh(clone, env, "dvc", "status", "--json", "pretrain"))
    assert status == {}, f"the reproduction differs from dvc.lock: {status}"

    _sh(
        origin,
        env,
        "dvc", "exp", "run", "-n", "cape", "pretrain", "-S", "pretrain.recipe=cape",
    )  # fmt: skip
    shown = json.loads(_sh(origin, env, "dvc", "exp", "show", "--json"))
    experiments = {
        exp["name"]: exp
        for baseline in shown
        for exp in (baseline.get("experiments") or [])
        if exp.get("name")
    }
    assert "cape" in experiments, json.dumps(shown)[:2000]
    swept = json.loads((origin / "pipeline/metrics/pretrain.json").read_text())
    assert "zero_shot_macro_auroc" not in swept and 0 <= swept["probe_macro_auroc"] <= 1  # no text space
    assert foundation_meta(origin / "pipeline/foundation")["recipe"] == "cape"
    assert _sha256(origin / model) != _sha256(clone / model)
