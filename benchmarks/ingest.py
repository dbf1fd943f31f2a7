"""Ingest speed and memory: ecgops ingest vs a plain ``wfdb.rdsamp`` loop over the same records.

Prints JSON. Uses ../shared/data/ptb-xl when present (1,987 records), else samples/. Both are measured
in this run on this machine, interleaved (``--repeats`` rounds of ``--ingests-per-round`` ingests and one
rdsamp loop; medians reported), so the ratio is comparable across machines. An ingest takes well under a
second and a loop over ten, so a short burst of other work on the machine skews one ingest far more than
one loop: several ingests per round keep the ingest median representative. Ingest time includes writing
the shards durably (fsync) and the manifest. Besides wall time, CPU time is reported (user + system,
ingest including its worker processes): on a machine shared with other jobs wall times swing, CPU times
much less. Peak RSS is measured in a fresh child process per size (500 records and all), to show that
ingest streams.

    python benchmarks/ingest.py [--drop DIR] [--workers N] [--repeats N] [--ingests-per-round N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptb-xl"


def _subset_drop(source: Path, n_records: int | None, target: Path) -> int:
    """A PTB-XL drop with the first n records of ``source`` (copied signals, filtered CSV)."""
    import pandas as pd

    table = pd.read_csv(source / "ptbxl_database.csv")
    present = table[table["filename_lr"].map(lambda r: (source / f"{r}.hea").is_file())]
    chosen = present if n_records is None else present.head(n_records)
    target.mkdir(parents=True)
    chosen.to_csv(target / "ptbxl_database.csv", index=False)
    for rel in chosen["filename_lr"]:
        for ext in (".hea", ".dat"):
            copy = target / f"{rel}{ext}"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / f"{rel}{ext}", copy)
    return len(chosen)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _ingest_once(drop: Path, workers: int) -> dict[str, float]:
    from components.config import Settings, parse_params
    from components.io.ingest import IngestOptions, ingest
    from components.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp), patient_salt="benchmark")  # type: ignore[arg-type]
        workspace = Workspace(settings, parse_params({"ingest": {"workers": workers}}))
        cpu = _cpu_seconds()
        summary = ingest(workspace, drop, options=IngestOptions(progress=False))
        cpu = _cpu_seconds() - cpu
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "records": summary.ingested,
        "seconds": summary.elapsed_s,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak_kib / 1024,
    }


def _rdsamp_loop(drop: Path) -> dict[str, float]:
    import pandas as pd
    import wfdb

    records = [drop / r for r in pd.read_csv(drop / "ptbxl_database.csv")["filename_lr"]]
    started, cpu = time.perf_counter(), time.process_time()
    for base in records:
        wfdb.rdsamp(str(base))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"records": len(records), "seconds": seconds, "cpu_seconds": cpu}


def _child(drop: str, workers: int) -> None:
    print(json.dumps(_ingest_once(Path(drop), workers)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--drop", type=Path, default=SHARED_PTBXL if SHARED_PTBXL.is_dir() else REPO / "samples"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; medians reported")
    parser.add_argument("--ingests-per-round", type=int, default=3, help="ingests per rdsamp loop")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "all"
        n_all = _subset_drop(args.drop, None, full)
        small = Path(tmp) / "small"
        _subset_drop(args.drop, 500, small)
        _ingest_once(full, args.workers)  # warm the page cache for both contenders
        runs, references = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine
            runs.extend(_ingest_once(full, args.workers) for _ in range(args.ingests_per_round))
            references.append(_rdsamp_loop(full))
        memory = {}
        for name, drop in (("500", small), ("all", full)):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(drop), str(args.workers)],
                capture_output=True,
                text=True,
                check=True,
            )
            memory[name] = json.loads(out.stdout.strip().splitlines()[-1])

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    n_records = runs[0]["records"]
    ingest_rate = n_records / median(runs, "seconds")
    rdsamp_rate = references[0]["records"] / median(references, "seconds")
    per_round = args.ingests_per_round
    ratios = [
        ref["seconds"] / statistics.median(r["seconds"] for r in runs[i * per_round : (i + 1) * per_round])
        for i, ref in enumerate(references)
    ]
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "drop": str(args.drop),
                "records": n_all,
                "workers": args.workers,
                "cpus": multiprocessing.cpu_count(),
                "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
                "repeats": args.repeats,
                "ingests_per_round": per_round,
                "ingest_records_per_s": round(ingest_rate, 1),
                "rdsamp_loop_records_per_s": round(rdsamp_rate, 1),
                "ratio_vs_rdsamp": round(ingest_rate / rdsamp_rate, 2),
                "target_ratio": 20,
                "ingest_seconds_median": round(median(runs, "seconds"), 3),
                "rdsamp_loop_seconds_median": round(median(references, "seconds"), 3),
                "ratio_per_round": [round(r, 1) for r in ratios],
                "ratio_best_of_each": round(
                    min(r["seconds"] for r in references) / min(r["seconds"] for r in runs), 2
                ),
                "ingest_seconds": [round(r["seconds"], 3) for r in runs],
                "rdsamp_loop_seconds": [round(r["seconds"], 3) for r in references],
                "cpu": {
                    "ingest_cpu_seconds_median": round(median(runs, "cpu_seconds"), 3),
                    "rdsamp_loop_cpu_seconds_median": round(median(references, "cpu_seconds"), 3),
                    "cpu_ratio_vs_rdsamp": round(
                        median(references, "cpu_seconds") / median(runs, "cpu_seconds"), 2
                    ),
                    "ingest_cpu_us_per_record": round(1e6 * median(runs, "cpu_seconds") / n_records, 1),
                },
                "peak_rss_mib": {
                    "500_records": round(memory["500"]["peak_rss_mib"], 1),
                    f"{memory['all']['records']}_records": round(memory["all"]["peak_rss_mib"], 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
