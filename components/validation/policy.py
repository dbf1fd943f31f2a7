"""The validation policy (schemas/validation/policy.yaml): suites of expectations with severities."""

from __future__ import annotations

import hashlib
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from components.config import SCHEMAS_DIR
from components.quality.params import SignalFeatureParams

DEFAULT_POLICY = SCHEMAS_DIR / "validation" / "policy.yaml"
SUITES = ("manifest", "records", "dataset")
Severity = Literal["block", "quarantine", "warn"]


class ExpectationSpec(BaseModel):
    """One expectation: a GX expectation name and kwargs, with its severity."""

    model_config = {"extra": "forbid"}

    id: str
    expectation: str
    kwargs: dict[str, Any]
    severity: Severity
    description: str
    lead_column: str | None = None

    @property
    def column(self) -> str | None:
        column = self.kwargs.get("column")
        return str(column) if column is not None else None


class Policy(BaseModel):
    """A versioned validation policy."""

    model_config = {"extra": "forbid"}

    version: str
    features: SignalFeatureParams
    vocabularies: dict[str, str] = Field(default_factory=dict)
    suites: dict[str, list[ExpectationSpec]]
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Policy:
        unknown = set(self.suites) - set(SUITES)
        if unknown:
            raise ValueError(f"unknown suites {sorted(unknown)}; allowed: {SUITES}")
        ids = [e.id for suite in self.suites.values() for e in suite]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate expectation ids: {sorted(duplicates)}")
        if self.path is None:
            raise ValueError("the policy has no path")
        for system, relative in self.vocabularies.items():
            if not (self.path.parent / relative).is_file():
                raise ValueError(f"vocabulary {system}: {relative} not found next to {self.path}")
        return self

    def suite(self, name: str) -> list[ExpectationSpec]:
        return self.suites.get(name, [])

    def spec(self, expectation_id: str) -> ExpectationSpec:
        for suite in self.suites.values():
            for e in suite:
                if e.id == expectation_id:
                    return e
        raise KeyError(expectation_id)

    @cached_property
    def vocabulary_codes(self) -> dict[str, frozenset[str]]:
        """Known label codes per label system."""
        assert self.path is not None
        out: dict[str, frozenset[str]] = {}
        for system, relative in self.vocabularies.items():
            raw = yaml.safe_load((self.path.parent / relative).read_text())
            out[system] = frozenset(str(code) for code in raw["codes"])
        return out

    @property
    def fingerprint(self) -> str:
        """Short hash of the policy file's content (a changed file with an unchanged version shows)."""
        assert self.path is not None
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]


def load_policy(path: Path | None = None) -> Policy:
    """Load and check a policy file (the shipped one by default)."""
    path = (path or DEFAULT_POLICY).resolve()
    raw = yaml.safe_load(path.read_text())
    return Policy.model_validate({**raw, "path": path})


@cache
def feature_params() -> SignalFeatureParams:
    """The shipped policy's signal-feature definitions, read once per process: what validation measures,
    and what the prediction log and drift monitoring measure so that they compare like with like."""
    return load_policy().features
