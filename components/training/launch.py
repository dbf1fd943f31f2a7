"""Pretraining with the device settings of ``compute:`` in params.yaml.

One device: in this process. Several (``compute.devices > 1``, e.g. ``strategy: ddp``): in a child
process running ``python -m components.training.launch``, because Lightning's DDP launcher starts
the other ranks by re-running the current command — which must be this small one, not the whole flow.
Rank 0 writes the result as JSON where the flow reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from components.config import Settings
from components.runs.lifecycle import RunOptions
from components.runs.params import ComputeParams
from components.workspace import Workspace


class TrainingLaunchError(RuntimeError):
    """The distributed training process failed."""


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``ECGOPS_*`` variables that make a child process see the same workspace, registry and stores."""
    env = {
        "ECGOPS_WORKSPACE": str(settings.workspace),
        "ECGOPS_REGISTRY_URL": settings.resolved_registry_url,
        "ECGOPS_ARTIFACT_STORE": settings.resolved_artifact_store,
        "ECGOPS_DVC_REMOTE_URL": settings.resolved_dvc_remote_url,
        "ECGOPS_USER": settings.actor,
    }
    if settings.patient_salt is not None:
        env["ECGOPS_PATIENT_SALT"] = settings.patient_salt.get_secret_value()
    return env


def pretrain_with(
    workspace: Workspace, dataset: str, *, resume: bool = False, flow_run_id: str | None = None
) -> dict[str, Any]:
    """Pretrain on ``dataset`` with the accelerator, devices and strategy of the workspace's ``compute:``;
    the result as a dict."""
    from components.training.stage import pretrain

    compute = workspace.params.compute
    if not compute.distributed:
        result = pretrain(workspace, dataset, compute_options(compute, resume, flow_run_id))
        assert result is not None  # one process: this is rank 0
        return result.to_dict()
    with tempfile.TemporaryDirectory(prefix="ecgops-launch-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "components.training.launch",
            "--dataset",
            dataset,
            "--out",
            str(out),
        ]
        command += ["--resume"] if resume else []
        command += ["--flow-run-id", flow_run_id] if flow_run_id else []
        env = {**os.environ, **settings_env(workspace.settings)}
        done = subprocess.run(command, env=env, check=False)
        if done.returncode != 0 or not out.is_file():
            raise TrainingLaunchError(
                f"distributed pretraining ({compute.devices} × {compute.accelerator}, {compute.strategy}) "
                f"exited with code {done.returncode}; its log is above"
            )
        launched: dict[str, Any] = json.loads(out.read_text())
        return launched


def compute_options(compute: ComputeParams, resume: bool, flow_run_id: str | None) -> RunOptions:
    """The run options of a pretraining on ``compute``'s devices."""
    return RunOptions(
        resume=resume,
        flow_run_id=flow_run_id,
        accelerator=compute.accelerator,
        devices=compute.devices,
        strategy=compute.strategy,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the training process (and, through Lightning's launcher, of every other rank)."""
    from components.training.stage import pretrain

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--flow-run-id")
    args = parser.parse_args(argv)
    workspace = Workspace.current()
    options = compute_options(workspace.params.compute, args.resume, args.flow_run_id)
    result = pretrain(workspace, args.dataset, options)
    if result is not None:  # rank 0
        args.out.write_text(json.dumps(result.to_dict(), default=str))


if __name__ == "__main__":
    main()
