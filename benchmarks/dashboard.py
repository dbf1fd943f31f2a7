"""Dashboard page load times on a large workspace: 100,000 records and 10,000 models (target: < 2 s a page).

Builds a workspace with the real stages: ingest of real PTB-XL records (``--source``, the shared 1,987
records when present, else samples/), DVC version + validation, then a derived store of ``--records``
records (the originals, time-rotated copies and ~1 % with planted defects, so the quarantine is real)
versioned and validated as the second dataset version. The registry then gets ``--models`` models through
its API: foundation versions and task models over four tasks, each with test metrics (AUROCs of a real
linear probe on validation's quality features, evaluated on a bootstrap draw of the test split, with
Hanley–McNeil 95 % CIs), a floor gate decision, Bentos for some passing models, promotions and steward
decisions.

Every page is timed with Streamlit's AppTest (the app's own code, in process): the first visit (cold
caches) and the median of three reruns, plus the interactions a user makes on a large workspace
(paginating, filtering, picking the most used foundation model's lineage, the 100,000-record version's
label shift). The baseline, measured in the same run, is the same pages on the workspace before it
grew (the source records and the first few models). Prints JSON.

Usage: python benchmarks/dashboard.py [--records 100000] [--models 10000] [--source DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from components.config import Settings
from components.dashboard import quality
from components.dashboard.launch import app_path
from components.io.datasets import ingest_and_version, version_dataset
from components.io.store import DatasetStore
from components.metrics.classification import auroc
from components.quality.defects import DEFECTS, write_derived_store
from components.registry import MetricInfo, Registry
from components.training.probe import linear_probe
from components.training.reports import SUPERCLASSES, superdiagnostic_targets
from components.validation import list_quarantined, validate
from components.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"
TARGET_S = 2.0
DATASET = "hospital"
TASKS = ("superdiagnostic", "rhythm", "cinc-snomed", "lead-ii")
FOUNDATION_VERSIONS = 20
DEFECT_RATE = 0.01
BATCH = 250
BASELINE_MODELS = 20
MACRO_FLOOR = 0.6
STEWARD_DECISIONS = 300
PAGES = ("views/data_quality.py", "views/datasets.py", "views/models.py", "views/deployments.py")


def hanley_mcneil(y: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    """AUROC with its 95 % CI from the Hanley–McNeil standard error."""
    a = float(auroc(y, score))
    n1, n0 = int(y.sum()), int((~y.astype(bool)).sum())
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt(max(0.0, (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)))
    return a, max(0.0, a - 1.96 * se), min(1.0, a + 1.96 * se)


def probe_scores(settings: Settings, run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Test-split superdiagnostic targets and a linear probe's scores on validation's quality features."""
    manifest = DatasetStore.open(settings.data_dir / DATASET).manifest.reset_index(drop=True)
    features = pd.read_parquet(run_dir / "features.parquet").set_index("record_id")
    x = np.nan_to_num(
        features.select_dtypes("number").astype(float).reindex(manifest["record_id"]).to_numpy(),
        nan=0.0,
        posinf=0.0,
        neginf=0.0,
    )
    y = superdiagnostic_targets(manifest)
    split = manifest["split"].to_numpy()
    fit = linear_probe(
        (x[split == "train"], y[split == "train"]), (x[split == "val"], y[split == "val"]), x[split == "test"]
    )
    return y[split == "test"], fit.test_scores


def model_metrics(y: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> list[MetricInfo]:
    """Metrics of one model version: AUROCs on a bootstrap draw of the test split (all, and by half)."""
    draw = rng.integers(0, len(y), len(y))
    yd, sd = y[draw], scores[draw]
    out = []
    for cohort, rows in (("all", slice(None)), ("first-half", slice(0, len(y) // 2))):
        yc, sc = yd[rows], sd[rows]
        classes = [j for j in range(yc.shape[1]) if 0 < yc[:, j].sum() < len(yc)]
        per = {SUPERCLASSES[j]: hanley_mcneil(yc[:, j], sc[:, j]) for j in classes}
        macro = float(np.mean([v[0] for v in per.values()]))
        low = float(np.mean([v[1] for v in per.values()]))
        high = float(np.mean([v[2] for v in per.values()]))
        out.append(MetricInfo("test", cohort, "macro_auroc", macro, low, high, n=len(yc)))
        out += [MetricInfo("test", cohort, f"auroc_{c}", *v, n=len(yc)) for c, v in per.items()]
    return out


def fill_registry(
    reg: Registry,
    n_models: int,
    y: np.ndarray,
    scores: np.ndarray,
    artifact: Path,
    validation_runs: list[int],
) -> dict[str, int]:
    """Foundation versions and task models (metrics, gates, Bentos, promotions) through the registry API."""
    rng = np.random.default_rng(0)
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    n_foundations = max(1, min(FOUNDATION_VERSIONS, n_models // 50))
    names = [f"{task}-{head}" for task in TASKS for head in ("probe", "full")]
    foundations: list[int] = []
    counts = {"bentos": 0, "promotions": 0, "failed_gates": 0}
    bar = tqdm(total=n_models, desc="registry models", unit="model")
    made = 0
    while made < n_models:
        with reg.atomic():
            for _ in range(min(BATCH, n_models - made)):
                vr = validation_runs[min(len(validation_runs) - 1, made * len(validation_runs) // n_models)]
                if len(foundations) < n_foundations and made % (n_models // n_foundations) == 0:
                    fm = reg.register_model(
                        "ecg-fm",
                        kind="foundation",
                        artifact_uri=str(artifact),
                        sha256=sha,
                        validation_run_id=vr,
                    )
                    reg.record_metrics(fm.id, model_metrics(y, scores, rng))
                    foundations.append(fm.id)
                else:
                    name = names[made % len(names)]
                    task = name.rsplit("-", 1)[0]
                    model = reg.register_model(
                        name,
                        kind="task",
                        task=task,
                        artifact_uri=str(artifact),
                        sha256=sha,
                        parent=foundations[-1],
                        validation_run_id=vr,
                    )
                    metrics = model_metrics(y, scores, rng)
                    reg.record_metrics(model.id, metrics)
                    macro = metrics[0]
                    assert macro.ci_low is not None
                    passed = macro.ci_low >= MACRO_FLOOR
                    reasons = [] if passed else [f"macro_auroc lower CI {macro.ci_low:.3f} < {MACRO_FLOOR}"]
                    reg.record_gate_decision(
                        model.id,
                        policy=f"{task}-floor@1",
                        verdict="pass" if passed else "fail",
                        reasons=reasons,
                    )
                    counts["failed_gates"] += not passed
                    if passed and model.version % 10 == 0:
                        reg.register_bento(
                            f"ecgops-{name}:v{model.version}",
                            model=model.id,
                            artifact_uri=str(artifact),
                            sha256=sha,
                        )
                        counts["bentos"] += 1
                        stage = (
                            "production"
                            if model.version % 100 == 0
                            else "staging"
                            if model.version % 50 == 0
                            else None
                        )
                        if stage:
                            reg.promote(model.id, stage, reason="benchmark release")
                            counts["promotions"] += 1
                made += 1
                bar.update()
    bar.close()
    return counts


def go_to_page(at: Any, key: str, page: int) -> Any:
    """Select page ``page`` of a paginated listing (its last page when it has fewer)."""
    widget = at.pagination(key=key)
    return widget.select(min(page, widget.num_pages))


def unplot(settings: Settings, at: Any) -> Any:
    """Delete the shown record's cached 12-lead plot (as after ``validate --no-plots``): the page draws it.

    The first plot a server process draws also builds the plotter (its paper grid) and reads the manifest's
    signal locations; later ones only draw.
    """
    record_id = at.selectbox(key="quarantine-record").value
    (settings.state_dir / "validation" / DATASET / "plots" / f"{record_id}.png").unlink(missing_ok=True)
    return at


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def clear_caches() -> None:
    """Forget what the pages cached (the registry handle stays: it lives as long as the server)."""
    import streamlit as st

    st.cache_data.clear()
    quality._plot_store.cache_clear()
    quality._plotter.cache_clear()


def measure_pages(settings: Settings, interactions: dict[str, Any]) -> dict[str, Any]:
    """The server process's first run, then per page: first visit with empty caches, the median of three
    warm reruns, and the timed interactions."""
    from streamlit.testing.v1 import AppTest

    os.environ["ECGOPS_WORKSPACE"] = str(settings.workspace)
    os.environ.pop("ECGOPS_REGISTRY_URL", None)
    out: dict[str, Any] = {}
    for page in PAGES:
        at = AppTest.from_file(str(app_path()), default_timeout=600)
        started = timed(at.run)
        out.setdefault("process_first_run_s", round(started, 3))  # imports, registry engine, first page
        if page != PAGES[0]:
            at.switch_page(page)
        clear_caches()
        first = timed(at.run)
        assert not at.exception, [e.value for e in at.exception]
        warm = statistics.median(timed(at.run) for _ in range(3))
        entry: dict[str, Any] = {"first_visit_s": round(first, 3), "warm_rerun_s": round(warm, 3)}
        for name, act in interactions.items():
            if name.startswith(Path(page).stem + ":"):
                if isinstance(act, tuple):  # (untimed preparation, timed action)
                    prepare, act = act
                    prepare(at).run()
                try:
                    seconds = timed(lambda act=act, at=at: act(at).run())
                except KeyError:  # the widget is not there: the listing fits on one page
                    entry[name.split(":", 1)[1]] = "not paginated at this size"
                    continue
                entry[name.split(":", 1)[1] + "_s"] = round(seconds, 3)
                assert not at.exception, [e.value for e in at.exception]
        entry["under_target"] = max(v for k, v in entry.items() if k.endswith("_s")) < TARGET_S
        out[Path(page).stem] = entry
    return out


def build(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Build the workspace under ``root`` (baseline pages timed on the way); returns what the report needs."""
    workspace = root / "workspace"
    workspace.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    (workspace / "params.yaml").write_text(yaml.safe_dump({"ingest": {"dataset": DATASET}}))
    settings = Settings(workspace=workspace, patient_salt="benchmark")  # type: ignore[arg-type]
    ws = Workspace(settings)
    build_s: dict[str, float] = {}

    start = time.perf_counter()
    first = ingest_and_version(ws, args.source, dataset=DATASET)
    assert first.version is not None
    md5_1 = str(first.version["md5"])
    result_1 = validate(ws, DATASET, dataset_version_md5=md5_1)
    build_s["ingest_validate_source_s"] = time.perf_counter() - start
    assert result_1.validation_run_id is not None
    y, scores = probe_scores(settings, result_1.report_dir)
    artifact = root / "artifact.zip"
    shutil.make_archive(str(artifact.with_suffix("")), "zip", result_1.report_dir, "result.json")
    with Workspace(settings).registry() as reg:
        fill_registry(reg, BASELINE_MODELS, y, scores, artifact, [result_1.validation_run_id])
    baseline = measure_pages(settings, {})

    start = time.perf_counter()
    source = DatasetStore.open(settings.data_dir / DATASET)
    n = len(source)
    rng = np.random.default_rng(1)
    defects = list(DEFECTS)
    items = [
        (
            i % n,
            None
            if i < n
            else (defects[rng.integers(len(defects))] if rng.random() < DEFECT_RATE else "time_shifted"),
        )
        for i in range(args.records)
    ]
    derived = root / "derived"
    write_derived_store(source, derived, items, seed=2)
    shutil.rmtree(settings.data_dir / DATASET)
    shutil.move(derived, settings.data_dir / DATASET)
    build_s["derive_store_s"] = time.perf_counter() - start
    start = time.perf_counter()
    md5_2 = version_dataset(ws, DATASET).md5
    build_s["dvc_version_s"] = time.perf_counter() - start
    start = time.perf_counter()
    result_2 = validate(ws, DATASET, dataset_version_md5=md5_2)
    build_s["validate_large_s"] = time.perf_counter() - start
    assert result_2.validation_run_id is not None

    start = time.perf_counter()
    with Workspace(settings).registry() as reg:
        counts = fill_registry(
            reg,
            args.models - BASELINE_MODELS,
            y,
            scores,
            artifact,
            [result_1.validation_run_id, result_2.validation_run_id],
        )
        waiting = list_quarantined(ws, DATASET)["record_id"].tolist()
        with reg.atomic():
            for i, record_id in enumerate(waiting[:STEWARD_DECISIONS]):
                reg.record_steward_decision(
                    dataset=DATASET,
                    record_id=record_id,
                    decision="reject" if i % 3 else "accept",
                    note="benchmark review",
                    reviewer="steward",
                )
    build_s["registry_s"] = time.perf_counter() - start
    info = {
        "first_md5": md5_1,
        "records": result_2.n_records,
        "quarantined": result_2.n_quarantined,
        "counts": counts,
        "build_s": {k: round(v, 1) for k, v in build_s.items()},
        "baseline_small_workspace": {"records": n, "models": BASELINE_MODELS, "pages": baseline},
    }
    (root / "build.json").write_text(json.dumps(info, indent=2))
    return info


def report(settings: Settings, info: dict[str, Any]) -> dict[str, Any]:
    """Time every page and interaction on the built workspace."""
    interactions = {
        "data_quality:quarantine_page_2": lambda at: go_to_page(at, "quarantine-page", 2),
        "data_quality:rejected_only": lambda at: at.radio(key="quarantine-status").set_value("rejected"),
        "data_quality:first_plot_drawn_in_process": lambda at: unplot(settings, at),
        "data_quality:next_plot_drawn": (
            lambda at: go_to_page(at, "quarantine-page", 3),
            lambda at: unplot(settings, at),
        ),
        "datasets:first_version": lambda at: at.selectbox(key="datasets-version").set_value(
            info["first_md5"]
        ),
        "models:page_200": lambda at: go_to_page(at, "models-page", 200),
        "models:production_filter": lambda at: at.selectbox(key="models-stage").set_value("production"),
        "models:foundation_lineage": lambda at: (
            at.selectbox(key="models-stage").set_value("(all)")
            and at.selectbox(key="models-name").set_value("ecg-fm")
        ),
        "deployments:audit_page_300": lambda at: go_to_page(at, "audit-page", 300),
        "deployments:audit_stage_changes": lambda at: at.selectbox(key="audit-action").set_value(
            "stage.changed"
        ),
    }
    with Workspace(settings).registry() as reg:
        workspace = {
            "records": info["records"],
            "quarantined": info["quarantined"],
            "dataset_versions": len(reg.dataset_versions()),
            "models": reg.count_models(),
            "audit_entries": reg.count_audit(),
            "lineage_model": reg.models(name="ecg-fm", limit=1)[0].ref,
            "lineage_model_descendants": len(reg.lineage_down(model="ecg-fm").walk()) - 1,
            **info["counts"],
        }
    large = measure_pages(settings, interactions)
    worst = max(
        v for page in large.values() if isinstance(page, dict) for k, v in page.items() if k.endswith("_s")
    )
    return {
        "target_s": TARGET_S,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "workspace": workspace,
        "build_s": info["build_s"],
        "baseline_small_workspace": info["baseline_small_workspace"],
        "large_workspace": large,
        "worst_page_s": round(worst, 3),
        "all_pages_under_target": worst < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument(
        "--source", type=Path, default=SHARED_PTBXL if SHARED_PTBXL.is_dir() else REPO / "samples"
    )
    parser.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    parser.add_argument(
        "--measure-only", action="store_true", help="time the pages of a workspace built before with --keep"
    )
    args = parser.parse_args()
    if args.measure_only:
        if args.keep is None or not (args.keep / "build.json").is_file():
            parser.error("--measure-only needs --keep DIR of an earlier run (with its build.json)")
        info = json.loads((args.keep / "build.json").read_text())
        settings = Settings(workspace=args.keep / "workspace")
        print(json.dumps(report(settings, info), indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="ecgops-dash-") as tmp:
        root = args.keep or Path(tmp)
        info = build(args, root)
        settings = Settings(workspace=root / "workspace")
        print(json.dumps(report(settings, info), indent=2))


if __name__ == "__main__":
    main()
