"""End to end in a real headless browser: `ecgops run` on samples/, `ecgops dashboard`, Debian's Chromium.

The workspace is what the demo produces with the orchestration tests' tiny parameters (ingest → validate →
version → pretrain; fine-tuning is left to the flow's own tests); three task models are added through the
registry API (linear probes on the foundation model's embeddings, see ``populate``) so that metrics move
across versions and a production Bento exists, and two days of production traffic (``traffic``: the
prediction log with a corrupt part, an ok and a breach monitoring run, a shadow report). The test walks
every page like a user, records a steward decision in the form and checks that it reached the registry,
saving a screenshot of each page under its tmp_path.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from components.config import Settings
from components.io.store import DatasetStore
from components.localserver import start_on_free_port, stop
from components.models.checkpoint import load_foundation
from components.registry import open_registry
from components.training.evaluate import embed_ecgs
from components.training.reports import superdiagnostic_targets
from components.validation import list_quarantined
from components.workspace import Workspace
from tests.conftest import SAMPLES, cli_env
from tests.dashboard import populate
from tests.dashboard.conftest import new_workspace
from tests.dashboard.traffic import Traffic, add_traffic
from tests.flows.conftest import TINY

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
SERVER_START_TIMEOUT_S = 90.0
STOP_GRACE_S = 20.0
UI_TIMEOUT_MS = 60_000
OVERRIDE_REASON = "e2e: the tiny demo model goes to production by override so deployment has a Bento"


@dataclass(frozen=True)
class Demo:
    settings: Settings
    env: dict[str, str]
    foundation: str
    traffic: Traffic


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`ecgops run --drop samples` with the orchestration tests' tiny pretraining (no task fine-tuned by
    the flow: that is the flow's own tests' business), then probe task models on its foundation model."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dashboard-e2e")
    settings = new_workspace(root / "workspace")
    params = copy.deepcopy(TINY)
    params["finetune"]["tasks"] = []
    params["pretrain"] |= {"max_epochs": 1, "limit_train_records": 64}
    (settings.workspace / "params.yaml").write_text(yaml.safe_dump(params))
    env = cli_env(settings, PREFECT_HOME=str(root / "prefect"), ECGOPS_USER="e2e-steward")
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "run", "--drop", str(SAMPLES), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    md5 = outcome["version"]["md5"]
    with open_registry(settings.resolved_registry_url) as reg:
        [foundation] = reg.models(kind="foundation")
        validation = reg.latest_validation_run(md5)
        foundation_dir = reg.verify_artifact(foundation.ref)
    assert validation is not None

    model, _ = load_foundation(foundation_dir)
    store = DatasetStore.open(settings.data_dir / "demo")
    _, features = embed_ecgs(model, store, np.arange(len(store)))
    data = populate.TaskData(
        features, superdiagnostic_targets(store.manifest), store.manifest["split"].to_numpy()
    )
    models = populate.register_probe_models(
        settings,
        data,
        name="superdiag-probe",
        parent=foundation.ref,
        dataset_version_md5=md5,
        validation_run_id=validation.id,
        override_reason=OVERRIDE_REASON,
    )
    production = next(m.ref for m in models if m.stage == "production")
    candidate = next(m.ref for m in models if m.stage != "production")
    traffic = add_traffic(
        Workspace(settings), store, production=production, candidate=candidate, now=datetime.now(UTC)
    )
    assert (traffic.ok_run.status, traffic.breach_run.status) == ("ok", "breach")
    return Demo(settings, env, foundation.ref, traffic)


@pytest.fixture
def dashboard_url(demo: Demo, tmp_path: Path) -> Iterator[str]:
    """`ecgops dashboard --port N` serving the demo workspace; stopped after the test."""
    log = tmp_path / "dashboard.log"

    def start(port: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "components.cli", "dashboard", "--port", str(port)]
        with log.open("wb") as sink:
            return subprocess.Popen(command, env=demo.env, stdout=sink, stderr=subprocess.STDOUT)

    port, server = start_on_free_port(
        start,
        lambda p: f"http://127.0.0.1:{p}/_stcore/health",
        what="ecgops dashboard",
        timeout_s=SERVER_START_TIMEOUT_S,
        healthy=lambda response: response.text == "ok",
        details=lambda: log.read_text(errors="replace")[-3000:],
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server, STOP_GRACE_S)


def test_a_user_walks_every_page_and_records_a_steward_decision(
    demo: Demo, dashboard_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM, "Debian's chromium is needed: apt-get install -y chromium (.ci/run installs it)"

    settings = demo.settings
    waiting = list_quarantined(Workspace(settings), "demo", status="quarantined")
    assert len(waiting) > 0, "the demo quarantines records for the steward"
    record_id = str(waiting.loc[0, "record_id"])
    note = "e2e: limb leads checked against the paper ECG"

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(dashboard_url)
            main = page.get_by_test_id("stMain")
            expect(main.get_by_role("heading", name="Data quality")).to_be_visible()
            expect(main.get_by_role("heading", name="Quarantine")).to_be_visible()
            expect(main.get_by_text(record_id).first).to_be_visible()
            expect(main.get_by_role("img").first).to_be_visible()  # the 12-lead plot
            page.screenshot(path=tmp_path / "1-data-quality.png", full_page=True)

            form = page.get_by_test_id("stForm")
            form.get_by_text("accept", exact=True).click()
            form.get_by_label("note (why)").fill(note)
            form.get_by_role("button", name="Record decision").click()
            expect(main.get_by_text(f"accept {record_id} recorded by e2e-steward")).to_be_visible()
            page.screenshot(path=tmp_path / "2-steward-decision.png", full_page=True)

            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_role("link", name="Datasets").click()
            expect(main.get_by_role("heading", name="Versions of demo")).to_be_visible()
            expect(main.get_by_text("Label distribution")).to_be_visible()
            page.screenshot(path=tmp_path / "3-datasets.png", full_page=True)

            sidebar.get_by_role("link", name="Models").click()
            expect(main.get_by_role("heading", name="Registry")).to_be_visible()
            main.get_by_role("tab", name="Lineage").click()
            expect(main.locator("svg .node").first).to_be_visible()  # Graphviz rendered in the browser
            expect(main.locator("svg").get_by_text(demo.foundation).first).to_be_visible()
            page.screenshot(path=tmp_path / "4-models-lineage.png", full_page=True)

            sidebar.get_by_role("link", name="Deployments").click()
            expect(main.get_by_role("heading", name="Bentos per task and stage")).to_be_visible()
            expect(main.get_by_text("ecgops bento pull superdiagnostic@production")).to_be_visible()
            expect(main.get_by_role("heading", name="Audit log")).to_be_visible()
            page.screenshot(path=tmp_path / "5-deployments.png", full_page=True)

            sidebar.get_by_role("link", name="Monitoring").click()
            expect(main.get_by_role("heading", name="Alarms")).to_be_visible()
            expect(main.get_by_text("1 breach(es)")).to_be_visible()
            expect(main.get_by_role("heading", name="Drift over time per site")).to_be_visible()
            expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
            shadow = demo.traffic.shadow
            expect(main.get_by_role("heading", name="Shadow evaluations")).to_be_visible()
            chosen = f"#{shadow.id}: {shadow.candidate} beside {shadow.production}"
            expect(main.get_by_role("combobox", name="shadow report")).to_have_value(chosen)
            expect(main.get_by_text("PASSED", exact=True)).to_be_visible()
            expect(main.get_by_text(str(demo.traffic.corrupt_part))).to_be_visible()
            # alarms, runs, the newest run's feature tests and rates, shadow reports, agreement, log volume
            expect(main.get_by_test_id("stDataFrame")).to_have_count(7)
            page.screenshot(path=tmp_path / "6-monitoring.png", full_page=True)
        finally:
            browser.close()

    with open_registry(settings.resolved_registry_url) as reg:
        decision = reg.steward_decisions("demo")[record_id]
        audit = reg.audit(action="steward.decided", entity_id=f"demo/{record_id}")
    assert (decision.decision, decision.note, decision.reviewer) == ("accept", note, "e2e-steward")
    assert audit and audit[0].reason == note
    listing = list_quarantined(Workspace(settings), "demo")
    assert listing.set_index("record_id").at[record_id, "status"] == "accepted"
    screenshots = ("1-data-quality", "2-steward-decision", "3-datasets", "4-models-lineage", "5-deployments")
    for name in (*screenshots, "6-monitoring"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
