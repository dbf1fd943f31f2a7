"""The pulled Bento served by a real ``bentoml serve`` over HTTP (one server for the module).

Export → pull into an empty BENTOML_HOME (session fixtures) → serve → predict on real records, with the
outputs equal to the in-process model's; every bad-request class gets a 4xx saying what is wrong; the
API key; WFDB and .npy uploads; embeddings and zero-shot; schemathesis over the served OpenAPI.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from components.config import Settings
from components.io.canonical import canonicalize, split_windows
from components.io.store import DatasetStore
from components.io.wfdb_reader import read_record
from components.models.checkpoint import load_foundation
from components.models.task_model import load_task_model
from components.predictions.log import PredictionLog
from components.serving.launch import RunningServer, running_server, server_workspace
from components.training.evaluate import embed_texts
from tests.serving.conftest import API_KEY, MAX_BODY, Packaged

pytestmark = pytest.mark.slow

HEADERS = {"X-API-Key": API_KEY}
N_RECORDS = 12
TOLERANCE = 1e-5
MORE_BURSTS = 3
SCHEMATHESIS_SEED = 20261207


@pytest.fixture(scope="module")
def server(
    twelve_lead: Packaged, serve_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("serve-log") / "bentoml-serve.log"
    with running_server(
        twelve_lead.pulled.tag,
        bentoml_home=serve_home,
        api_key=API_KEY,
        log=log,
        extra_env=server_workspace(log),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def test_records(
    serving_settings: Settings, samples_dir: Path
) -> tuple[DatasetStore, np.ndarray, list[Path]]:
    """Test-split records: their rows in the canonical store and their original WFDB files."""
    store = DatasetStore.open(serving_settings.data_dir / "demo")
    rows = np.flatnonzero(store.manifest["split"].to_numpy() == "test")[:N_RECORDS]
    bases = [samples_dir / store.manifest["source_record"].iloc[r] for r in rows]
    return store, rows, bases


def _json_body(base: Path) -> dict:
    raw = read_record(base)
    return {
        "signal": raw.signal.T.tolist(),
        "fs": raw.fs,
        "leads": list(raw.sig_names),
        "units": raw.units[0],
    }


def _base64_body(base: Path) -> dict:
    """The record with its signal as base64 float32 (the API's EncodedSignal)."""
    body = _json_body(base)
    values = np.asarray(body["signal"], dtype="<f4")
    data = base64.b64encode(values.tobytes()).decode()
    return body | {"signal": {"dtype": "float32", "shape": list(values.shape), "data": data}}


def _wfdb_files(base: Path) -> list[tuple[str, tuple[str, bytes]]]:
    dat = base.with_suffix(".dat") if base.with_suffix(".dat").exists() else base.with_suffix(".mat")
    return [
        ("header", (base.name + ".hea", base.with_suffix(".hea").read_bytes())),
        ("signals", (dat.name, dat.read_bytes())),
    ]


def _probabilities(response: httpx.Response, labels: list[str]) -> np.ndarray:
    return np.array([response.json()["probabilities"][k] for k in labels])


def test_served_predictions_equal_the_in_process_model(
    client: httpx.Client, twelve_lead: Packaged, test_records: tuple[DatasetStore, np.ndarray, list[Path]]
) -> None:
    store, rows, bases = test_records
    model = load_task_model(Path(twelve_lead.model.artifact_uri))
    expected = model.predict_proba(store.read(rows), store.lead_masks()[rows])  # the ingest canonical store

    bodies = [json.dumps(_json_body(base)).encode() for base in bases]
    responses = _burst(client, bodies)
    assert all(r.status_code == 200 for r in responses), responses[0].text
    served = np.array([_probabilities(r, model.cfg.labels) for r in responses])
    assert np.abs(served - expected).max() <= TOLERANCE

    first = responses[0].json()
    assert first["decisions"] == {
        k: bool(p >= t)
        for k, p, t in zip(model.cfg.labels, served[0], model.cfg.decision_thresholds, strict=True)
    }
    assert first["thresholds"] == dict(
        zip(model.cfg.labels, model.cfg.decision_thresholds.tolist(), strict=True)
    )
    assert first["model"] == {
        "name": twelve_lead.model.name,
        "version": twelve_lead.model.version,
        "ref": twelve_lead.model.ref,
        "task": twelve_lead.model.task,
        "bento": twelve_lead.pulled.tag,
        "dataset_version": twelve_lead.model.dataset_version_md5,
        "foundation": twelve_lead.model.parent,
    }

    encoded = client.post("/predict", json=_base64_body(bases[2]))
    assert encoded.status_code == 200, encoded.text
    assert np.abs(_probabilities(encoded, model.cfg.labels) - expected[2]).max() <= TOLERANCE

    upload = client.post("/predict_wfdb", files=_wfdb_files(bases[0]))
    assert upload.status_code == 200, upload.text
    assert np.abs(_probabilities(upload, model.cfg.labels) - expected[0]).max() <= TOLERANCE

    body = _json_body(bases[1])
    array = io.BytesIO()
    np.save(array, np.asarray(body["signal"], dtype=np.float64))
    form = {"fs": json.dumps(body["fs"]), "leads": json.dumps(body["leads"])}
    npy = client.post("/predict_npy", files={"array": ("rec.npy", array.getvalue())}, data=form)
    assert npy.status_code == 200, npy.text
    assert np.abs(_probabilities(npy, model.cfg.labels) - expected[1]).max() <= TOLERANCE

    for _ in range(MORE_BURSTS):  # a stalled host can space one burst's arrivals beyond the batch wait
        batches = _batch_size_metrics(client)
        if batches["ecgops_batch_size_count"] < batches["ecgops_batch_size_sum"]:
            break
        assert all(r.status_code == 200 for r in _burst(client, bodies))
    batches = _batch_size_metrics(client)
    assert batches["ecgops_batch_size_count"] < batches["ecgops_batch_size_sum"]  # a forward took > 1 record
    assert "bentoml_service_request_total" in client.get("/metrics").text


def _burst(client: httpx.Client, bodies: list[bytes]) -> list[httpx.Response]:
    """Post the bodies to ``/predict`` from one thread each, released together (so the server batches)."""
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> httpx.Response:
        start.wait()
        return client.post("/predict", content=body, headers={"Content-Type": "application/json"})

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _batch_size_metrics(client: httpx.Client) -> dict[str, float]:
    return {
        line.split()[0]: float(line.split()[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("ecgops_batch_size_")
    }


def test_any_rate_and_a_cinc_record_are_resampled_like_training(
    client: httpx.Client, twelve_lead: Packaged, fixtures_dir: Path
) -> None:
    model = load_task_model(Path(twelve_lead.model.artifact_uri))
    for base, windows in [
        (fixtures_dir / "ptbxl500" / "records500" / "00000" / "00003_hr", 1),
        (fixtures_dir / "cinc" / "cpsc2018" / "A0001", 2),  # 15 s: two 10-s windows, their mean
    ]:
        raw = read_record(base)
        whole = canonicalize(
            raw.signal.T, raw.fs, raw.sig_names, raw.units, target_fs=100, target_samples=None
        )
        cut = split_windows(whole.signal, whole.n_valid_samples, 1000)
        expected = model.predict_proba(cut, np.repeat(whole.lead_mask[None], len(cut), axis=0)).mean(axis=0)
        for response in (
            client.post("/predict", json=_json_body(base)),
            client.post("/predict_wfdb", files=_wfdb_files(base)),
        ):
            assert response.status_code == 200, response.text
            got = _probabilities(response, model.cfg.labels)
            assert np.abs(got - expected).max() <= TOLERANCE
            summary = response.json()["input"]
            assert summary["fs"] == 500.0 and summary["model_fs"] == 100
            assert summary["n_windows"] == len(cut) == windows and summary["routed_to"] == model.cfg.task


def test_embed_and_zero_shot_are_the_foundation_model(
    client: httpx.Client,
    twelve_lead: Packaged,
    test_records: tuple[DatasetStore, np.ndarray, list[Path]],
    serving_settings: Settings,
) -> None:
    store, rows, bases = test_records
    from components.registry import open_registry

    with open_registry(serving_settings.resolved_registry_url) as registry:
        foundation_dir = Path(registry.model(twelve_lead.model.parent or "").artifact_uri)
    foundation, tokenizer = load_foundation(foundation_dir)
    with torch.no_grad():
        expected = foundation.embed_ecg(
            torch.from_numpy(store.read(rows[:1])), torch.from_numpy(store.lead_masks()[rows[:1]])
        )[0].numpy()
    embedded = client.post("/embed", json=_json_body(bases[0]))
    assert embedded.status_code == 200, embedded.text
    vector = np.array(embedded.json()["embedding"])
    assert embedded.json()["dim"] == foundation.cfg.embed_dim and np.abs(vector - expected).max() <= TOLERANCE
    assert embedded.json()["input"]["routed_to"] == twelve_lead.model.parent
    assert embedded.json()["input"]["n_windows"] == 1

    prompts = ["sinusrhythmus normales ekg", "vorderwandinfarkt", "linksschenkelblock"]
    scored = client.post("/zero_shot", json=_json_body(bases[0]) | {"prompts": prompts})
    assert scored.status_code == 200, scored.text
    similarities = embed_texts(foundation, tokenizer, prompts) @ expected
    assert np.abs(np.array(scored.json()["similarities"]) - similarities).max() <= TOLERANCE
    assert abs(sum(scored.json()["probabilities"]) - 1.0) < 1e-9
    assert scored.json()["best"] == prompts[int(np.argmax(similarities))]


def _record_body(samples_dir: Path) -> dict:
    return _json_body(samples_dir / "records100" / "00000" / "00001_lr")


def _bad_requests(samples_dir: Path) -> list[tuple[str, str, dict, int, str]]:
    """(id, path, httpx request kwargs, status, substring of the error message)."""
    good = _record_body(samples_dir)
    base = samples_dir / "records100" / "00000" / "00001_lr"
    files = _wfdb_files(base)
    nan_body = json.dumps(good).replace(json.dumps(good["signal"][3][10]), "NaN", 1)
    truncated = [files[0], ("signals", (files[1][1][0], files[1][1][1][:5000]))]
    transposed = good | {"signal": np.asarray(good["signal"]).T.tolist()}
    encoded = _base64_body(base)
    return [
        (
            "ragged",
            "/predict",
            {"json": good | {"signal": [good["signal"][0][:-1], *good["signal"][1:]]}},
            400,
            "ragged",
        ),
        ("transposed", "/predict", {"json": transposed}, 400, "looks transposed"),
        (
            "one-dimensional",
            "/predict",
            {"json": good | {"signal": good["signal"][0]}},
            400,
            "signal.numbers[2]: Input should be a valid array; ... 997 more",
        ),
        (
            "nan",
            "/predict",
            {"content": nan_body, "headers": {"content-type": "application/json"}},
            400,
            "non-finite values",
        ),
        (
            "infinity",
            "/predict",
            {
                "content": nan_body.replace("NaN", "-Infinity"),
                "headers": {"content-type": "application/json"},
            },
            400,
            "non-finite",
        ),
        (
            "unknown-lead",
            "/predict",
            {"json": good | {"leads": [*good["leads"][:-1], "V7"]}},
            400,
            "unknown lead name(s) ['V7']",
        ),
        (
            "lead-subset",
            "/predict",
            {"json": good | {"signal": good["signal"][:3], "leads": good["leads"][:3]}},
            400,
            "needs the leads",
        ),
        (
            "too-short",
            "/predict",
            {"json": good | {"signal": [row[:400] for row in good["signal"]]}},
            400,
            "too short: 400 samples at 100 Hz",
        ),
        (
            "non-numeric",
            "/predict",
            {"json": good | {"signal": [["0.1", *row[1:]] for row in good["signal"]]}},
            400,
            "signal.numbers[0][0]: Input should be a valid number",
        ),
        (
            "base64-corrupt",
            "/predict",
            {"json": encoded | {"signal": encoded["signal"] | {"data": "@@" + encoded["signal"]["data"]}}},
            400,
            "signal.data is not valid base64",
        ),
        (
            "base64-wrong-shape",
            "/predict",
            {"json": encoded | {"signal": encoded["signal"] | {"shape": [12, 999]}}},
            400,
            "signal.data decodes to 48000 bytes but shape [12, 999] of float32 needs 47952",
        ),
        (
            "base64-missing-data",
            "/predict",
            {"json": encoded | {"signal": {"shape": [12, 1000]}}},
            400,
            "signal.base64.data: Field required",
        ),
        (
            "fs-zero",
            "/predict",
            {"json": good | {"fs": 0}},
            400,
            "sampling rate 0 Hz is outside the accepted range",
        ),
        ("fs-absurd", "/predict", {"json": good | {"fs": 1e9}}, 400, "outside the accepted range"),
        (
            "not-json",
            "/predict",
            {"content": b"{signal: ", "headers": {"content-type": "application/json"}},
            400,
            "invalid request: body: Invalid JSON",
        ),
        (
            "missing-field",
            "/predict",
            {"json": {"signal": good["signal"], "fs": 100}},
            400,
            "leads: Field required",
        ),
        ("unknown-units", "/predict", {"json": good | {"units": "mmHg"}}, 400, "not a voltage"),
        (
            "over-the-limit",
            "/predict",
            {
                "content": b"[" + b"0.123456789," * (MAX_BODY // 12 + 10) + b"0]",
                "headers": {"content-type": "application/json"},
            },
            413,
            "request body too large",
        ),
        (
            "wfdb-truncated",
            "/predict_wfdb",
            {"files": truncated},
            400,
            "corrupt WFDB record: truncated signal file",
        ),
        (
            "wfdb-garbage",
            "/predict_wfdb",
            {"files": [("header", ("x.hea", b"\x00\x01garbage")), files[1]]},
            400,
            "WFDB header",
        ),
        ("wfdb-missing-file", "/predict_wfdb", {"files": [files[0]]}, 400, "signals: Field required"),
        (
            "multipart-broken",
            "/predict_wfdb",
            {"content": b"--zz\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            400,
            "malformed multipart",
        ),
        (
            "npy-corrupt",
            "/predict_npy",
            {"files": {"array": ("a.npy", b"not numpy")}, "data": {"fs": "100", "leads": '["I"]'}},
            400,
            "not a valid .npy file",
        ),
        ("prompts-empty", "/zero_shot", {"json": good | {"prompts": ["  "]}}, 400, "prompt 0 is empty"),
        (
            "prompts-too-many",
            "/zero_shot",
            {"json": good | {"prompts": ["x"] * 65}},
            400,
            "65 prompts; at most 64",
        ),
    ]


BAD_IDS = [case[0] for case in _bad_requests(Path(__file__).resolve().parents[2] / "samples")]


@pytest.mark.parametrize("case_id", BAD_IDS)
def test_every_bad_request_gets_a_4xx_saying_what_is_wrong(
    client: httpx.Client, samples_dir: Path, case_id: str
) -> None:
    _, path, kwargs, status, message = next(c for c in _bad_requests(samples_dir) if c[0] == case_id)
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and message in body["error"], body


def test_the_api_key_guards_everything_but_health(server: RunningServer, samples_dir: Path) -> None:
    body = _record_body(samples_dir)
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for method, path in [
            ("POST", "/predict"),
            ("POST", "/model_card"),
            ("GET", "/metrics"),
            ("GET", "/docs.json"),
        ]:
            response = anonymous.request(method, path, json=body if method == "POST" else None)
            assert response.status_code == 401 and "API key" in response.json()["error"], path
        wrong = anonymous.post("/predict", json=body, headers={"X-API-Key": "not-it"})
        assert wrong.status_code == 401 and wrong.json()["error"].startswith("wrong API key")
        for probe in ("/livez", "/healthz", "/readyz"):
            assert anonymous.get(probe).status_code == 200
        bearer = anonymous.post("/predict", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
        assert bearer.status_code == 200


def test_model_card_says_what_was_packaged(client: httpx.Client, twelve_lead: Packaged) -> None:
    card = client.post("/model_card").json()
    assert card["model"]["ref"] == twelve_lead.model.ref and card["model"]["bento"] == twelve_lead.pulled.tag
    assert (
        card["gate"]["verdict"] == "pass" and card["gate"]["policy"] == "serving-test" and not card["forced"]
    )
    assert (
        card["labels"] == ["NORM", "MI", "STTC", "CD", "HYP"]
        and card["fs"] == 100
        and card["duration_s"] == 10.0
    )
    assert card["git_revision"] and card["limitations"]
    assert card["family"] == []  # a Bento of one task model


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json", headers=HEADERS)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]

    # seeded: every run sends the same cases, so a failure here is a change's, not the draw's
    @given(case=schema.as_strategy())
    @seed(SCHEMATHESIS_SEED)
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def positive(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, headers=HEADERS, checks=checks)

    @given(case=schema.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
    @seed(SCHEMATHESIS_SEED)
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def negative(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=server.url, headers=HEADERS, checks=[*checks, negative_data_rejection]
        )

    positive()
    negative()


def test_requests_are_in_the_access_log_with_their_trace(
    client: httpx.Client, server: RunningServer, samples_dir: Path
) -> None:
    """The access log is written by a background thread (components/serving/logs.py); each line still
    carries its request's trace id — the caller's, when it sends a W3C ``traceparent``
    (components/serving/tracing.py)."""
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.post(
        "/predict",
        json=_base64_body(samples_dir / "records100" / "00000" / "00007_lr"),
        headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [
            line
            for line in server.log.read_text(errors="replace").splitlines()
            if "path=/predict," in line and "status=200" in line and f"trace={caller_trace}," in line
        ]
        if lines:
            break
        time.sleep(0.2)
    assert lines, server.log_tail()


# ---------------------------------------------------------------- the prediction log


def _logged(root: Path) -> pd.DataFrame:
    window = PredictionLog(str(root / ".ecgops" / "predictions")).read()
    assert not window.skipped
    return window.frame


def test_every_answered_prediction_is_logged_and_a_restart_loses_none(
    twelve_lead: Packaged,
    serve_home: Path,
    test_records: tuple[DatasetStore, np.ndarray, list[Path]],
    tmp_path: Path,
) -> None:
    """Two server lifetimes on one log: after each graceful stop the log holds every request id answered
    so far, with the input's ingest content hash, the site sent, and no signal."""
    store, rows, bases = test_records
    log = tmp_path / "bentoml-serve.log"
    answered: dict[str, str] = {}
    for lifetime in range(2):
        env = server_workspace(log)
        with (
            running_server(twelve_lead.pulled.tag, bentoml_home=serve_home, log=log, extra_env=env) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            for row, base in list(zip(rows, bases, strict=True))[lifetime * 3 : lifetime * 3 + 3]:
                response = http.post("/predict", json=_json_body(base) | {"site": "ward-3"})
                assert response.status_code == 200, response.text
                answered[response.json()["request_id"]] = store.manifest["content_hash"].iloc[row]
        frame = _logged(tmp_path).set_index("request_id")
        assert set(frame.index) == set(answered)
    assert (frame.loc[list(answered), "input_hash"] == pd.Series(answered)).all()
    assert set(frame["site"]) == {"ward-3"} and set(frame["source"]) == {"served"}
    assert set(frame["model_ref"]) == {twelve_lead.model.ref}
    assert frame["quality.hr_bpm"].between(30, 200).all()


def test_an_unreachable_log_fails_no_request_is_counted_and_spools_until_it_is_back(
    twelve_lead: Packaged,
    serve_home: Path,
    test_records: tuple[DatasetStore, np.ndarray, list[Path]],
    tmp_path: Path,
) -> None:
    _, _, bases = test_records
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    log = tmp_path / "bentoml-serve.log"
    unreachable = server_workspace(log) | {"ECGOPS_PREDICTION_LOG": str(blocker / "log")}
    with (
        running_server(
            twelve_lead.pulled.tag, bentoml_home=serve_home, log=log, extra_env=unreachable
        ) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        ids = []
        for base in bases[:2]:
            response = http.post("/predict", json=_json_body(base))
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
        failures = 0.0
        for _ in range(40):
            metrics = http.get("/metrics").text
            failures = sum(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("ecgops_prediction_log_failures_total")
            )
            if failures:
                break
            time.sleep(0.25)
        assert failures >= 1
    assert list((tmp_path / ".ecgops" / "predictions-spool").glob("*.parquet"))
    with running_server(
        twelve_lead.pulled.tag, bentoml_home=serve_home, log=log, extra_env=server_workspace(log)
    ):
        for _ in range(40):
            if (tmp_path / ".ecgops" / "predictions").exists() and set(ids) <= set(
                _logged(tmp_path)["request_id"]
            ):
                break
            time.sleep(0.25)
    assert set(ids) <= set(_logged(tmp_path)["request_id"])
