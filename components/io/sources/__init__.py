"""Source adapters: turn a hospital drop (PTB-XL, PhysioNet/CinC, generic WFDB) into record references."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from components.io.sources import cinc, generic, ptbxl
from components.io.sources.base import RecordMeta, RecordRef

SourceFormat = Literal["auto", "ptbxl", "cinc", "wfdb"]
FORMATS: tuple[str, ...] = ("auto", "ptbxl", "cinc", "wfdb")


def detect_format(drop: Path) -> str:
    """``ptbxl`` if the drop has ``ptbxl_database.csv``, ``cinc`` if headers carry ``#Dx``, else ``wfdb``."""
    if ptbxl.looks_like(drop):
        return "ptbxl"
    if cinc.looks_like(drop):
        return "cinc"
    return "wfdb"


def iter_drop(drop: Path, fmt: str, target_fs: int) -> tuple[str, Iterator[RecordRef], dict[str, int]]:
    """The format used, the drop's record references and counts of rows that name no record here."""
    if not drop.is_dir():
        raise FileNotFoundError(f"drop folder not found: {drop}")
    chosen = detect_format(drop) if fmt == "auto" else fmt
    if chosen == "ptbxl":
        refs, counts = ptbxl.iter_records(drop, target_fs)
        return chosen, refs, counts
    if chosen == "cinc":
        return chosen, cinc.iter_records(drop), {}
    if chosen == "wfdb":
        return chosen, generic.iter_records(drop), {}
    raise ValueError(f"unknown drop format {fmt!r}; expected one of {', '.join(FORMATS)}")


def complete_meta(ref: RecordRef, comments: tuple[str, ...]) -> RecordMeta:
    """The record's metadata, completed from its header comments or its CSV row where the source keeps it."""
    if ref.meta_from == "cinc-comments":
        return cinc.meta_from_comments(ref.meta, comments)
    if ref.meta_from == "ptbxl-row" and ref.row is not None:
        return ptbxl.meta_from_row(ref.row)
    return ref.meta


__all__ = ["FORMATS", "RecordMeta", "RecordRef", "complete_meta", "detect_format", "iter_drop"]
