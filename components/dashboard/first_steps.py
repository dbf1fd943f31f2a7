"""What each dashboard page tells a newcomer when the workspace has nothing to show yet."""

from __future__ import annotations

#: what each page tells a newcomer to run when it has nothing to show yet
FIRST_STEPS: dict[str, str] = {
    "workspace": (
        "This workspace has no registry yet. Run the demo (`make demo`, i.e. `ecgops run --drop samples`) "
        "or ingest a hospital drop: `ecgops ingest DROP --dataset NAME`, then `ecgops validate "
        "--dataset NAME`."
    ),
    "quality": (
        "No validation run yet. Ingest a drop (`ecgops ingest DROP --dataset NAME`), then run "
        "`ecgops validate --dataset NAME` (or `ecgops run --drop DROP` for the whole flow)."
    ),
    "datasets": (
        "No dataset version yet. `ecgops ingest DROP --dataset NAME` reads a drop into the canonical store, "
        "versions it with DVC and records the version here."
    ),
    "models": (
        "No model yet. Pretrain a foundation model with `ecgops pretrain --dataset NAME` (or run the whole "
        "flow with `ecgops run --drop DROP`), then fine-tune task models on it."
    ),
    "deployments": (
        "No task model is in staging or production yet. Fine-tune and evaluate a task model, package it "
        "as a Bento, then promote it: `ecgops registry promote MODEL staging`."
    ),
    "monitoring": (
        "No monitoring run yet. Log predictions of the task's production model (`ecgops predict DROP "
        "--model TASK@production`, or serve its Bento), then check the logged window for drift: "
        "`ecgops monitor TASK` (`--schedule \"0 6 * * *\"` runs it every morning)."
    ),
    "shadow": (
        "No shadow evaluation yet. Replay a candidate beside the production model on a drop or on the logged "
        "window: `ecgops shadow TASK --candidate MODEL [--drop DIR]`."
    ),
    "predictions": (
        "The prediction log has no entry in this window. Batch predictions (`ecgops predict DROP --model "
        "TASK@production`) and served requests are logged; `ecgops predictions` lists them."
    ),
}
