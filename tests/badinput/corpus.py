"""The broken-record corpus: one real PTB-XL record (samples/) copied and broken in each way a drop can be.

Built at test time in a temporary folder; nothing here is committed but the recipe. Each entry is
``name → (header text or bytes, signal bytes or None for no signal file, substring of the reason)``.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLES

REAL = SAMPLES / "records100" / "00000" / "00001_lr"  # 12 leads, format 16, 100 Hz, 1000 samples
HEADER = REAL.with_suffix(".hea").read_text()
SIGNAL = REAL.with_suffix(".dat").read_bytes()
RECORD_LINE = " 12 100 1000"


def _lines(old: str, new: str, count: int = -1) -> str:
    assert old in HEADER, old
    return HEADER.replace(old, new, count)


#: name → (header, signal file content or None, what the quarantine reason says)
BROKEN: dict[str, tuple[str | bytes, bytes | None, str]] = {
    "truncated_dat": (HEADER, SIGNAL[: len(SIGNAL) // 2], "truncated signal file truncated_dat.dat"),
    "empty_dat": (HEADER, b"", "file holds 0 bytes"),
    "missing_dat": (HEADER, None, "signal file missing: missing_dat.dat"),
    "too_many_samples": (_lines(RECORD_LINE, " 12 100 2000", 1), SIGNAL, "header says 2000 samples"),
    "too_few_samples": (_lines(RECORD_LINE, " 12 100 500", 1), SIGNAL, "sample count disagrees"),
    "absurd_sample_count": (_lines(RECORD_LINE, " 12 100 99999999999", 1), SIGNAL, "truncated signal file"),
    "zero_length": (_lines(RECORD_LINE, " 12 100 0", 1), b"", "record holds no samples"),
    "unknown_format": (_lines(".dat 16 ", ".dat 99 "), SIGNAL, "unknown storage format 99"),
    "text_gain": (_lines("1000.0(0)/mV", "abc(0)/mV", 1), SIGNAL, "bad gain field: 'abc(0)/mV'"),
    "text_baseline": (_lines("1000.0(0)/mV", "1000.0(x)/mV", 1), SIGNAL, "bad gain field"),
    "text_resolution": (_lines(" 16 0 -119", " x 0 -119", 1), SIGNAL, "bad ADC resolution"),
    "text_sample_count": (_lines(RECORD_LINE, " 12 100 abc", 1), SIGNAL, "bad signal length: 'abc'"),
    "text_signal_count": (_lines(RECORD_LINE, " x 100 1000", 1), SIGNAL, "unparsable header"),
    "nan_rate": (_lines(RECORD_LINE, " 12 nan 1000", 1), SIGNAL, "bad sampling frequency: 'nan'"),
    "negative_rate": (_lines(RECORD_LINE, " 12 -100 1000", 1), SIGNAL, "bad sampling frequency: '-100'"),
    "zero_rate": (_lines(RECORD_LINE, " 12 0 1000", 1), SIGNAL, "sampling rate 0 Hz is not a rate"),
    "absurd_rate": (_lines(RECORD_LINE, " 12 1000000000 1000", 1), SIGNAL, "too high to resample"),
    "crawling_rate": (_lines(RECORD_LINE, " 12 0.01 1000", 1), SIGNAL, "too low"),
    "more_signals_announced": (_lines(RECORD_LINE, " 13 100 1000", 1), SIGNAL, "announces 13 signals"),
    "fewer_signals_announced": (_lines(RECORD_LINE, " 11 100 1000", 1), SIGNAL, "announces 11 signals"),
    "tiny_gain": (_lines("1000.0(0)/mV", "1e-300(0)/mV"), SIGNAL, "beyond the float32 range"),
    "pressure_units": (_lines("/mV", "/mmHg"), SIGNAL, "lead I is in units 'mmHg', not a voltage"),
    "repeated_lead": (_lines(" 0 III\n", " 0 II\n"), SIGNAL, "lead II is given twice ('II' and 'II')"),
    "repeated_lead_alias": (_lines(" 0 V6\n", " 0 i\n"), SIGNAL, "lead I is given twice ('I' and 'i')"),
    "no_ecg_lead": (
        "\n".join(
            [HEADER.splitlines()[0]]
            + [f"{line.rsplit(' ', 1)[0]} X{i}" for i, line in enumerate(HEADER.splitlines()[1:])]
        )
        + "\n",
        SIGNAL,
        "no standard ECG lead among the signals",
    ),
    "all_samples_invalid": (HEADER, b"\x00\x80" * (len(SIGNAL) // 2), "holds no valid samples"),
    "empty_header": ("", SIGNAL, "header has no record line"),
    "garbage_header": ("\x00\x01\x02garbage\xff\n", SIGNAL, "unparsable header"),
    "binary_header": (b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256)), SIGNAL, "header is not UTF-8 text"),
}

#: records in the same drop that are fine: the original, and one whose lead names are spelled otherwise
GOOD: dict[str, str] = {
    "original": HEADER,
    "renamed": _lines(" 0 AVR\n", " 0 -aVR\n"),  # an inverted lead is not aVR: 11 leads, a different record
}


def write_record(folder: Path, name: str, header: str | bytes, signal: bytes | None) -> None:
    """``name.hea`` (renamed inside to ``name``) and ``name.dat`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(header, str):
        header = header.replace(REAL.name, name).encode("utf-8", "surrogateescape")
    (folder / f"{name}.hea").write_bytes(header)
    if signal is not None:
        (folder / f"{name}.dat").write_bytes(signal)


def broken_drop(folder: Path) -> Path:
    """A WFDB drop holding every broken record and the good ones."""
    for name, (header, signal, _) in BROKEN.items():
        write_record(folder, name, header, signal)
    for name, header in GOOD.items():
        write_record(folder, name, header, SIGNAL)
    return folder
