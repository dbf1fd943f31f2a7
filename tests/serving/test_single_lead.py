"""A single-lead task served over HTTP: a lead-I request is answered like the in-process model, extra
leads are ignored, a request without lead I is refused. This server runs without an API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from components.io.canonical import canonicalize
from components.io.wfdb_reader import read_record
from components.models.task_model import load_task_model
from components.serving.launch import RunningServer, running_server, server_workspace
from tests.serving.conftest import Packaged

pytestmark = pytest.mark.slow

RECORDS = ["00007_lr", "00010_lr", "00016_lr"]


@pytest.fixture(scope="module")
def server(
    lead_i: Packaged, serve_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("serve-log") / "bentoml-serve-lead-i.log"
    with running_server(
        lead_i.pulled.tag, bentoml_home=serve_home, log=log, extra_env=server_workspace(log)
    ) as running:
        yield running


def test_single_lead_requests_for_a_single_lead_task(
    server: RunningServer, lead_i: Packaged, samples_dir: Path
) -> None:
    model = load_task_model(Path(lead_i.model.artifact_uri))
    assert model.cfg.leads == ["I"]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/model_card").json()["required_leads"] == ["I"]  # no API key configured: open
        for name in RECORDS:
            raw = read_record(samples_dir / "records100" / "00000" / name)
            lead_i_only = raw.signal[:, [0]].T
            canonical = canonicalize(lead_i_only, raw.fs, ["I"], "mV", target_fs=100, target_samples=1000)
            expected = model.predict_proba(canonical.signal[None], canonical.lead_mask[None])[0]

            single = client.post(
                "/predict", json={"signal": lead_i_only.tolist(), "fs": raw.fs, "leads": ["lead I"]}
            )
            assert single.status_code == 200, single.text
            got = np.array([single.json()["probabilities"][k] for k in model.cfg.labels])
            assert np.abs(got - expected).max() <= 1e-5
            assert single.json()["input"]["leads_used"] == ["I"]

            full = client.post(
                "/predict", json={"signal": raw.signal.T.tolist(), "fs": raw.fs, "leads": list(raw.sig_names)}
            )
            assert full.status_code == 200 and full.json()["input"]["leads_used"] == ["I"]
            masked = np.array([full.json()["probabilities"][k] for k in model.cfg.labels])
            assert np.abs(masked - got).max() <= 1e-6  # the other leads are masked out

        without = client.post(
            "/predict", json={"signal": raw.signal[:, [1]].T.tolist(), "fs": raw.fs, "leads": ["II"]}
        )
        assert without.status_code == 400
        assert (
            "task ptbxl-superdiagnostic-lead-i needs the leads ['I']; the request lacks ['I']"
            in without.json()["error"]
        )
