"""How accurate is the R-peak detector that pretraining crops around (and the quality checks count with)?

Prints JSON. Reads the beat-annotated MIT-BIH record 100 of ../shared/data/wfdb_python_sample_data (30 min,
MLII and V5 at 360 Hz, reference annotations in 100.atr), cuts it into 10 s records like the ones ecgops
stores, canonicalises each (leads II and V5, mV) at the rates stores use (100 and 500 Hz), and runs the
platform's detector (``components.quality.rpeak_positions`` with the validation policy's settings) on every
window. A detection within ±50 ms of an annotated beat is a true positive (each beat matched at most once);
sensitivity = TP / beats, PPV = TP / detections. The baseline, measured in the same run on the same windows
at the record's own 360 Hz, is wfdb's XQRS detector (``wfdb.processing.xqrs_detect``).

    python benchmarks/rpeak_accuracy.py [--window-s 10] [--tolerance-ms 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RECORD = REPO.parent / "shared" / "data" / "wfdb_python_sample_data" / "100"
#: annotation symbols that mark a beat (WFDB's beat codes); rhythm, noise and comment marks are not beats
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def matched(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> int:
    """True positives: detections within ``tolerance`` samples of a reference beat, each beat used once."""
    used = np.zeros(len(reference), dtype=bool)
    hits = 0
    for position in detected:
        candidates = np.flatnonzero(~used & (np.abs(reference - position) <= tolerance))
        if len(candidates):
            used[candidates[np.argmin(np.abs(reference[candidates] - position))]] = True
            hits += 1
    return hits


def scores(tp: int, beats: int, detections: int) -> dict[str, float | int]:
    return {
        "beats": beats,
        "detections": detections,
        "true_positives": tp,
        "sensitivity": round(tp / beats, 4),
        "ppv": round(tp / detections, 4) if detections else float("nan"),
    }


def ecgops_detector(
    windows: list[np.ndarray], fs: int, names: list[str], units: list[str]
) -> list[np.ndarray]:
    """Peaks (in seconds from each window's start) of the platform's detector on canonical records."""
    from components.io.canonical import canonicalize
    from components.quality import rpeak_positions
    from components.validation.policy import load_policy

    n = round(windows[0].shape[0] / 360 * fs)
    canon = [canonicalize(w.T, 360, names, units, target_fs=fs, target_samples=n) for w in windows]
    signals = np.stack([c.signal for c in canon])
    masks = np.stack([c.lead_mask for c in canon])
    table = rpeak_positions(signals, masks, fs, load_policy().features)
    return [row[row >= 0] / fs for row in table]


def xqrs_detector(windows: list[np.ndarray]) -> list[np.ndarray]:
    """Peaks (seconds) of wfdb's XQRS on the first channel (MLII) at 360 Hz."""
    import wfdb.processing

    return [wfdb.processing.xqrs_detect(w[:, 0], fs=360, verbose=False) / 360 for w in windows]


def evaluate(peaks: list[np.ndarray], beats: list[np.ndarray], tolerance_s: float) -> dict[str, float | int]:
    tp = sum(matched(b, p, tolerance_s) for b, p in zip(beats, peaks, strict=True))
    return scores(tp, sum(len(b) for b in beats), sum(len(p) for p in peaks))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--tolerance-ms", type=float, default=50.0)
    args = parser.parse_args()

    import wfdb

    record = wfdb.rdrecord(str(RECORD))
    annotation = wfdb.rdann(str(RECORD), "atr")
    beat_samples = np.array(
        [s for s, sym in zip(annotation.sample, annotation.symbol, strict=True) if sym in BEAT_SYMBOLS]
    )
    length = round(args.window_s * record.fs)
    starts = range(0, record.p_signal.shape[0] - length + 1, length)
    windows = [record.p_signal[s : s + length] for s in starts]
    beats = [
        (beat_samples[(beat_samples >= s) & (beat_samples < s + length)] - s) / record.fs for s in starts
    ]
    names = ["II" if name == "MLII" else name for name in record.sig_name]
    tolerance = args.tolerance_ms / 1000
    results: dict[str, dict] = {}
    for fs in (100, 500):
        started = time.perf_counter()
        peaks = ecgops_detector(windows, fs, names, list(record.units))
        results[f"ecgops_{fs}hz"] = evaluate(peaks, beats, tolerance) | {
            "seconds": round(time.perf_counter() - started, 2)
        }
    started = time.perf_counter()
    results["baseline_wfdb_xqrs_360hz"] = evaluate(xqrs_detector(windows), beats, tolerance) | {
        "seconds": round(time.perf_counter() - started, 2)
    }
    duration = record.p_signal.shape[0] / record.fs
    print(
        json.dumps(
            {
                "record": f"{RECORD} (MIT-BIH 100: MLII + V5, 360 Hz, {duration:.0f} s)",
                "windows": len(windows),
                "window_s": args.window_s,
                "tolerance_ms": args.tolerance_ms,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
