"""The dashboard's data layer without Streamlit: pages, label shift, version manifests, plots, DOT."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from components.cli import app
from components.dashboard import window
from components.dashboard.datasets import LabelCounts, label_shift, total_variation, version_manifest
from components.dashboard.launch import app_path, streamlit_command
from components.dashboard.models import document_directories, inline_images, lineage_dot, model_documents
from components.dashboard.quality import quarantine_listing, record_plot
from components.registry import LineageNode, open_registry
from components.validation import list_quarantined
from components.workspace import Workspace
from tests.dashboard.conftest import FIRST_VERSION_RECORDS, Populated


def test_windows_clamp_to_the_listing() -> None:
    assert window(0).label == "no rows" and window(0).n_pages == 1
    assert window(60, 3, 25).label == "rows 51–60 of 60"
    assert window(60, 9, 25).page == 3 and window(60, -1, 25).page == 1
    assert window(10_000, 2, 100).offset == 100
    with pytest.raises(ValueError, match="page size"):
        window(10, 1, 0)


def test_label_shift_and_total_variation() -> None:
    before = LabelCounts(n_records=100, counts={("SCP", "NORM"): 50, ("SCP", "MI"): 50})
    now = LabelCounts(n_records=200, counts={("SCP", "NORM"): 150, ("SCP", "AFIB"): 50})
    shift = label_shift(now, before).set_index("label")
    assert shift.loc["MI", "change (pp)"] == pytest.approx(-50.0)
    assert shift.loc["NORM", "change (pp)"] == pytest.approx(25.0)
    assert (
        shift.loc["AFIB", "previous records"] == 0 and shift.loc["AFIB", "meaning"] == "atrial fibrillation"
    )
    assert list(shift.index[:2]) == ["MI", "NORM"]  # largest change first
    assert total_variation(now, before) == pytest.approx(0.5 * (0.25 + 0.5 + 0.25))
    assert total_variation(before, before) == 0.0
    assert "change (pp)" not in label_shift(now, None).columns


def test_each_versions_manifest_is_found_in_the_checkout_or_the_dvc_cache(populated: Populated) -> None:
    ws = Workspace(populated.settings)
    current = version_manifest(ws, "demo", populated.second_md5)
    older = version_manifest(ws, "demo", populated.first_md5)
    assert current == populated.settings.data_dir / "demo" / "manifest.parquet"
    assert older is not None and ".dvc/cache" in str(older)
    assert pq.read_metadata(older).num_rows == FIRST_VERSION_RECORDS
    assert pq.read_metadata(current).num_rows == 393
    assert version_manifest(ws, "demo", "0" * 32) is None
    assert version_manifest(ws, "other", populated.first_md5) is None


def test_a_missing_plot_is_drawn_again_from_the_store(populated: Populated) -> None:
    ws = Workspace(populated.settings)
    row = list_quarantined(ws, "demo").iloc[0]
    cached = record_plot(ws, "demo", row["record_id"], row["reasons"])
    before = cached.read_bytes()
    cached.unlink()
    drawn = record_plot(ws, "demo", row["record_id"], row["reasons"])
    assert drawn == cached and drawn.read_bytes() == before  # the same plotter, the same picture
    with Image.open(drawn) as image:
        assert image.size[0] > 600
    with pytest.raises(LookupError, match="not in the checked-out store"):
        record_plot(ws, "demo", "0" * 16)


def test_quarantine_of_a_dataset_never_validated(populated: Populated) -> None:
    ws = Workspace(populated.settings)
    assert quarantine_listing(ws, "never-validated") is None
    with pytest.raises(ValueError, match="status"):
        quarantine_listing(ws, "demo", "maybe")


def test_model_documents_come_from_the_evaluation_run_and_the_artifact_directory(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(bytes(range(256)))
    (model_dir / "model_card.md").write_text("# card")
    report_dir = tmp_path / "reports" / "af@1"
    report_dir.mkdir(parents=True)
    plot = Image.new("RGB", (4, 3), "red")
    plot.save(report_dir / "roc.png")
    (report_dir / "index.html").write_text("<h1>report</h1><img src='roc.png' alt='ROC'><img src='gone.png'>")
    (report_dir / "evaluation.json").write_text("{}")
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        model = reg.register_model("af", kind="task", task="af", artifact_uri=str(model_dir))
        assert [(d.kind, d.title) for d in model_documents(document_directories(reg, model))] == [
            ("model card", "model_card.md")
        ]
        with reg.run("evaluate", parameters={"model": model.ref, "report_dir": str(report_dir)}) as run_id:
            reg.record_gate_decision(model.id, policy="af@1", verdict="pass", reasons=[], run_id=run_id)
        documents = model_documents(document_directories(reg, model))
    assert [(d.kind, d.path) for d in documents] == [
        ("evaluation report", report_dir / "index.html"),
        ("evaluation results", report_dir / "evaluation.json"),
        ("model card", model_dir / "model_card.md"),
    ]
    html = inline_images(report_dir / "index.html")
    assert "src='data:image/png;base64," in html and "src='gone.png'" in html
    assert base64.b64decode(html.split("base64,")[1].split("'")[0]) == (report_dir / "roc.png").read_bytes()


def _node(node_kind: str, node_id: int, *children: LineageNode, **attrs: object) -> LineageNode:
    return LineageNode(node_kind, node_id, f'{node_kind} "{node_id}"', dict(attrs), children)


def test_lineage_dot_points_from_sources_to_products_and_truncates() -> None:
    now = datetime.now(UTC)
    model = {"name": "m", "version": 1, "kind": "task", "stage": "production", "created_at": now}
    dv = _node("dataset_version", 4, dataset="demo", dvc_md5="ab" * 16, n_records=10)
    up = _node("model", 1, dv, _node("gate", 9), **model)
    bentos = [_node("bento", i, tag=f"svc:{i}") for i in range(10)]
    down = _node("model", 1, *bentos, **model)
    dot = lineage_dot(1, up, down, max_nodes=6)
    assert '"dataset_version:4" -> "model:1"' in dot and '"gate:9" -> "model:1"' in dot
    assert '"model:1" -> "bento:0"' in dot and '"model:1" -> "bento:2"' in dot
    assert "bento:3" not in dot and '"+7 more"' in dot
    assert "penwidth=2.5" in dot  # the chosen model stands out
    assert dot.count("[label=") == 6 + 1


def test_the_cli_serves_the_app_and_checks_its_port() -> None:
    assert app_path().name == "app.py" and app_path().parent.name == "dashboards"
    command = streamlit_command(9999, "0.0.0.0")
    assert command[1:5] == ["-m", "streamlit", "run", str(app_path())]
    assert command[command.index("--server.port") + 1] == "9999"
    result = CliRunner().invoke(app, ["dashboard", "--port", "0"])
    assert result.exit_code == 2 and "--port" in result.output
