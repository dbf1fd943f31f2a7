"""The broken-record corpus as served requests (in-process: the upload reader and the request checks the
endpoints call), plus the JSON inputs tests/serving does not cover yet. Every one is a 400 whose message
says what is wrong — for a broken WFDB upload the same words ingest quarantines it with."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from components.io.leads import STANDARD_LEADS
from components.io.wfdb_reader import read_record
from components.serving.errors import RequestError
from components.serving.inputs import InputSpec, prepare_input
from components.serving.params import ServeParams
from components.serving.schemas import SignalRequest
from components.serving.uploads import read_wfdb_upload
from tests.badinput.corpus import BROKEN, REAL

TWELVE = InputSpec("task superdiagnostic", 100, 1000, tuple(STANDARD_LEADS), tuple(STANDARD_LEADS))
LIMITS = ServeParams()

#: where serving's answer differs from ingest's quarantine reason (checks that only serving makes)
SERVED: dict[str, str] = {
    "missing_dat": "no signal file uploaded; the header names ['missing_dat.dat']",
    "text_signal_count": "corrupt or unsupported WFDB header: bad signal count",
    "zero_rate": "sampling rate 0 Hz is outside the accepted range 50-10000 Hz",
    "absurd_rate": "sampling rate 1e+09 Hz is outside the accepted range",
    "crawling_rate": "sampling rate 0.01 Hz is outside the accepted range",
    "no_ecg_lead": "no standard ECG lead among the channels",
    "all_samples_invalid": "non-finite values (NaN or infinity); the first is lead 'I' at sample 0",
    "garbage_header": "the WFDB header is not ASCII text",
    "binary_header": "the WFDB header is not ASCII text (byte 0)",
    "zero_length": "the uploaded WFDB record holds no samples",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_broken_record_uploaded_is_a_400_saying_why(name: str) -> None:
    header, signal, reason = BROKEN[name]
    raw_header = (
        header.replace(REAL.name, name).encode("utf-8", "surrogateescape")
        if isinstance(header, str)
        else header
    )
    files = [] if signal is None else [(f"{name}.dat", signal)]
    with pytest.raises(RequestError) as caught:
        record = read_wfdb_upload(raw_header, files)
        prepare_input(
            record.signal, record.fs, record.names, record.units, TWELVE, LIMITS, other_channels=True
        )
    assert caught.value.status == 400
    assert SERVED.get(name, reason) in caught.value.message, caught.value.message


def _json_record() -> tuple[np.ndarray, float, list[str]]:
    raw = read_record(REAL)
    return raw.signal.T.copy(), raw.fs, list(raw.sig_names)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale": 1e300}, "lead V2 reaches 1.38e+300 mV, beyond the float32 range"),
        ({"units": "V", "scale": 1e36}, "beyond the float32 range"),
        ({"fs": float("nan")}, "sampling rate nan Hz is outside the accepted range"),
        ({"fs": float("inf")}, "sampling rate inf Hz is outside the accepted range"),
        ({"fs": -100.0}, "sampling rate -100 Hz is outside the accepted range"),
        (
            {"leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "-V6"]},
            "unknown lead",
        ),
        (
            {"leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "lead II"]},
            "lead II is given twice ('II' and 'lead II')",
        ),
        ({"signal": np.zeros((0, 1000)), "leads": []}, "no standard ECG lead among the channels []"),
        ({"signal": np.zeros((12, 1000), dtype=np.complex64)}, "must hold numbers"),
        ({"signal": np.zeros((12, 1000), dtype=bool)}, "must hold numbers"),
    ],
    ids=[
        "huge-mV",
        "huge-V",
        "fs-nan",
        "fs-inf",
        "fs-negative",
        "inverted-lead",
        "repeated-alias",
        "no-leads",
        "complex",
        "bool",
    ],
)
def test_json_inputs_beyond_the_existing_cases_are_refused(change: dict, message: str) -> None:
    signal, fs, leads = _json_record()
    signal = change.get("signal", signal * change.get("scale", 1.0))
    with pytest.raises(RequestError) as caught:
        prepare_input(
            signal,
            change.get("fs", fs),
            change.get("leads", leads),
            change.get("units", "mV"),
            TWELVE,
            LIMITS,
        )
    assert caught.value.status == 400 and message in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"signal": [[0.0]], "fs": 100, "leads": []}, ("leads",)),
        ({"signal": [], "fs": 100, "leads": ["I"]}, ("signal", "numbers")),
        (
            {"signal": {"dtype": "float16", "shape": [1, 1], "data": "AAA="}, "fs": 100, "leads": ["I"]},
            ("signal", "base64", "dtype"),
        ),
        (
            {"signal": {"shape": [0, 10], "data": ""}, "fs": 100, "leads": ["I"]},
            ("signal", "base64", "shape", 0),
        ),
        ({"signal": [[0.0]], "fs": "100", "leads": ["I"]}, ("fs",)),
        ({"signal": [[0.0]], "fs": 100, "leads": ["I"], "units": "m" * 17}, ("units",)),
        ({"signal": [[0.0]], "fs": 100, "leads": ["I"], "extra": 1}, ("extra",)),
    ],
    ids=[
        "empty-leads",
        "empty-signal",
        "float16",
        "zero-leads-shape",
        "fs-string",
        "long-units",
        "unknown-field",
    ],
)
def test_malformed_request_bodies_fail_validation_at_the_named_field(body: dict, location: tuple) -> None:
    with pytest.raises(ValidationError) as caught:
        SignalRequest.model_validate(body)
    assert [error["loc"] for error in caught.value.errors()] == [location]
