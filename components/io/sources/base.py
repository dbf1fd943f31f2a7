"""What a source adapter yields: references to records, with the metadata the drop gives for them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RecordMeta:
    """Metadata of one record as the drop states it (raw patient id included; ingest pseudonymizes it)."""

    patient_id: str | None = None
    age: float | None = None
    sex: str | None = None
    site: str | None = None
    device: str | None = None
    report: str | None = None
    labels: dict[str, float] = field(default_factory=dict)
    label_system: str = ""
    split: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)


#: the metadata of a reference whose metadata the reading worker completes (shared, so chunks of
#: references sent to workers carry it once)
NO_META = RecordMeta()


@dataclass(frozen=True)
class RecordRef:
    """A record of a drop: where its header is, and what the drop says about it.

    ``problem`` is set when the reference itself is unusable (a manifest row pointing at a missing
    file or outside the drop); such a record goes to the quarantine without being read.
    ``meta_from`` names how the reading worker completes the metadata: ``"cinc-comments"`` from header
    comments (CinC ``#Dx``…), ``"ptbxl-row"`` from the drop's CSV ``row`` (parsed in the worker, in parallel).
    """

    source: str
    source_record: str
    base: str | None  # path of the record's header without ``.hea``
    meta: RecordMeta = NO_META
    problem: str | None = None
    meta_from: str | None = None
    row: dict[str, Any] | None = None


def resolve_inside(
    drop: Path | str, relative: str, headers: Mapping[str, bool] | None = None
) -> tuple[str | None, str | None]:
    """Resolve a record path given by a manifest; refuse anything that leaves the drop.

    ``drop`` should already be a real path (``os.path.realpath``) when called per record.
    ``headers`` (optional, from :func:`header_paths`) says which header files exist and which of them
    are symbolic links, to save two stats per record.
    Paths are checked lexically and, for symbolic links, by where they really point.
    """
    root = str(drop)
    candidate = os.path.normpath(os.path.join(root, relative))
    if os.path.isabs(relative) or not candidate.startswith(root + os.sep):
        return None, f"manifest path {relative!r} points outside the drop"
    header = candidate + ".hea"
    exists = header in headers if headers is not None else os.path.isfile(header)
    if not exists:
        return None, f"manifest row points at a missing record: {relative}.hea not found"
    is_link = headers[header] if headers is not None else os.path.islink(header)
    if is_link and not os.path.realpath(header).startswith(root + os.sep):
        return None, f"manifest path {relative!r} links outside the drop"
    return candidate, None


def header_paths(folder: Path) -> dict[str, bool]:
    """Absolute path of every ``.hea`` file below ``folder`` → whether it is a symbolic link.

    One walk instead of stats per row; like :func:`os.walk`, symbolic links to folders are not followed.
    """
    found: dict[str, bool] = {}
    folders = [os.path.realpath(folder)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    if not entry.is_symlink():
                        folders.append(entry.path)
                elif entry.name.endswith(".hea"):
                    found[entry.path] = entry.is_symlink()
    return found


def clean_text(value: object) -> str | None:
    """A stripped string, or None for empty/NaN values."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    text = " ".join(str(value).split())
    return text or None


def normalise_sex(value: object) -> str | None:
    """'male' / 'female' / None from the spellings drops use (M, F, Male, 0/1 is source specific)."""
    text = (clean_text(value) or "").lower()
    if text in {"m", "male", "mann", "männlich"}:
        return "male"
    if text in {"f", "female", "w", "frau", "weiblich"}:
        return "female"
    return None


def parse_age(value: object) -> float | None:
    """Age in years, or None when absent/unparsable."""
    text = clean_text(value)
    if text is None:
        return None
    try:
        age = float(text)
    except ValueError:
        return None
    return None if age != age else age
