"""A separate writer process for the concurrency and crash tests (run as a script, not collected)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from components.registry import MetricInfo, open_registry

SHA = "1" * 64


def race(url: str, worker: int, n_models: int) -> None:
    """Register models, gates, metrics and Bentos, and promote to production, racing the other workers."""
    reg = open_registry(url, actor=f"worker-{worker}")
    reg.record_dataset_version(
        "race",
        "c" * 32,
        git_rev=None,
        n_records=1,
        n_quarantined=0,
        n_patients=1,
        statistics={},
        parent_md5=None,
    )
    for i in range(n_models):
        if i % 2:
            with reg.atomic():
                model = reg.register_model(
                    "shared",
                    kind="task",
                    task="race",
                    artifact_uri="x",
                    sha256=SHA,
                    dataset_version_md5="c" * 32,
                )
                reg.record_metrics(model, [MetricInfo("test", "all", "auroc", 0.5 + i / 100)])
                reg.register_bento(f"svc:{worker}-{i}", model=model, artifact_uri="x", sha256=SHA)
                reg.record_gate_decision(model, policy="p", verdict="pass", reasons=[])
        else:
            model = reg.register_model(
                "shared", kind="task", task="race", artifact_uri="x", sha256=SHA, dataset_version_md5="c" * 32
            )
            reg.record_metrics(model, [MetricInfo("test", "all", "auroc", 0.5 + i / 100)])
            reg.register_bento(f"svc:{worker}-{i}", model=model, artifact_uri="x", sha256=SHA)
            reg.record_gate_decision(model, policy="p", verdict="pass", reasons=[])
        reg.promote(model, "production", reason=f"worker {worker} round {i}")
    reg.close()


def hang(url: str, marker: str) -> None:
    """Register half a lineage inside one transaction, then wait to be killed before it commits."""
    reg = open_registry(url, actor="doomed")
    with reg.atomic():
        model = reg.register_model("doomed", kind="task", task="crash", artifact_uri="x", sha256=SHA)
        reg.record_metrics(model, [MetricInfo("test", "all", "auroc", 0.9)])
        reg.record_gate_decision(model, policy="p", verdict="pass", reasons=[])
        Path(marker).write_text("in transaction")
        time.sleep(120)
        reg.register_bento("doomed:1", model=model, artifact_uri="x", sha256=SHA)


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "race":
        race(url, int(rest[0]), int(rest[1]))
    else:
        hang(url, rest[0])
