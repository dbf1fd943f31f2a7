"""`ecgops validate` and `ecgops review` (register with ``app.command("validate")(validate_command)`` and
``app.add_typer(review_app, name="review")``)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


class ReviewStatus(StrEnum):
    quarantined = "quarantined"
    accepted = "accepted"
    rejected = "rejected"


review_app = typer.Typer(
    help="Steward review of quarantined records: list, accept, reject.", no_args_is_help=True
)


def validate_command(
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset under data/ (default: params.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the machine-readable result as JSON."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (default: schemas/validation)."),
    dataset_version: str | None = typer.Option(
        None, "--dataset-version", help="Registered dataset version md5: record this run in the registry."
    ),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the 12-lead plots of quarantined records."),
) -> None:
    """Validate a dataset: quality features, GX suites, quarantine, reports. Exit 1 when a block fails."""
    from components.validation import ValidateOptions, validate
    from components.workspace import Workspace

    options = ValidateOptions(policy_path=policy, plots=not no_plots)
    result = validate(Workspace.current(), dataset, dataset_version_md5=dataset_version, options=options)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), default=str))
    else:
        table = Table(title=f"validation of {result.dataset}: {result.verdict.upper()}")
        for column in ("expectation", "severity", "result", "failing"):
            table.add_column(column)
        for e in result.expectations:
            if not e.success:
                table.add_row(
                    e.id, e.severity, "FAIL", "" if e.unexpected_count is None else str(e.unexpected_count)
                )
        console.print(table)
        console.print(
            f"{result.n_records} records, {result.n_quarantined} quarantined (awaiting review), "
            f"{result.n_rejected} rejected, {result.n_accepted} accepted"
        )
        console.print(f"steward summary: {result.summary_html}")
        if result.data_docs_index:
            console.print(f"data docs: {result.data_docs_index}")
    raise typer.Exit(result.exit_code)


@review_app.command("list")
def review_list(
    dataset: str | None = typer.Option(None, "--dataset"),
    status: ReviewStatus | None = typer.Option(None, "--status", help="Only records in this state."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List the records quarantined by the latest validation, with their reasons and decisions."""
    from components.validation import list_quarantined
    from components.workspace import Workspace

    frame = list_quarantined(Workspace.current(), dataset, status=status.value if status else None)
    if json_out:
        typer.echo(frame.drop(columns=["reasons"]).to_json(orient="records"))
        return
    table = Table(title=f"{len(frame)} quarantined records")
    table.add_column("record_id", no_wrap=True, min_width=16)  # stewards copy it into accept/reject
    for column in ("source_record", "status", "reasons", "decision"):
        table.add_column(column, overflow="fold")
    for row in frame.itertuples(index=False):
        decision = "" if row.status == "quarantined" else f"{row.reviewer}: {row.decision_note}"
        table.add_row(
            str(row.record_id), str(row.source_record), str(row.status), str(row.reasons_text), decision
        )
    console.print(table)


def _decide(
    record_ids: list[str],
    decision: Literal["accept", "reject"],
    note: str,
    dataset: str | None,
    reviewer: str | None,
) -> None:
    from components.validation import ReviewError, decide
    from components.workspace import Workspace

    try:
        made = decide(Workspace.current(), record_ids, decision, note, dataset=dataset, reviewer=reviewer)
    except ReviewError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    for d in made:
        console.print(
            f"{d.decision} {d.record_id} by {d.reviewer} at {d.decided_at:%Y-%m-%d %H:%M:%S}: {d.note}"
        )


@review_app.command("accept")
def review_accept(
    record_ids: list[str] = typer.Argument(..., help="Record ids from `ecgops review list`."),
    note: str = typer.Option(..., "--note", help="Why the record may be used despite the findings."),
    dataset: str | None = typer.Option(None, "--dataset"),
    reviewer: str | None = typer.Option(None, "--reviewer", help="Default: ECGOPS_USER or the login name."),
) -> None:
    """Accept quarantined records (overrides the quarantine on the next validate)."""
    _decide(record_ids, "accept", note, dataset, reviewer)


@review_app.command("reject")
def review_reject(
    record_ids: list[str] = typer.Argument(..., help="Record ids from `ecgops review list`."),
    note: str = typer.Option(..., "--note", help="Why the record stays excluded."),
    dataset: str | None = typer.Option(None, "--dataset"),
    reviewer: str | None = typer.Option(None, "--reviewer", help="Default: ECGOPS_USER or the login name."),
) -> None:
    """Reject quarantined records (confirms the quarantine)."""
    _decide(record_ids, "reject", note, dataset, reviewer)
