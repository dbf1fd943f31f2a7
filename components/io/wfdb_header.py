"""A fast parser for single-segment WFDB headers.

``wfdb.rdheader`` is the reference (and what :mod:`components.io.wfdb_reader` falls back to); it parses
about 150–1,000 headers/s, which dominates ingest time. This parser reads the same fields with plain
string splitting, applies the same defaults (gain 0 → 200, missing baseline → ADC zero, units mV,
fs 250) and raises :class:`HeaderError` for anything it does not understand so the caller can fall back.
A test checks it agrees with ``wfdb.rdheader`` on every header of the shared data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

DEFAULT_FS = 250.0
DEFAULT_GAIN = 200.0
DEFAULT_UNITS = "mV"
#: distinct header layouts (and signal lines) kept parsed; a drop rarely has more than a few
_CACHED_LAYOUTS = 4096

_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?$")
_GAIN = re.compile(r"^(?P<gain>-?\d*\.?\d*(?:e[+-]?\d+)?)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>.*))?$")
_FS = re.compile(r"^(?P<fs>\d*\.?\d*)(?:/(?P<counter>-?\d*\.?\d*)(?:\((?P<base>-?\d*\.?\d*)\))?)?$")


class HeaderError(ValueError):
    """The header text is not a single-segment WFDB header this parser understands."""


class InvalidHeader(HeaderError):
    """A header field holds a value that is not one (``fs`` "nan", gain "abc"): wfdb would read the field's
    default instead, so a reader must not fall back to it."""


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """What the signal lines of a header say apart from file names, initial values and checksums.

    Records of one site share it, so it is parsed once and the same object is returned for every header
    with that layout (compared and hashed by identity: a cheap cache key for readers). ``signals`` carry
    no file name; ``file_index[i]`` is signal i's position in :attr:`Header.file_names`.
    """

    signals: tuple[SignalSpec, ...]
    file_index: tuple[int, ...]
    sig_names: tuple[str, ...]
    units: tuple[str, ...]
    storage_format: str  # the formats used, comma-separated in numeric order ("16", "16,212")

    def file_signals(self, file: int) -> tuple[SignalSpec, ...]:
        """The signals stored in file ``file`` (a position in :attr:`Header.file_names`), in order."""
        return tuple(s for s, f in zip(self.signals, self.file_index, strict=True) if f == file)


@dataclass(slots=True)
class Header:
    """A parsed single-segment WFDB header."""

    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    file_names: tuple[str, ...]
    layout: Layout
    comments: tuple[str, ...] = field(default=())

    @property
    def signals(self) -> tuple[SignalSpec, ...]:
        """Every signal line, with its file name."""
        names = self.file_names
        return tuple(
            _with_file(spec, names[f])
            for spec, f in zip(self.layout.signals, self.layout.file_index, strict=True)
        )


def parse_header(text: str) -> Header:
    """Parse WFDB header text; :class:`HeaderError` for syntax it cannot read."""
    comments: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped[0] == "#":
            comments.append(stripped[1:].strip())
            continue
        lines.append(stripped.split("#", 1)[0].rstrip() if "#" in stripped else stripped)
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
    fs = _sampling_frequency(record[2]) if len(record) > 2 else DEFAULT_FS
    sig_len: int | None = None
    if len(record) > 3:
        try:
            sig_len = int(record[3])
        except ValueError as exc:
            raise InvalidHeader(f"bad signal length: {record[3]!r}") from exc
    if len(lines) - 1 != n_sig:
        raise HeaderError(f"record line announces {n_sig} signals, header has {len(lines) - 1} signal lines")
    file_names, layout = _signal_lines(lines[1:])
    return Header(name, n_sig, fs, sig_len, file_names, layout, tuple(comments))


def _signal_lines(lines: list[str]) -> tuple[tuple[str, ...], Layout]:
    """File names and layout of the signal lines.

    Usually every line has all nine fields: the fields are then taken column-wise (a few C-level calls
    instead of Python work per line), else line by line.
    """
    rows = [line.split(maxsplit=8) for line in lines]
    if rows and all(len(row) == 9 for row in rows):
        files, fmts, gains, resolutions, zeros, *integers, descriptions = zip(*rows, strict=True)
        if not _integers(integers[0] + integers[1] + integers[2]):
            bad = next(v for v in integers[0] + integers[1] + integers[2] if not _integers((v,)))
            raise InvalidHeader(f"bad integer field {bad!r} in a signal line")
        index = {name: i for i, name in enumerate(dict.fromkeys(files))}
        file_index = tuple(map(index.__getitem__, files))
        return tuple(index), _columns_layout(file_index, fmts, gains, resolutions, zeros, descriptions)
    file_index_of: dict[str, int] = {}
    keys: list[tuple[int, tuple[str, ...], str]] = []
    for line, row in zip(lines, rows, strict=True):
        if len(row) < 2:
            raise HeaderError(f"signal line too short: {line!r}")
        for value in row[5:8]:  # initial value, checksum, block size: checked, not used
            if not _integers((value,)):
                raise InvalidHeader(f"bad integer field {value!r} in signal line: {line!r}")
        file = file_index_of.setdefault(row[0], len(file_index_of))
        keys.append((file, tuple(row[1:5]), row[8] if len(row) > 8 else ""))
    return tuple(file_index_of), _layout(tuple(keys))


def _integers(tokens: tuple[str, ...]) -> bool:
    """Whether every token is a decimal integer (``-?[0-9]+``), checked with a few string operations on
    all of them at once (a regular expression cost more than the rest of the header)."""
    text = " " + " ".join(tokens)
    digits = text.replace(" -", " ")  # a sign only where a token starts
    return digits.isascii() and digits.replace(" ", "").isdigit() and "  " not in digits and digits[-1] != " "


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _columns_layout(
    file_index: tuple[int, ...],
    fmts: tuple[str, ...],
    gains: tuple[str, ...],
    resolutions: tuple[str, ...],
    zeros: tuple[str, ...],
    descriptions: tuple[str, ...],
) -> Layout:
    """:func:`_layout` of complete signal lines given column-wise (cached as such)."""
    return _layout(
        tuple(
            (file, (fmt, gain, resolution, zero), description)
            for file, fmt, gain, resolution, zero, description in zip(
                file_index, fmts, gains, resolutions, zeros, descriptions, strict=True
            )
        )
    )


def read_header(path: Path | str) -> Header:
    """Read and parse a ``.hea`` file."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header is not UTF-8 text ({exc.reason})") from exc
    return parse_header(text)


def read_bytes(path: Path | str, offset: int = 0) -> bytes:
    """A whole file's bytes from ``offset`` on (plain system calls: a buffered file object per record
    cost ingest ~10 µs per file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = max(0, os.fstat(fd).st_size - offset)
        data = os.pread(fd, size, offset)
        while len(data) < size:  # short reads are allowed; a growing file is read as far as fstat said
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _sampling_frequency(token: str) -> float:
    match = _FS.match(token)
    if not match or not match["fs"]:
        raise InvalidHeader(f"bad sampling frequency: {token!r}")
    return float(match["fs"])


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _layout(keys: tuple[tuple[int, tuple[str, ...], str], ...]) -> Layout:
    """The layout of signal lines given as (file index, format … ADC zero tokens, description)."""
    signals = tuple(SignalSpec("", *_signal_fields(tokens, description)) for _, tokens, description in keys)
    return Layout(
        signals=signals,
        file_index=tuple(file for file, _, _ in keys),
        sig_names=tuple(s.sig_name for s in signals),
        units=tuple(s.units for s in signals),
        storage_format=",".join(sorted({s.fmt for s in signals}, key=int)),
    )


def _with_file(spec: SignalSpec, file_name: str) -> SignalSpec:
    return replace(spec, file_name=file_name)


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _signal_fields(
    tokens: tuple[str, ...], description: str
) -> tuple[str, int, int, int, float, int, str, int | None, int, str]:
    """Everything of a signal line but the file name (cached: records of one site share their layout)."""
    fmt, samps_per_frame, skew, byte_offset = _format_field(tokens[0])
    gain, baseline, units = _gain_field(tokens[1]) if len(tokens) > 1 else (DEFAULT_GAIN, None, DEFAULT_UNITS)
    try:
        numbers = [int(value) for value in tokens[2:4]]
    except ValueError as exc:
        raise InvalidHeader(f"bad ADC resolution/zero in signal line: {' '.join(tokens)!r}") from exc
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


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _format_field(token: str) -> tuple[str, int, int, int]:
    """``16x1:0+24`` → (format, samples per frame, skew, byte offset)."""
    match = _FORMAT.match(token)
    if not match:
        raise InvalidHeader(f"bad format field: {token!r}")
    return match["fmt"], int(match["spf"] or 1), int(match["skew"] or 0), int(match["offset"] or 0)


@lru_cache(maxsize=_CACHED_LAYOUTS)
def _gain_field(token: str) -> tuple[float, int | None, str]:
    """``1000.0(0)/mV`` → (gain, baseline or None, units); a gain of 0 means the default 200."""
    match = _GAIN.match(token)
    if not match or match["gain"] in ("", "-", "."):
        raise InvalidHeader(f"bad gain field: {token!r}")
    baseline = int(match["baseline"]) if match["baseline"] else None
    return float(match["gain"]) or DEFAULT_GAIN, baseline, match["units"] or DEFAULT_UNITS
