"""The typed result of a validation run and where its files are."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from components.validation.gx_runner import ExpectationOutcome

Verdict = Literal["pass", "warn", "fail"]


@dataclass
class ValidationResult:
    """What ``validate`` found; ``to_dict()`` is the machine-readable JSON (also in ``result_json``)."""

    dataset: str
    run_name: str
    verdict: Verdict
    policy_version: str
    policy_fingerprint: str
    content_fingerprint: str
    n_records: int
    n_quarantined: int
    n_rejected: int
    n_accepted: int
    expectations: list[ExpectationOutcome]
    dataset_stats: dict[str, Any]
    report_dir: Path
    summary_html: Path
    data_docs_index: Path | None
    result_json: Path
    quarantine_path: Path
    features_path: Path
    trend: list[dict[str, Any]] = field(default_factory=list)
    previous_run: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    validation_run_id: int | None = None
    dataset_version_md5: str | None = None
    #: where each shard of the signal features was extracted, when they were sharded (in order)
    feature_shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """True when a block-severity expectation failed: the dataset version must not be used."""
        return any(e.severity == "block" and not e.success for e in self.expectations)

    @property
    def exit_code(self) -> int:
        return 1 if self.blocked else 0

    @property
    def n_excluded(self) -> int:
        return self.n_quarantined + self.n_rejected

    def failed(self, severity: str | None = None) -> list[ExpectationOutcome]:
        return [
            e for e in self.expectations if not e.success and (severity is None or e.severity == severity)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "run_name": self.run_name,
            "verdict": self.verdict,
            "blocked": self.blocked,
            "policy_version": self.policy_version,
            "policy_fingerprint": self.policy_fingerprint,
            "content_fingerprint": self.content_fingerprint,
            "dataset_version_md5": self.dataset_version_md5,
            "validation_run_id": self.validation_run_id,
            "n_records": self.n_records,
            "n_quarantined": self.n_quarantined,
            "n_rejected": self.n_rejected,
            "n_accepted": self.n_accepted,
            "n_excluded": self.n_excluded,
            "failed": {s: [e.id for e in self.failed(s)] for s in ("block", "quarantine", "warn")},
            "expectations": [e.to_dict() for e in self.expectations],
            "dataset_stats": self.dataset_stats,
            "trend": self.trend,
            "previous_run": self.previous_run,
            "timings_s": self.timings_s,
            "feature_shards": self.feature_shards,
            "paths": {
                "report_dir": str(self.report_dir),
                "summary_html": str(self.summary_html),
                "data_docs_index": str(self.data_docs_index) if self.data_docs_index else None,
                "result_json": str(self.result_json),
                "quarantine": str(self.quarantine_path),
                "features": str(self.features_path),
            },
        }

    def write_json(self) -> Path:
        self.result_json.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return self.result_json
