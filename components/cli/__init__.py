"""The ``ecgops`` command line: one sub-command per pipeline stage, all calling :mod:`components`."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError

from components.cli.dashboard_cmd import dashboard_command
from components.cli.evaluate_cmd import evaluate_command, gate_command
from components.cli.finetune_cmd import finetune_command, tasks_command
from components.cli.ingest_cmd import data_app, ingest_command
from components.cli.monitor_cmd import monitor_command, shadow_command
from components.cli.package_cmd import bento_app, package_command, serve_command
from components.cli.predict_cmd import predict_command
from components.cli.predictions_cmd import predictions_command
from components.cli.pretrain_cmd import pretrain_command, recipes_command
from components.cli.registry_cmd import registry_app
from components.cli.run_cmd import run_command
from components.cli.schedule_cmd import schedule_command
from components.cli.stage_cmd import stage_command
from components.cli.validate_cmd import review_app, validate_command
from components.errors import UserError

app = typer.Typer(
    name="ecgops",
    help="MLOps for ECG foundation models: ingest, validate, version, pretrain, fine-tune, gate, package.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("ingest")(ingest_command)
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")
app.command("validate")(validate_command)
app.add_typer(review_app, name="review")
app.command("pretrain")(pretrain_command)
app.command("recipes")(recipes_command)
app.command("tasks")(tasks_command)
app.command("finetune")(finetune_command)
app.command("evaluate")(evaluate_command)
app.command("gate")(gate_command)
app.command("run")(run_command)
app.command("schedule")(schedule_command)
app.command("stage")(stage_command)
app.command("dashboard")(dashboard_command)
app.command("package")(package_command)
app.add_typer(bento_app, name="bento")
app.command("serve")(serve_command)
app.command("predict")(predict_command)
app.command("monitor")(monitor_command)
app.command("shadow")(shadow_command)
app.command("predictions")(predictions_command)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except (UserError, FileNotFoundError) as exc:  # the user's to fix: one red line, exit 2
        _fail(str(exc))
    except ArgumentError as exc:
        _fail(f"the registry URL (ECGOPS_REGISTRY_URL) is not one SQLAlchemy can open: {exc}")


def _fail(message: str) -> NoReturn:
    """One red line on stderr, exit code 2."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(2)
