"""A family Bento served by a real ``bentoml serve`` (one server for the module): the 12-lead and the lead-I
superdiagnostic models in one Bento, each request routed by the leads it carries and answered like the
in-process model of the member named in the response; long records read in windows. No API key here."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pytest

from components.config import Settings
from components.io.canonical import canonicalize, split_windows
from components.io.leads import STANDARD_LEADS
from components.io.wfdb_reader import read_record
from components.models.task_model import load_task_model
from components.registry import open_registry
from components.serving.bentostore import bentoml_home
from components.serving.launch import running_server, server_workspace
from tests.serving.conftest import LEAD_I_TASK, TASK, Packaged

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5
RECORD = "records100/00000/00007_lr"


@pytest.fixture(scope="module")
def family_bento(family: tuple[Packaged, Settings]) -> Packaged:
    return family[0]


@pytest.fixture(scope="module")
def client(
    family_bento: Packaged, serve_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("serve-log") / "bentoml-serve-family.log"
    with (
        running_server(
            family_bento.pulled.tag, bentoml_home=serve_home, log=log, extra_env=server_workspace(log)
        ) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        yield http


def _body(signal: np.ndarray, fs: float, leads: list[str]) -> dict:
    """A request with the signal as base64 float32 (a 21-s 12-lead record as JSON numbers is over the
    test server's body limit)."""
    values = np.ascontiguousarray(signal, dtype="<f4")
    encoded = {
        "dtype": "float32",
        "shape": list(values.shape),
        "data": base64.b64encode(values.tobytes()).decode(),
    }
    return {"signal": encoded, "fs": fs, "leads": leads}


def _probabilities(response: httpx.Response, labels: list[str]) -> np.ndarray:
    return np.array([response.json()["probabilities"][k] for k in labels])


def _expected(model_dir: Path, signal: np.ndarray, fs: float, leads: list[str]) -> tuple[np.ndarray, int]:
    """The in-process model's probabilities of the record's windows, their mean; and how many windows."""
    model = load_task_model(model_dir)
    whole = canonicalize(signal.astype(np.float32), fs, leads, "mV", target_fs=100, target_samples=None)
    windows = split_windows(whole.signal, whole.n_valid_samples, model.cfg.n_samples)
    proba = model.predict_proba(windows, np.repeat(whole.lead_mask[None], len(windows), axis=0))
    return proba.mean(axis=0), len(windows)


def test_the_family_bento_holds_both_models_and_records_its_members(
    family: tuple[Packaged, Settings], twelve_lead: Packaged, lead_i: Packaged, serve_home: Path
) -> None:
    packaged, settings = family
    assert packaged.package.members == [lead_i.model.ref]
    assert packaged.package.left_out == ["ptbxl-superdiagnostic-lead-ii", "ptbxl-superdiagnostic-limb"]
    assert packaged.pulled.tag.startswith("ecgops-ptbxl-superdiagnostic-family:")
    with bentoml_home(serve_home):
        bento = bentoml.bentos.get(packaged.pulled.tag)
    models = {str(m.tag).split(":")[0] for m in bento.info.all_models}
    assert models == {"ecgops-ptbxl-superdiagnostic", "ecgops-ptbxl-superdiagnostic-lead-i", "ecgops-ecg-fm"}
    assert bento.info.labels["model"] == twelve_lead.model.ref
    assert bento.info.labels["members"] == lead_i.model.ref
    with open_registry(settings.resolved_registry_url) as registry:
        assert registry.bento(packaged.package.tag).model == twelve_lead.model.ref
        (entry,) = registry.audit(action="bento.family", entity_id=packaged.package.tag)
    assert entry.details["members"] == [lead_i.model.ref] and entry.details["stage"] == "production"


def test_the_card_is_the_base_models_with_its_family(
    client: httpx.Client, family_bento: Packaged, lead_i: Packaged
) -> None:
    card = client.post("/model_card").json()
    assert card["model"]["ref"] == family_bento.model.ref and card["required_leads"] == list(STANDARD_LEADS)
    (member,) = card["family"]
    assert member["model"]["ref"] == lead_i.model.ref and member["model"]["bento"] == family_bento.pulled.tag
    assert member["required_leads"] == ["I"] and member["gate"]["verdict"] == "pass"
    assert "family" not in member


def test_each_request_is_answered_by_the_member_that_suits_its_leads(
    client: httpx.Client, family_bento: Packaged, lead_i: Packaged, samples_dir: Path
) -> None:
    raw = read_record(samples_dir / RECORD)
    names = list(raw.sig_names)
    cases = [
        (raw.signal.T, names, family_bento, TASK, list(STANDARD_LEADS)),
        (raw.signal[:, [0]].T, ["I"], lead_i, LEAD_I_TASK, ["I"]),
        (raw.signal[:, [0, 6, 7]].T, ["I", "V1", "V2"], lead_i, LEAD_I_TASK, ["I"]),
    ]
    for signal, leads, member, task, used in cases:
        response = client.post("/predict", json=_body(signal, raw.fs, leads))
        assert response.status_code == 200, response.text
        model = load_task_model(Path(member.model.artifact_uri))
        expected, _ = _expected(Path(member.model.artifact_uri), signal, raw.fs, leads)
        assert np.abs(_probabilities(response, model.cfg.labels) - expected).max() <= TOLERANCE
        answer = response.json()
        assert answer["model"]["ref"] == member.model.ref and answer["model"]["task"] == task
        assert answer["model"]["bento"] == family_bento.pulled.tag
        assert answer["input"]["routed_to"] == task and answer["input"]["leads_used"] == used

    refused = client.post("/predict", json=_body(raw.signal[:, [6]].T, raw.fs, ["V1"]))
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        f"no model of this Bento reads the leads present ['V1']: task {TASK} needs {list(STANDARD_LEADS)}; "
        f"task {LEAD_I_TASK} needs ['I']"
    )


def test_a_21_s_record_is_read_in_three_windows_and_their_mean_answers(
    client: httpx.Client, family_bento: Packaged, fixtures_dir: Path
) -> None:
    base = fixtures_dir / "cinc" / "cpsc2018_extra" / "Q0026"  # 500 Hz, 21 s, 12 leads
    raw = read_record(base)
    expected, count = _expected(
        Path(family_bento.model.artifact_uri), raw.signal.T, raw.fs, list(raw.sig_names)
    )
    assert count == 3
    files = [
        ("header", ("Q0026.hea", base.with_suffix(".hea").read_bytes())),
        ("signals", ("Q0026.mat", base.with_suffix(".mat").read_bytes())),
    ]
    labels = load_task_model(Path(family_bento.model.artifact_uri)).cfg.labels
    for response in (
        client.post("/predict", json=_body(raw.signal.T, raw.fs, list(raw.sig_names))),
        client.post("/predict_wfdb", files=files),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["input"]["n_windows"] == 3 and response.json()["input"]["n_samples"] == 10500
        assert np.allclose(_probabilities(response, labels), expected, atol=TOLERANCE, rtol=0)


def test_too_long_and_too_short_records_are_refused_saying_the_limits(
    client: httpx.Client, samples_dir: Path
) -> None:
    raw = read_record(samples_dir / RECORD)
    lead_one = raw.signal[:, [0]].T
    long = client.post("/predict", json=_body(np.tile(lead_one, 61), raw.fs, ["I"]))  # 610 s of lead I
    assert long.status_code == 400
    assert long.json()["error"] == (
        "the signal is too long: 61000 samples at 100 Hz is 610.00 s, 61 windows of 10 s; task "
        f"{LEAD_I_TASK} reads at most 60 windows (600 s): send the record in parts of at most 600 s"
    )
    short = client.post("/predict", json=_body(raw.signal[:400].T, raw.fs, list(raw.sig_names)))
    assert short.status_code == 400
    assert short.json()["error"] == (
        f"the signal is too short: 400 samples at 100 Hz is 4.00 s; task {TASK} needs at least 10 s"
    )
