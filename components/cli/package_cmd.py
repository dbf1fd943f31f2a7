"""``ecgops package``, ``ecgops bento pull|list`` and ``ecgops serve``: the CLI face of
:mod:`components.serving`.

Register with ``app.command("package")(package_command)``, ``app.add_typer(bento_app, name="bento")``
and ``app.command("serve")(serve_command)``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)
bento_app = typer.Typer(
    help="Bentos: pull the one a stage serves, list what is packaged.", no_args_is_help=True
)

JSON_OPTION = typer.Option("--json", help="Print the result as JSON on stdout.")


def package_command(
    model: Annotated[str, typer.Argument(help="Task model: name@version (or name for its latest version).")],
    force: Annotated[
        bool, typer.Option("--force", help="Package although the gate did not pass (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why the gate is overridden (audited).")] = None,
    family: Annotated[
        bool,
        typer.Option(
            "--family",
            help="Serve the model's task family in one Bento: with, for each task extending the model's "
            "task (its lead-set variants), that task's newest model whose gate passed; requests are routed "
            "by the leads they carry.",
        ),
    ] = False,
    stage: Annotated[
        str | None,
        typer.Option(help="With --family: take each other task's model from this stage (e.g. production)."),
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Build the Bento of a gated task model (or of its task family), export it to the artifact store and
    register it."""
    from components.serving.package import PackageOptions, package
    from components.workspace import Workspace

    options = PackageOptions(force=force, reason=reason, family=family, stage=stage)
    result = package(Workspace.current(), model, options)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"packaged {result.model}", show_header=False)
    table.add_row("Bento", result.tag)
    table.add_row("artifact", result.uri)
    table.add_row("sha256", result.sha256)
    table.add_row("size", f"{result.size_bytes / 1e6:.2f} MB")
    table.add_row("gate", result.gate_verdict + (" (forced, audited)" if result.forced else ""))
    if family:
        table.add_row("family members", ", ".join(result.members))
        table.add_row("left out (no gated model)", ", ".join(result.left_out) or "none")
    table.add_row("time", f"{result.elapsed_s:.1f} s")
    console.print(table)
    console.print(f"pull it elsewhere with: ecgops bento pull {result.task}@<stage> (once promoted)")


@bento_app.command("pull")
def pull_command(
    target: Annotated[
        str, typer.Argument(help="TASK@STAGE (e.g. superdiagnostic@production) or a Bento tag.")
    ],
    to: Annotated[
        Path | None, typer.Option("--to", help="Import into this BENTOML_HOME instead of the default one.")
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Fetch the Bento, verify its sha256 against the registry and import it into the local Bento store."""
    from components.serving.pull import pull
    from components.workspace import Workspace

    result = pull(Workspace.current(), target, home=to)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console.print(
        f"pulled [bold]{result.tag}[/] ({result.model}) from {result.uri}\n"
        f"sha256 {result.sha256} verified; imported into {result.bentoml_home}"
        + (" (replaced the local copy)" if result.replaced else "")
    )
    home = f"BENTOML_HOME={result.bentoml_home} " if to is not None else ""
    console.print(f"serve it with: {home}bentoml serve {result.tag}   (or: ecgops serve {result.tag})")


@bento_app.command("list")
def list_command(
    task: Annotated[str | None, typer.Option(help="Only Bentos of this task.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Registered Bentos, newest first, with their artifact URI and sha256."""
    from components.registry import to_jsonable
    from components.workspace import Workspace

    with Workspace.current().registry() as registry:
        bentos = registry.bentos(task=task)
        stages = {b.model: registry.model(b.model).stage for b in bentos}
    if as_json:
        rows = [to_jsonable(b) | {"stage": stages[b.model]} for b in bentos]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="Bentos")
    for column in ("tag", "model", "stage", "artifact", "sha256"):
        table.add_column(column)
    for b in bentos:
        table.add_row(b.tag, b.model, stages[b.model] or "", b.artifact_uri, b.sha256[:16])
    console.print(table)


def serve_command(
    target: Annotated[str, typer.Argument(help="TASK@STAGE or a Bento tag (pulled first when missing).")],
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port in params.yaml).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default: serve.host in params.yaml).")] = None,
) -> None:
    """Serve a Bento over HTTP with bentoml serve (set ECGOPS_API_KEY to require an API key)."""
    import bentoml
    from bentoml.exceptions import NotFound

    from components.serving.pull import pull, resolve_bento
    from components.workspace import Workspace

    workspace = Workspace.current()
    serve = workspace.params.serve
    tag = target
    if "@" in target and ":" not in target:
        with workspace.registry() as registry:
            tag = resolve_bento(registry, target).tag
    try:
        bentoml.bentos.get(tag)
    except NotFound:
        console.print(f"{tag} is not in the local Bento store; pulling it")
        pull(workspace, tag)
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        tag,
        "--port",
        str(port or serve.port),
        "--host",
        host or serve.host,
    ]
    console.print(f"serving {tag} on http://{host or serve.host}:{port or serve.port}")
    console.file.flush()
    os.execve(
        sys.executable, command, {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    )  # signals reach bentoml


if __name__ == "__main__":
    typer.run(package_command)
