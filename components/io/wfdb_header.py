"""A fast parser for single-segment WFDB headers.

``wfdb.rdheader`` is the reference (and what :mod:`components.io.wfdb_reader` falls back to); it parses
about 150–1,000 headers/s, which dominates ingest time. This parser reads the same fields with plain
string splitting, applies the same defaults (gain 0 → 200, missing baseline → ADC zero, units mV,
fs 250) and raises :class:`HeaderError` for anything it does not understand so the caller can fall back.
A test checks it agrees with ``wfdb.rdheader`` on every header of the shared data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DEFAULT_FS = 250.0
DEFAULT_GAIN = 200.0
DEFAULT_UNITS = "mV"

_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?$")
_GAIN = re.compile(r"^(?P<gain>-?\d*\.?\d*(?:e[+-]?\d+)?)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>.*))?$")
_FS = re.compile(r"^(?P<fs>\d*\.?\d*)(?:/(?P<counter>-?\d*\.?\d*)(?:\((?P<base>-?\d*\.?\d*)\))?)?$")


class HeaderError(ValueError):
    """The header text is not a single-segment WFDB header this parser understands."""


@dataclass(slots=True)
class SignalSpec:
    """One signal line of a WFDB header."""

    file_name: str
    fmt: str
    samps_per_frame: int
    skew: int
    byte_offset: int
    adc_gain: float
    baseline: int
    units: str
    adc_res: int | None
    adc_zero: int
    sig_name: str


@dataclass(slots=True)
class Header:
    """A parsed single-segment WFDB header."""

    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    signals: tuple[SignalSpec, ...]
    comments: tuple[str, ...] = field(default=())


def parse_header(text: str) -> Header:
    """Parse WFDB header text; :class:`HeaderError` for syntax it cannot read."""
    comments: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        lines.append(raw.split("#", 1)[0].strip() if "#" in raw else stripped)
    if not lines:
        raise HeaderError("header has no record line")
    record = lines[0].split()
    if len(record) < 2:
        raise HeaderError(f"record line too short: {lines[0]!r}")
    name = record[0]
    if "/" in name:
        raise HeaderError("multi-segment header")
    try:
        n_sig = int(record[1])
    except ValueError as exc:
        raise HeaderError(f"bad signal count in record line: {lines[0]!r}") from exc
    fs = DEFAULT_FS
    if len(record) > 2:
        match = _FS.match(record[2])
        if not match or not match["fs"]:
            raise HeaderError(f"bad sampling frequency: {record[2]!r}")
        fs = float(match["fs"])
    sig_len: int | None = None
    if len(record) > 3:
        try:
            sig_len = int(record[3])
        except ValueError as exc:
            raise HeaderError(f"bad signal length: {record[3]!r}") from exc
    if len(lines) - 1 != n_sig:
        raise HeaderError(f"record line announces {n_sig} signals, header has {len(lines) - 1} signal lines")
    signals = tuple(_parse_signal_line(line) for line in lines[1:])
    return Header(name, n_sig, fs, sig_len, signals, tuple(comments))


def read_header(path: Path | str) -> Header:
    """Read and parse a ``.hea`` file."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header is not UTF-8 text ({exc.reason})") from exc
    return parse_header(text)


def _parse_signal_line(line: str) -> SignalSpec:
    parts = line.split(maxsplit=8)
    if len(parts) < 2:
        raise HeaderError(f"signal line too short: {line!r}")
    for value in parts[5:8]:  # initial value, checksum, block size: checked, not used
        if not value.lstrip("-").isdigit():
            raise HeaderError(f"bad integer field {value!r} in signal line: {line!r}")
    description = parts[8] if len(parts) > 8 else ""
    return SignalSpec(parts[0], *_signal_fields(tuple(parts[1:5]), description))


@cache
def _signal_fields(
    tokens: tuple[str, ...], description: str
) -> tuple[str, int, int, int, float, int, str, int | None, int, str]:
    """Everything of a signal line but the file name (cached: records of one site share their layout)."""
    fmt, samps_per_frame, skew, byte_offset = _format_field(tokens[0])
    gain, baseline, units = _gain_field(tokens[1]) if len(tokens) > 1 else (DEFAULT_GAIN, None, DEFAULT_UNITS)
    try:
        numbers = [int(value) for value in tokens[2:4]]
    except ValueError as exc:
        raise HeaderError(f"bad ADC resolution/zero in signal line: {' '.join(tokens)!r}") from exc
    adc_res = numbers[0] if numbers else None
    adc_zero = numbers[1] if len(numbers) > 1 else 0
    return (
        fmt,
        samps_per_frame,
        skew,
        byte_offset,
        gain,
        adc_zero if baseline is None else baseline,
        units,
        adc_res,
        adc_zero,
        description,
    )


@cache
def _format_field(token: str) -> tuple[str, int, int, int]:
    """``16x1:0+24`` → (format, samples per frame, skew, byte offset)."""
    match = _FORMAT.match(token)
    if not match:
        raise HeaderError(f"bad format field: {token!r}")
    return match["fmt"], int(match["spf"] or 1), int(match["skew"] or 0), int(match["offset"] or 0)


@cache
def _gain_field(token: str) -> tuple[float, int | None, str]:
    """``1000.0(0)/mV`` → (gain, baseline or None, units); a gain of 0 means the default 200."""
    match = _GAIN.match(token)
    if not match or match["gain"] in ("", "-", "."):
        raise HeaderError(f"bad gain field: {token!r}")
    baseline = int(match["baseline"]) if match["baseline"] else None
    return float(match["gain"]) or DEFAULT_GAIN, baseline, match["units"] or DEFAULT_UNITS
