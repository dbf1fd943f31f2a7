"""Requests → canonical model input: the training preprocessing, and a precise 400 for every bad input."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from components.io.canonical import canonicalize, cut_or_pad
from components.io.leads import STANDARD_LEADS
from components.io.prepare import PreparedRecord, prepare
from components.io.sources import RecordRef
from components.io.wfdb_reader import read_record
from components.serving.errors import RequestError
from components.serving.inputs import InputSpec, prepare_input
from components.serving.params import ServeParams
from components.serving.schemas import EncodedSignal, SignalRequest
from components.serving.uploads import read_npy_upload, read_wfdb_upload

SAMPLE = "records100/00000/00001_lr"
TWELVE = InputSpec("task superdiagnostic", 100, 1000, tuple(STANDARD_LEADS), tuple(STANDARD_LEADS))
LEAD_I = InputSpec("task lead-i", 100, 1000, ("I",), ("I",))
LIMITS = ServeParams()


def _record(base: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    raw = read_record(base)
    return raw.signal.T, raw.fs, list(raw.sig_names), list(raw.units)


@pytest.mark.parametrize(
    "relative",
    [
        "samples/records100/00000/00001_lr",  # 100 Hz, as stored
        "tests/fixtures/ptbxl500/records500/00000/00002_hr",  # 500 Hz → 100 Hz
        "tests/fixtures/cinc/cpsc2018/A0001",  # 500 Hz, 15 s → cut to 10 s, .mat
        "tests/fixtures/wfdb_formats/3000003_0003",  # 125 Hz, 8.2 s (padded), lead II and a non-lead "V"
    ],
)
def test_canonicalize_equals_ingest_prepare(relative: str) -> None:
    base = Path(__file__).resolve().parents[2] / relative
    signal, fs, names, units = _record(base)
    ours = canonicalize(signal, fs, names, units, target_fs=100, target_samples=1000)
    theirs = prepare(RecordRef("test", relative, base), 100, 1000)
    assert isinstance(theirs, PreparedRecord)
    assert ours.signal.dtype == np.float32 and ours.signal.shape == (12, 1000)
    np.testing.assert_array_equal(ours.signal, theirs.signal)
    np.testing.assert_array_equal(ours.lead_mask, theirs.lead_mask)
    assert ours.n_valid_samples == theirs.n_valid_samples


def test_cut_or_pad_cuts_long_and_zero_pads_short_into_a_buffer() -> None:
    signal = np.arange(24, dtype=np.float64).reshape(12, 2)
    buffer = np.full((12, 5), 7.0, dtype=np.float32)
    fixed, n_valid = cut_or_pad(signal, 5, out=buffer)
    assert fixed is buffer and n_valid == 2
    assert (fixed[:, :2] == signal).all() and (fixed[:, 2:] == 0).all()
    cut, n_cut = cut_or_pad(signal, 1)
    assert n_cut == 1 and (cut[:, 0] == signal[:, 0]).all()


def test_prepare_input_maps_aliases_masks_and_resamples(samples_dir: Path) -> None:
    signal, *_ = _record(samples_dir / SAMPLE)
    shuffled = [5, 0, 3, 1]  # aVF, I, aVR, II with hospital spellings
    aliases = ["avf", "D1", "lead aVR", "ii"]
    upsampled = np.repeat(signal[shuffled], 5, axis=1)  # 500 Hz stand-in
    prepared = prepare_input(upsampled * 1000, 500.0, aliases, "uV", LEAD_I, LIMITS)
    assert prepared.leads_present == ("I", "II", "aVR", "aVF")
    assert prepared.leads_used == ("I",)
    assert prepared.canonical.lead_mask.tolist() == [
        lead in ("I", "II", "aVR", "aVF") for lead in STANDARD_LEADS
    ]
    assert prepared.canonical.signal.shape == (12, 1000) and prepared.n_samples == 5000
    expected = canonicalize(upsampled[[1]], 500.0, ["I"], "mV", target_fs=100, target_samples=1000)
    np.testing.assert_allclose(prepared.canonical.signal[0], expected.signal[0], atol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"signal": [[0.0] * 1000, [0.0] * 999] + [[0.0] * 1000] * 10},
            "ragged: row 0 has 1000 samples but row 1",
        ),
        ({"signal": np.zeros((1000, 12))}, "looks transposed"),
        ({"signal": np.zeros((12, 1000, 1))}, "must be 2-D"),
        ({"leads": list(STANDARD_LEADS[:11])}, "12 rows but 11 lead names"),
        ({"nan": True}, "non-finite values (NaN or infinity); the first is lead 'V2' at sample 17"),
        ({"leads": [*STANDARD_LEADS[:11], "V7"]}, "unknown lead name(s) ['V7']"),
        ({"leads": [*STANDARD_LEADS[:11], "i"]}, "lead I is given twice ('I' and 'i')"),
        ({"keep": ["I", "II", "III"]}, "needs the leads ['I', 'II', 'III', 'aVR'"),
        (
            {"signal": np.zeros((12, 999))},
            "too short: 999 samples at 100 Hz is 9.99 s; task superdiagnostic needs",
        ),
        (
            {"fs": 20.0, "signal": np.zeros((12, 1000))},
            "sampling rate 20 Hz is outside the accepted range 50-10000",
        ),
        ({"units": "mmHg"}, "not a voltage"),
        ({"signal": np.array([["a"] * 1000] * 12)}, "must hold numbers"),
    ],
)
def test_bad_inputs_are_refused_with_a_precise_message(samples_dir: Path, change: dict, message: str) -> None:
    signal, fs, names, _ = _record(samples_dir / SAMPLE)
    args: dict = {"signal": signal.copy(), "fs": fs, "leads": names, "units": "mV"}
    if change.pop("nan", False):
        args["signal"][7, 17] = np.nan
        args["signal"][8, 3] = np.inf
    if "keep" in change:
        keep = change.pop("keep")
        args["signal"] = signal[[names.index(k) for k in keep]]
        args["leads"] = keep
    args |= change
    with pytest.raises(RequestError) as caught:
        prepare_input(args["signal"], args["fs"], args["leads"], args["units"], TWELVE, LIMITS)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_single_lead_task_accepts_a_single_lead_and_refuses_records_without_it(samples_dir: Path) -> None:
    signal, fs, *_ = _record(samples_dir / SAMPLE)
    prepared = prepare_input(signal[[0]], fs, ["I"], "mV", LEAD_I, LIMITS)
    assert prepared.leads_used == ("I",) and prepared.canonical.lead_mask.sum() == 1
    with pytest.raises(RequestError, match=r"needs the leads \['I'\]; the request lacks \['I'\]"):
        prepare_input(signal[[1]], fs, ["II"], "mV", LEAD_I, LIMITS)


def _files(base: Path) -> tuple[bytes, list[tuple[str, bytes]]]:
    header = base.with_suffix(".hea").read_bytes()
    signal_file = next(p for p in base.parent.iterdir() if p.stem == base.name and p.suffix != ".hea")
    return header, [(signal_file.name, signal_file.read_bytes())]


def test_wfdb_upload_reads_like_the_ingest_reader(fixtures_dir: Path) -> None:
    base = fixtures_dir / "wfdb_formats" / "a103l"  # .mat: II, V and a PLETH channel at 250 Hz
    header, files = _files(base)
    record = read_wfdb_upload(header, [("tmpab12cd34" + files[0][0], files[0][1])])  # prefixed upload name
    raw = read_record(base)
    np.testing.assert_array_equal(record.signal, raw.signal.T)
    assert record.names == ("II", "V", "PLETH") and record.fs == 250.0
    spec = InputSpec("task lead-ii", 100, 1000, ("II",), ("II",))
    prepared = prepare_input(
        record.signal, record.fs, record.names, record.units, spec, LIMITS, other_channels=True
    )
    assert prepared.leads_present == ("II",)  # 'V' and PLETH are not standard leads: ignored as in ingest


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("binary-header", "not ASCII text"),
        ("garbage-header", "corrupt or unsupported WFDB header"),
        ("truncated", "corrupt WFDB record: truncated signal file"),
        ("missing", "names the signal file '00001_lr.dat', which was not uploaded"),
        ("traversal", "only plain file names are accepted"),
    ],
)
def test_corrupt_wfdb_uploads_are_refused(samples_dir: Path, damage: str, message: str) -> None:
    header, files = _files(samples_dir / SAMPLE)
    if damage == "binary-header":
        header = b"\x89PNG\r\n\x1a\n" + header
    elif damage == "garbage-header":
        header = b"this is not a header\nat all\n"
    elif damage == "truncated":
        files = [(files[0][0], files[0][1][: len(files[0][1]) // 2])]
    elif damage == "missing":
        files = [("other.dat", files[0][1]), ("another.dat", b"")]
    elif damage == "traversal":
        header = header.replace(b"00001_lr.dat", b"../../../etc/passwd")
    with pytest.raises(RequestError) as caught:
        read_wfdb_upload(header, files)
    assert message in caught.value.message


def test_npy_upload_must_be_a_plain_numeric_matrix(samples_dir: Path) -> None:
    signal, *_ = _record(samples_dir / SAMPLE)
    buffer = io.BytesIO()
    np.save(buffer, signal.astype(np.float32))
    np.testing.assert_array_equal(read_npy_upload(buffer.getvalue()), signal.astype(np.float32))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for content, message in [
        (pickled.getvalue(), "not a valid .npy file"),
        (b"\x93NUMPY garbage", "not a valid .npy file"),
        (_npy(np.zeros((2, 3, 4))), "must be 2-D"),
        (_npy(np.array([["x"] * 3] * 2)), "must hold numbers"),
    ]:
        with pytest.raises(RequestError, match=message.replace(".", r"\.")):
            read_npy_upload(content)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _encoded(signal: np.ndarray, dtype: str = "float32") -> EncodedSignal:
    data = base64.b64encode(np.ascontiguousarray(signal, dtype=np.dtype(dtype).newbyteorder("<")).tobytes())
    return EncodedSignal(dtype=dtype, shape=signal.shape, data=data.decode())  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_base64_signal_is_the_same_input_as_json_numbers(samples_dir: Path, dtype: str) -> None:
    signal, fs, names, _ = _record(samples_dir / SAMPLE)
    from_numbers = prepare_input(signal.tolist(), fs, names, "mV", TWELVE, LIMITS)
    from_base64 = prepare_input(_encoded(signal, dtype), fs, names, "mV", TWELVE, LIMITS)
    tolerance = 1e-6 if dtype == "float32" else 0.0
    np.testing.assert_allclose(from_base64.canonical.signal, from_numbers.canonical.signal, atol=tolerance)
    request = SignalRequest.model_validate_json(
        json.dumps({"signal": _encoded(signal, dtype).model_dump(), "fs": fs, "leads": names})
    )
    assert isinstance(request.signal, EncodedSignal)


def test_int16_base64_signal_in_microvolts(samples_dir: Path) -> None:
    signal, fs, names, _ = _record(samples_dir / SAMPLE)
    microvolts = np.round(signal * 1000).astype(np.int16)
    prepared = prepare_input(_encoded(microvolts, "int16"), fs, names, "uV", TWELVE, LIMITS)
    np.testing.assert_allclose(prepared.canonical.signal, microvolts / 1000, atol=1e-6)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not-base64", "signal.data is not valid base64"),
        ("short", "signal.data decodes to 47996 bytes but shape [12, 1000] of float32 needs 48000"),
        ("nan", "non-finite values (NaN or infinity); the first is lead 'V2' at sample 17"),
    ],
)
def test_bad_base64_signals_are_refused_with_a_precise_message(
    samples_dir: Path, damage: str, message: str
) -> None:
    signal, fs, names, _ = _record(samples_dir / SAMPLE)
    if damage == "nan":
        signal = signal.copy()
        signal[7, 17] = np.nan
    encoded = _encoded(signal)
    if damage == "not-base64":
        encoded = encoded.model_copy(update={"data": "%%%" + encoded.data[3:]})
    elif damage == "short":
        raw = base64.b64decode(encoded.data)[:-4]
        encoded = encoded.model_copy(update={"data": base64.b64encode(raw).decode()})
    with pytest.raises(RequestError) as caught:
        prepare_input(encoded, fs, names, "mV", TWELVE, LIMITS)
    assert caught.value.status == 400 and message in caught.value.message


def test_a_signal_is_either_numbers_or_an_encoded_object_and_errors_name_which() -> None:
    with pytest.raises(ValidationError) as caught:
        SignalRequest.model_validate_json('{"signal": {"shape": [12, 1000]}, "fs": 100, "leads": ["I"]}')
    assert [e["loc"] for e in caught.value.errors()] == [("signal", "base64", "data")]
    with pytest.raises(ValidationError) as caught:
        SignalRequest.model_validate_json('{"signal": [["0.1"]], "fs": 100, "leads": ["I"]}')
    assert [e["loc"] for e in caught.value.errors()] == [("signal", "numbers", 0, 0)]
