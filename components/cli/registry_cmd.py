"""``ecgops registry ...``: migrations, models, lineage, promotion and the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from sqlalchemy.exc import ArgumentError

from components.errors import UserError
from components.registry import LineageNode, Registry, to_jsonable

registry_app = typer.Typer(help="Model registry: models, lineage, promotion, audit.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

URL_OPTION = typer.Option(None, "--url", help="Registry URL (default: ECGOPS_REGISTRY_URL or the workspace).")
JSON_OPTION = typer.Option(False, "--json", help="Print JSON for machines.")


class Direction(StrEnum):
    up = "up"
    down = "down"
    both = "both"


@contextmanager
def _errors() -> Iterator[None]:
    """Registry errors (and the user's other errors, e.g. a gate policy file) become a red message and exit
    code 2, never a traceback."""
    try:
        yield
    except UserError as exc:
        _usage_error(str(exc))
    except ArgumentError as exc:
        _usage_error(f"the registry URL (--url or ECGOPS_REGISTRY_URL) is not one SQLAlchemy can open: {exc}")


@contextmanager
def _registry(url: str | None) -> Iterator[Registry]:
    """The workspace's registry, or the one at ``--url``."""
    from components.config import get_settings
    from components.workspace import Workspace

    with _errors(), Workspace(get_settings()).with_registry(url).registry() as reg:
        yield reg


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(to_jsonable(payload), indent=2, default=str))


@registry_app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Target Alembic revision."),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of applying it."),
    url: str | None = URL_OPTION,
) -> None:
    """Apply the registry's schema migrations."""
    from components.config import get_settings
    from components.registry import db

    target = url or get_settings().resolved_registry_url
    with _errors():
        if sql:
            db.upgrade_sql(target, revision)
            return
        engine = db.make_engine(target)
        try:
            before = db.current_revision(engine)
            db.upgrade(engine, revision)
            after = db.current_revision(engine)
        finally:
            engine.dispose()
    console.print(f"registry at revision {after} (was {before or 'empty'})")


@registry_app.command()
def models(
    task: str | None = typer.Option(None, help="Only models of this task."),
    stage: str | None = typer.Option(None, help="Only models in this stage."),
    kind: str | None = typer.Option(None, help="foundation or task."),
    name: str | None = typer.Option(None, help="Only versions of this model name."),
    limit: int = typer.Option(50, help="At most this many, newest first."),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """List registered models, newest first."""
    with _registry(url) as reg:
        found = reg.models(name=name, task=task, kind=kind, stage=stage, limit=limit)
    if as_json:
        _print_json(found)
        return
    table = Table("model", "kind", "task", "stage", "gate", "dataset", "parent", "created")
    for column in table.columns[:5]:
        column.no_wrap = True
    for m in found:
        dataset = f"{m.dataset} {m.dataset_version_md5[:10]}" if m.dataset_version_md5 else "-"
        table.add_row(
            m.ref,
            m.kind,
            m.task or "-",
            m.stage or "-",
            m.gate_verdict or "-",
            dataset,
            m.parent or "-",
            m.created_at.strftime("%Y-%m-%d"),
        )
    console.print(table)


@registry_app.command()
def show(
    model: str = typer.Argument(..., help="name@version, or name for the latest version."),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Show one model with its metrics, gate decision and Bentos."""
    with _registry(url) as reg:
        info = reg.model(model)
        metrics = reg.metrics(info.id)
        gate = reg.latest_gate_decision(info.id)
        bentos = reg.bentos(model=info.id)
    if as_json:
        _print_json({"model": info, "metrics": metrics, "gate": gate, "bentos": bentos})
        return
    summary = Table.grid(padding=(0, 2))
    for key, value in to_jsonable(info).items():
        summary.add_row(f"[bold]{key}[/]", "-" if value is None else str(value))
    console.print(summary)
    if gate is not None:
        reasons = f" ({'; '.join(gate.reasons)})" if gate.reasons else ""
        console.print(f"gate [bold]{gate.policy}[/]: {gate.verdict}{reasons}")
    if metrics:
        table = Table("split", "cohort", "metric", "value", "95% CI", "n", title="metrics")
        for m in metrics:
            ci = (
                f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
                if m.ci_low is not None and m.ci_high is not None
                else "-"
            )
            table.add_row(m.split, m.cohort, m.name, f"{m.value:.4f}", ci, str(m.n or "-"))
        console.print(table)
    for b in bentos:
        console.print(f"bento {b.tag} sha256 {b.sha256[:16]}... {b.artifact_uri}")


@registry_app.command()
def lineage(
    target: str = typer.Argument(..., help="Bento tag, model (name@version) or dataset md5 (prefix)."),
    direction: Direction | None = typer.Option(
        None, help="up: what it came from; down: what was built on it (default: both for models)."
    ),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Print the lineage of a Bento, model or dataset version as a tree."""
    with _registry(url) as reg:
        kind, ref = reg.resolve(target)
        chosen = direction or (Direction.down if kind == "dataset_version" else Direction.up)
        if kind == "model" and direction is None:
            chosen = Direction.both
        trees: dict[str, LineageNode] = {}
        if chosen in (Direction.up, Direction.both):
            if kind == "dataset_version":
                _usage_error(
                    "lineage up starts from a model or Bento; a dataset version only has --direction down"
                )
            trees["up"] = reg.lineage_up(bento=ref) if kind == "bento" else reg.lineage_up(model=ref)
        if chosen in (Direction.down, Direction.both):
            if kind == "bento":
                _usage_error("a Bento has nothing built on it; use --direction up")
            trees["down"] = (
                reg.lineage_down(dataset_version=ref)
                if kind == "dataset_version"
                else reg.lineage_down(model=ref)
            )
    if as_json:
        _print_json(trees)
        return
    for name, root in trees.items():
        heading = "comes from" if name == "up" else "built on it"
        tree = Tree(f"[bold]{root.label}[/] ({heading})")
        for child in root.children:
            _add(tree, child)
        console.print(tree)


def _usage_error(message: str) -> NoReturn:
    """Fail with a usage message (exit code 2)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _add(tree: Tree, node: LineageNode) -> None:
    detail = ""
    if node.kind == "run":
        params = json.dumps(node.attrs.get("parameters") or {}, sort_keys=True)
        detail = f" host {node.attrs['host']} params {params[:80]}"
    elif node.kind in ("model", "bento"):
        detail = f" sha256 {str(node.attrs['sha256'])[:12]}"
    branch = tree.add(f"{node.label}[dim]{detail}[/]", highlight=False)
    for child in node.children:
        _add(branch, child)


@registry_app.command()
def promote(
    model: str = typer.Argument(..., help="name@version of a task model."),
    stage: str = typer.Argument(..., help="candidate, staging, production or archived."),
    reason: str | None = typer.Option(None, help="Why (recorded in the audit log; required with --force)."),
    force: bool = typer.Option(
        False, "--force", help="Override a failed or missing gate or shadow report (needs --reason)."
    ),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move a task model to a stage; the previous production model of its task is archived.

    Production may need a passed shadow report (``ecgops shadow TASK --candidate MODEL``) when the model's
    gate policy says so; ``--force --reason`` overrides that too, audited."""
    from components.config import get_settings
    from components.evaluation.release import promote as promote_model
    from components.workspace import Workspace

    with _errors():
        workspace = Workspace(get_settings()).with_registry(url)
        change = promote_model(workspace, model, stage, reason=reason, force=force)
    if as_json:
        _print_json(change)
        return
    forced = " [yellow](forced)[/]" if change.forced else ""
    console.print(
        f"{change.model}: {change.from_stage} -> [bold]{change.to_stage}[/]{forced} by {change.actor}"
    )
    for ref in change.demoted:
        console.print(f"{ref}: production -> archived")


@registry_app.command()
def audit(
    model: str | None = typer.Option(None, help="Only entries about this model (name@version)."),
    action: str | None = typer.Option(None, help="Only this action, e.g. stage.changed."),
    actor: str | None = typer.Option(None, help="Only entries by this actor."),
    limit: int = typer.Option(100, help="At most this many, newest first."),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Show the append-only audit log: who did what, when and why."""
    with _registry(url) as reg:
        entity_id = reg.model(model).ref if model else None
        entries = reg.audit(
            entity_type="model" if model else None,
            entity_id=entity_id,
            action=action,
            actor=actor,
            limit=limit,
        )
    if as_json:
        _print_json(entries)
        return
    table = Table("when (UTC)", "who", "action", "what", "why")
    for e in entries:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.summary, e.reason or "")
    console.print(table)
