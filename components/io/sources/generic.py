"""A folder of WFDB records, with an optional ``manifest.csv`` describing them.

Manifest columns: ``record`` (path relative to the drop, without extension; required), and any of
``patient_id``, ``report``, ``labels`` (codes separated by ``,`` or ``;``), ``label_system``, ``age``,
``sex``, ``site``, ``device``. Records the manifest does not name are ingested with what their headers say.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from components.errors import UserError
from components.io.sources.base import (
    RecordMeta,
    RecordRef,
    clean_text,
    normalise_sex,
    parse_age,
    resolve_inside,
)

MANIFEST_CSV = "manifest.csv"


class ManifestError(UserError, ValueError):
    """The drop's manifest CSV cannot be used."""


def iter_records(drop: Path) -> Iterator[RecordRef]:
    """Manifest rows first (with their metadata), then headers the manifest does not name."""
    named: set[str] = set()
    manifest = drop / MANIFEST_CSV
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        if "record" not in table.columns:
            raise ManifestError(f"{manifest}: needs a 'record' column (has {', '.join(table.columns)})")
        real_root = os.path.realpath(drop)
        for row in table.to_dict("records"):
            relative = str(row["record"]).strip().removesuffix(".hea")
            base, problem = resolve_inside(real_root, relative)
            if base is not None:
                named.add(base)
            yield RecordRef(
                source="wfdb",
                source_record=relative,
                base=base,
                meta=_meta({str(k): str(v) for k, v in row.items()}),
                problem=problem,
            )
    root = drop.resolve()
    for hea in sorted(root.rglob("*.hea")):
        record = hea.with_suffix("")
        if str(record) in named:
            continue
        relative = record.relative_to(root).as_posix()
        yield RecordRef(
            source="wfdb",
            source_record=relative,
            base=str(record),
            meta=RecordMeta(patient_id=f"record:{relative}"),
        )


def _meta(row: dict[str, str]) -> RecordMeta:
    labels_text = clean_text(row.get("labels")) or ""
    codes = [c.strip() for c in labels_text.replace(";", ",").split(",") if c.strip()]
    return RecordMeta(
        patient_id=clean_text(row.get("patient_id")) or f"record:{row['record'].strip()}",
        age=parse_age(row.get("age")),
        sex=normalise_sex(row.get("sex")),
        site=clean_text(row.get("site")),
        device=clean_text(row.get("device")),
        report=clean_text(row.get("report")),
        labels={code: 100.0 for code in codes},
        label_system=clean_text(row.get("label_system")) or ("" if not codes else "LOCAL"),
        split=None,
    )
