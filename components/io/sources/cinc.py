"""PhysioNet/CinC Challenge 2020/2021 layout: ``.hea`` + ``.mat`` with ``#Age``/``#Sex``/``#Dx`` comments.

Both header dialects are read: the challenge's own (``#Age: 74``) and wfdb-rewritten headers
(``# Age: 74``, ``16x1+24``, ``1000.0(0)/mV``). Records carry no patient id: each record is its own
patient (pseudonymized from the record name), and the site is the drop's sub-folder (source database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from components.io.sources.base import RecordMeta, RecordRef, clean_text, normalise_sex, parse_age

_MARKERS = ("dx:", "age:", "sex:")


def looks_like(drop: Path, sample: int = 5) -> bool:
    """A CinC drop's headers carry ``#Dx`` comments."""
    for number, hea in enumerate(sorted(drop.rglob("*.hea"))):
        if number >= sample:
            break
        text = hea.read_text(errors="replace").lower()
        if "#dx:" in text.replace(" ", ""):
            return True
    return False


def iter_records(drop: Path) -> Iterator[RecordRef]:
    """A reference per header; metadata is completed from the header comments when read."""
    for hea in sorted(drop.rglob("*.hea")):
        relative = hea.relative_to(drop).with_suffix("")
        site = relative.parts[0] if len(relative.parts) > 1 else None
        yield RecordRef(
            source="cinc",
            source_record=relative.as_posix(),
            base=str(hea.with_suffix("")),
            meta=RecordMeta(patient_id=f"cinc:{relative.name}", site=site, label_system="SNOMED"),
            meta_from="cinc-comments",
        )


def meta_from_comments(meta: RecordMeta, comments: tuple[str, ...]) -> RecordMeta:
    """Fill age, sex and SNOMED labels from ``Age:``/``Sex:``/``Dx:`` comment lines."""
    fields: dict[str, str] = {}
    for comment in comments:
        key, _, value = comment.partition(":")
        if _ and key.strip().lower() + ":" in _MARKERS:
            fields[key.strip().lower()] = value.strip()
    codes = [c.strip() for c in fields.get("dx", "").split(",") if c.strip()]
    return RecordMeta(
        patient_id=meta.patient_id,
        age=parse_age(fields.get("age")),
        sex=normalise_sex(fields.get("sex")),
        site=meta.site,
        device=meta.device,
        report=clean_text(meta.report),
        labels={code: 100.0 for code in codes},
        label_system="SNOMED",
        split=meta.split,
        annotations=dict(meta.annotations),
    )
