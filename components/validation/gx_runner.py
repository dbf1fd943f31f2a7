"""Run policy suites as Great Expectations 1.x checkpoints over in-memory tables.

The GX project lives in the workspace state dir (``.ecgops/gx``); every run refreshes the suite from
the policy, validates the whole table in one checkpoint run and updates the Data Docs site.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from components.validation.policy import ExpectationSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one policy expectation over one table."""

    id: str
    suite: str
    severity: str
    description: str
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    success: bool
    element_count: int | None
    unexpected_count: int | None
    failing_record_ids: list[str] = field(default_factory=list)
    observed: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite,
            "severity": self.severity,
            "description": self.description,
            "expectation": self.expectation,
            "column": self.column,
            "kwargs": self.kwargs,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "observed": self.observed,
        }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def open_context(state_dir: Path) -> Any:
    """The file-backed GX context under ``state_dir/gx`` (created on first use; progress bars off here)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    state_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(state_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _build_suite(name: str, specs: list[ExpectationSpec], policy_version: str) -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name, meta={"policy_version": policy_version})
    for spec in specs:
        cls = getattr(gxe, _camel(spec.expectation), None)
        if cls is None:
            raise ValueError(f"policy expectation {spec.id}: unknown GX expectation {spec.expectation!r}")
        limits = ", ".join(f"{k}={v}" for k, v in spec.kwargs.items() if k != "column")
        target = f"{spec.column}: " if spec.column else ""
        suite.add_expectation(
            cls(
                **spec.kwargs,
                meta={"id": spec.id, "severity": spec.severity},
                description=f"{spec.id} [{spec.severity}] — {target}{limits}",
                notes=spec.description,
            )
        )
    return suite


def _checkpoint(context: Any, dataset: str, suite_name: str, suite: Any, id_column: str | None) -> Any:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    source = context.data_sources.add_or_update_pandas(name=f"ecgops-{dataset}")
    asset_name = suite_name
    asset = next((a for a in source.assets if a.name == asset_name), None) or source.add_dataframe_asset(
        asset_name
    )
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None)
    batch = batch or asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{dataset}.{suite_name}", data=batch, suite=suite)
    )
    result_format: dict[str, Any] = {"result_format": "COMPLETE" if id_column else "SUMMARY"}
    if id_column:
        result_format["unexpected_index_column_names"] = [id_column]
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{dataset}.{suite_name}",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format=result_format,
        )
    )


def run_suite(
    context: Any,
    *,
    dataset: str,
    suite_name: str,
    specs: list[ExpectationSpec],
    table: pd.DataFrame,
    policy_version: str,
    id_column: str | None = None,
    run_name: str | None = None,
) -> list[ExpectationOutcome]:
    """Validate ``table`` against ``specs`` in one checkpoint run; failing ids come from ``id_column``."""
    from great_expectations.core.run_identifier import RunIdentifier

    if not specs:
        return []
    gx_suite = _build_suite(f"{dataset}.{suite_name}", specs, policy_version)
    checkpoint = _checkpoint(context, dataset, suite_name, gx_suite, id_column)
    result = checkpoint.run(
        batch_parameters={"dataframe": table}, run_id=RunIdentifier(run_name=run_name) if run_name else None
    )
    by_id = {spec.id: spec for spec in specs}
    outcomes: list[ExpectationOutcome] = []
    for suite_result in result.run_results.values():
        for r in suite_result.results:
            spec = by_id[r.expectation_config.meta["id"]]
            detail = r.result or {}
            failing: list[str] = []
            if id_column and not r.success:
                failing = [str(row[id_column]) for row in detail.get("unexpected_index_list") or []]
            if r.exception_info and r.exception_info.get("raised_exception"):
                log.warning("expectation %s raised: %s", spec.id, r.exception_info.get("exception_message"))
            outcomes.append(
                ExpectationOutcome(
                    id=spec.id,
                    suite=suite_name,
                    severity=spec.severity,
                    description=spec.description,
                    expectation=spec.expectation,
                    column=spec.column,
                    kwargs=spec.kwargs,
                    success=bool(r.success),
                    element_count=_optional_int(detail.get("element_count")),
                    unexpected_count=_optional_int(detail.get("unexpected_count")),
                    failing_record_ids=failing,
                    observed=_jsonable(detail.get("observed_value")),
                )
            )
    return outcomes


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def data_docs_index(context: Any) -> Path | None:
    """Path of the local Data Docs site's index.html, if built."""
    sites = context.get_docs_sites_urls()
    for site in sites:
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            return Path(url.removeprefix("file://"))
    return None
