"""A foundation model from a recipe without a text space (ECG-FM: a convolutional transformer, no reports)
goes the whole way: pretrained, fine-tuned, gated, packaged, pulled and served by a real ``bentoml serve``.
``/predict`` and ``/embed`` answer with its outputs; ``/zero_shot`` is not offered (a 404 that says why)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from components.config import Settings
from components.io.store import DatasetStore
from components.io.wfdb_reader import read_record
from components.models.checkpoint import load_foundation
from components.models.task_model import load_task_model
from components.registry import open_registry
from components.serving.launch import running_server, server_workspace
from tests.serving.conftest import API_KEY, TASK, Packaged, _gated_package_pull, pretrained_workspace
from tests.training.conftest import TINY

pytestmark = pytest.mark.slow

RECIPE = "ecg-fm"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def recipe_workspace(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Settings:
    pretrain_params = {**TINY, "recipe": RECIPE, "ecg": {"width": 16, "depth": 2}}
    params = {"ingest": {"workers": 1}, "pretrain": pretrain_params}
    return pretrained_workspace(tmp_path_factory.mktemp("recipe-ws"), samples_dir, params, "recipe-salt")


@pytest.fixture(scope="module")
def served(
    recipe_workspace: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Packaged, httpx.Client]]:
    with open_registry(recipe_workspace.resolved_registry_url) as registry:
        foundation = registry.models(kind="foundation", limit=1)[0].ref
    build, serve = tmp_path_factory.mktemp("recipe-build"), tmp_path_factory.mktemp("recipe-serve")
    packaged = _gated_package_pull(recipe_workspace, foundation, build, serve, TASK)
    log = tmp_path_factory.mktemp("recipe-log") / "bentoml-serve.log"
    with (
        running_server(
            packaged.pulled.tag, bentoml_home=serve, api_key=API_KEY, log=log, extra_env=server_workspace(log)
        ) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=60) as client,
    ):
        yield packaged, client


def test_a_foundation_without_text_is_served_for_predict_and_embed_but_not_zero_shot(
    served: tuple[Packaged, httpx.Client], recipe_workspace: Settings, samples_dir: Path
) -> None:
    packaged, client = served
    store = DatasetStore.open(recipe_workspace.data_dir / "demo")
    row = int(np.flatnonzero(store.manifest["split"].to_numpy() == "test")[0])
    raw = read_record(samples_dir / store.manifest["source_record"].iloc[row])
    body = {
        "signal": raw.signal.T.tolist(),
        "fs": raw.fs,
        "leads": list(raw.sig_names),
        "units": raw.units[0],
    }
    signal, mask = store.read(np.array([row])), store.lead_masks()[[row]]

    task = load_task_model(Path(packaged.model.artifact_uri))
    predicted = client.post("/predict", json=body)
    assert predicted.status_code == 200, predicted.text
    served_p = np.array([predicted.json()["probabilities"][k] for k in task.cfg.labels])
    assert np.abs(served_p - task.predict_proba(signal, mask)[0]).max() <= TOLERANCE

    with open_registry(recipe_workspace.resolved_registry_url) as registry:
        foundation_dir = Path(registry.model(packaged.model.parent or "").artifact_uri)
    foundation, tokenizer = load_foundation(foundation_dir)
    assert tokenizer is None and not foundation.has_text_space
    with torch.no_grad():
        expected = foundation.embed_ecg(torch.from_numpy(signal), torch.from_numpy(mask))[0].numpy()
    embedded = client.post("/embed", json=body)
    assert embedded.status_code == 200, embedded.text
    assert embedded.json()["dim"] == foundation.embedding_dim == foundation.ecg.output_dim
    assert np.abs(np.array(embedded.json()["embedding"]) - expected).max() <= TOLERANCE

    refused = client.post("/zero_shot", json=body | {"prompts": ["normales ekg"]})
    assert refused.status_code == 404 and "learned no text space" in refused.text
