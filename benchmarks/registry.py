"""Lineage query speed: fill a registry with 10,000 models in chains of depth 5, time full lineage queries.

Runs on SQLite (a temporary file) and PostgreSQL (a temporary database on ECGOPS_TEST_PG_URL's server) in
the same run and prints JSON: p50/p99 milliseconds of lineage up (Bento -> ... -> dataset version) and down
(dataset version -> every model and Bento). Usage: ``python benchmarks/registry.py [--models 10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from components.registry import Registry, open_registry

PG_URL = os.environ.get("ECGOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHA = "f" * 64
TARGET_P99_MS = 50.0


def fill(reg: Registry, n_models: int, depth: int, chains_per_dataset: int) -> tuple[list[str], list[str]]:
    """Chains fm -> fm -> ... -> task model -> Bento; returns (Bento tags, dataset md5s)."""
    tags: list[str] = []
    md5s: list[str] = []
    chains = n_models // depth
    parent_md5: str | None = None
    for chain in range(chains):
        with reg.atomic():
            if chain % chains_per_dataset == 0:
                md5 = uuid.uuid4().hex
                reg.record_dataset_version(
                    "bench",
                    md5,
                    git_rev=None,
                    n_records=1000,
                    n_quarantined=5,
                    n_patients=300,
                    statistics={},
                    parent_md5=parent_md5,
                )
                vr = reg.record_validation_run(
                    md5, policy_version="1", verdict="pass", report_uri="r", statistics={}
                )
                md5s.append(md5)
                parent_md5 = md5
            run = reg.start_run("pretrain", parameters={"chain": chain}, code_version="bench", host="bench")
            parent = reg.register_model(
                f"fm{chain}",
                kind="foundation",
                artifact_uri="x",
                sha256=SHA,
                validation_run_id=vr,
                run_id=run,
            )
            for _ in range(depth - 2):
                parent = reg.register_model(
                    f"fm{chain}",
                    kind="foundation",
                    artifact_uri="x",
                    sha256=SHA,
                    parent=parent.id,
                    dataset_version_md5=md5,
                )
            task = reg.register_model(
                f"task{chain}",
                kind="task",
                task=f"t{chain % 50}",
                artifact_uri="x",
                sha256=SHA,
                parent=parent.id,
                validation_run_id=vr,
                run_id=run,
            )
            reg.record_gate_decision(task.id, policy="p", verdict="pass", reasons=[])
            tag = f"svc{chain}:1"
            reg.register_bento(tag, model=task.id, artifact_uri="x", sha256=SHA)
            tags.append(tag)
    return tags, md5s


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    """p50/p99 of ``n`` calls, in milliseconds."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 3),
        "n": n,
    }


def measure(url: str, n_models: int, depth: int, queries: int) -> dict[str, object]:
    """Fill one database and time lineage queries on it."""
    reg = open_registry(url, actor="bench")
    start = time.perf_counter()
    tags, md5s = fill(reg, n_models, depth, chains_per_dataset=10)
    fill_s = time.perf_counter() - start
    rng = random.Random(0)
    for tag, md5 in zip(tags[:20], md5s * 20, strict=False):  # warm the statement caches and the pool
        reg.lineage_up(bento=tag)
        reg.lineage_down(dataset_version=md5)
    up = timed(lambda: reg.lineage_up(bento=rng.choice(tags)), queries)
    down = timed(lambda: reg.lineage_down(dataset_version=rng.choice(md5s)), queries)
    reg.close()
    return {
        "models": len(tags) * depth,
        "chain_depth": depth,
        "fill_s": round(fill_s, 1),
        "lineage_up": up,
        "lineage_down": down,
        "p99_under_target": max(up["p99_ms"], down["p99_ms"]) < TARGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    results: dict[str, object] = {"target_p99_ms": TARGET_P99_MS}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(
            f"sqlite:///{Path(tmp) / 'bench.db'}", args.models, args.depth, args.queries
        )
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"ecgops_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        pg = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        results["postgresql"] = measure(pg, args.models, args.depth, args.queries)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
