"""Prediction entries as Arrow tables (what one Parquet part holds) and back.

Every part has the fixed columns of :data:`SCHEMA`, then one ``quality.<name>`` float64 column per
signal-quality feature its entries carry (an entry without a feature holds null there; NaN stays NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from components.predictions.entry import PredictionEntry

QUALITY_PREFIX = "quality."
TIME_TYPE = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("time", TIME_TYPE),
        ("request_id", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("model_ref", pa.string()),
        ("bento", pa.string()),
        ("dataset_version", pa.string()),
        ("input_hash", pa.string()),
        ("site", pa.string()),
        ("device", pa.string()),
        ("n_windows", pa.int32()),
        ("leads_used", pa.list_(pa.string())),
        ("labels", pa.list_(pa.string())),
        ("probabilities", pa.list_(pa.float64())),
        ("decisions", pa.list_(pa.bool_())),
        ("embedding", pa.list_(pa.float32())),
    ]
)


def to_table(entries: Sequence[PredictionEntry]) -> pa.Table:
    """``entries`` as one table of :data:`SCHEMA` plus their quality columns (sorted by name)."""
    columns = {
        field.name: pa.array([getattr(entry, field.name) for entry in entries], type=field.type)
        for field in SCHEMA
    }
    names = sorted({name for entry in entries for name in entry.quality})
    for name in names:
        values = [entry.quality.get(name) for entry in entries]
        columns[QUALITY_PREFIX + name] = pa.array(values, type=pa.float64())
    return pa.table(columns)


def conform(table: pa.Table) -> pa.Table:
    """A part's table with the fixed columns in their types and the quality columns as float64 (other
    columns are left out); ``ValueError`` says which column is missing or of another type."""
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"missing columns {', '.join(missing)}")
    quality = sorted(name for name in table.column_names if name.startswith(QUALITY_PREFIX))
    fields = [*SCHEMA, *(pa.field(name, pa.float64()) for name in quality)]
    arrays = []
    for field in fields:
        column = table.column(field.name)
        try:
            arrays.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column {field.name} is {column.type}, not {field.type}: {exc}") from None
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def empty_table() -> pa.Table:
    """A table of :data:`SCHEMA` without rows (an empty log)."""
    return SCHEMA.empty_table()


def to_entries(table: pa.Table) -> list[PredictionEntry]:
    """The entries a table holds (a spooled part re-sent to the log)."""
    return [PredictionEntry.model_validate(_entry_fields(row)) for row in table.to_pylist()]


def _entry_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in row.items() if not name.startswith(QUALITY_PREFIX)}
    fields["quality"] = {
        name.removeprefix(QUALITY_PREFIX): value
        for name, value in row.items()
        if name.startswith(QUALITY_PREFIX) and value is not None
    }
    return fields
