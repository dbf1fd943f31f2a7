"""The WFDB reader equals wfdb.rdsamp on real records, in every storage format it decodes itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from components.io.wfdb_header import HeaderError, read_header
from components.io.wfdb_reader import RecordError, read_record
from tests.conftest import FIXTURES, SAMPLES, SHARED_DATA

REPO_HEADERS = sorted(FIXTURES.rglob("*.hea")) + sorted(SAMPLES.rglob("*.hea"))[:40]
SHARED_HEADERS = sorted(SHARED_DATA.rglob("*.hea")) if SHARED_DATA.is_dir() else []


def _assert_equals_rdsamp(base: Path) -> str | None:
    """Compare our reader with rdsamp on one record; the reader used, or None if rdsamp cannot read it."""
    try:
        reference, _ = wfdb.rdsamp(str(base))
    except Exception:
        return None
    ours = read_record(base)
    assert ours.signal.shape == reference.shape, base
    np.testing.assert_array_equal(np.isnan(ours.signal), np.isnan(reference), err_msg=str(base))
    finite = ~np.isnan(reference)
    if finite.any():
        assert np.max(np.abs(ours.signal[finite] - reference[finite])) <= 1e-6, base
    return ours.reader


@pytest.mark.parametrize("hea", REPO_HEADERS, ids=lambda p: str(p.relative_to(FIXTURES.parent.parent)))
def test_repo_records_equal_rdsamp(hea: Path) -> None:
    _assert_equals_rdsamp(hea.with_suffix(""))


def test_every_shared_record_equals_rdsamp() -> None:
    """All of ../shared/data that rdsamp reads (2,291 records), when the shared data is beside the repo."""
    if not SHARED_HEADERS:
        pytest.skip("../shared/data is not beside this checkout")
    readers = [_assert_equals_rdsamp(h.with_suffix("")) for h in SHARED_HEADERS]
    compared = [r for r in readers if r is not None]
    assert len(compared) > 2000
    assert compared.count("numpy") / len(compared) > 0.95


@pytest.mark.parametrize(
    "hea", REPO_HEADERS + SHARED_HEADERS[:: max(1, len(SHARED_HEADERS) // 300)], ids=lambda p: p.name
)
def test_header_parser_agrees_with_wfdb(hea: Path) -> None:
    try:
        reference = wfdb.rdheader(str(hea.with_suffix("")))
    except Exception:
        pytest.skip("wfdb cannot read this header either")
    try:
        ours = read_header(hea)
    except HeaderError:
        assert reference.n_seg is not None or reference.n_sig == 0, "single-segment header refused"
        return
    assert ours.n_sig == reference.n_sig
    assert ours.fs == pytest.approx(reference.fs)
    assert ours.sig_len == reference.sig_len
    assert [s.fmt for s in ours.signals] == list(reference.fmt)
    assert [s.adc_gain for s in ours.signals] == pytest.approx(list(reference.adc_gain))
    assert [s.baseline for s in ours.signals] == list(reference.baseline)
    assert [s.units for s in ours.signals] == list(reference.units)
    assert [s.sig_name for s in ours.signals] == list(reference.sig_name)
    assert [s.byte_offset for s in ours.signals] == [b or 0 for b in reference.byte_offset]
    assert list(ours.comments) == list(reference.comments)


_GAIN_FOR_NARROW_FORMATS = {"80": 20.0, "212": 400.0}


@pytest.mark.parametrize("fmt", ["16", "212", "24", "32", "80"])
def test_numpy_decoder_for_each_format(tmp_path: Path, fmt: str) -> None:
    """Re-encode a real PTB-XL record in each format wfdb writes, read it back with the NumPy path."""
    signal, fields = wfdb.rdsamp(str(SAMPLES / "records100/00000/00001_lr"))
    gain = _GAIN_FOR_NARROW_FORMATS.get(fmt)
    if gain is not None:
        signal = np.clip(signal, -120 / gain, 120 / gain)
    signal[100:110, 3] = np.nan  # a gap: the format's invalid-sample value must come back as NaN
    n = signal.shape[1]
    wfdb.wrsamp(
        "rec",
        fs=fields["fs"],
        units=fields["units"],
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=[fmt] * n,
        adc_gain=[gain] * n if gain else None,
        baseline=[0] * n if gain else None,
        write_dir=str(tmp_path),
    )
    assert _assert_equals_rdsamp(tmp_path / "rec") == "numpy"
    assert np.isnan(read_record(tmp_path / "rec").signal[100:110, 3]).all()


@pytest.mark.parametrize(
    ("fmt", "encode"),
    [
        ("61", lambda d: d.astype(">i2").tobytes()),
        ("160", lambda d: (d.astype(np.int32) + 32768).astype("<u2").tobytes()),
    ],
)
def test_numpy_decoder_for_formats_wfdb_cannot_write(tmp_path: Path, fmt: str, encode) -> None:
    """Formats 61 (big-endian) and 160 (offset binary) made by re-encoding a real format-16 record's bytes."""
    source = SAMPLES / "records100/00000/00001_lr"
    digital = np.frombuffer(source.with_suffix(".dat").read_bytes(), dtype="<i2")
    (tmp_path / "rec.dat").write_bytes(encode(digital))
    header = source.with_suffix(".hea").read_text().replace("00001_lr.dat 16 ", f"rec.dat {fmt} ")
    (tmp_path / "rec.hea").write_text(header.replace("00001_lr ", "rec ", 1))
    assert _assert_equals_rdsamp(tmp_path / "rec") == "numpy"
    np.testing.assert_allclose(read_record(tmp_path / "rec").signal, read_record(source).signal, atol=1e-12)


def test_cinc_mat_files_use_numpy_path() -> None:
    record = read_record(FIXTURES / "cinc/georgia/E07500")
    assert record.reader == "numpy" and record.signal.shape == (5000, 12)
    assert record.comments[0].startswith("Age")


def test_truncated_and_oversized_files_are_errors(tmp_path: Path) -> None:
    for ext in (".hea", ".dat"):
        shutil.copy(SAMPLES / f"records100/00000/00001_lr{ext}", tmp_path / f"rec{ext}")
    header = (tmp_path / "rec.hea").read_text().replace("00001_lr", "rec")
    (tmp_path / "rec.hea").write_text(header)
    data = (tmp_path / "rec.dat").read_bytes()
    (tmp_path / "rec.dat").write_bytes(data[:-1000])
    with pytest.raises(RecordError, match="truncated"):
        read_record(tmp_path / "rec")
    (tmp_path / "rec.dat").write_bytes(data + data[:2400])
    with pytest.raises(RecordError, match="sample count disagrees"):
        read_record(tmp_path / "rec")


def test_unknown_format_is_named(tmp_path: Path) -> None:
    (tmp_path / "rec.hea").write_text("rec 1 100 10\nrec.dat 999 200/mV 16 0 0 0 0 I\n")
    (tmp_path / "rec.dat").write_bytes(b"\0" * 20)
    with pytest.raises(RecordError, match="unknown storage format 999"):
        read_record(tmp_path / "rec")
