"""Label-system mappings (``schemas/mappings/<name>.yaml``): translate a record's codes between systems.

The shipped ``scp_snomed`` mapping lets a PTB-XL (SCP) task be evaluated on PhysioNet/CinC (SNOMED CT)
records as an external cohort, and a SNOMED task be trained on PTB-XL. Each pair maps one SCP statement
(or, with ``class:<C>``, any statement of a PTB-XL diagnostic class) to SNOMED codes, in one or both
directions; ``sole: true`` (towards SCP) applies only when the record carries no other code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.config import SCHEMAS_DIR
from components.tasks.errors import TaskError
from components.tasks.spec import explain
from components.tasks.vocab import CLASS_TOKEN, vocabulary

MAPPINGS_DIR = SCHEMAS_DIR / "mappings"


class MappingPair(BaseModel):
    """One SCP statement (or diagnostic class) ↔ SNOMED codes."""

    model_config = ConfigDict(extra="forbid")

    scp: str
    snomed: list[str] = Field(min_length=1)
    relation: Literal["exact", "equivalent", "broader", "narrower", "approximate"]
    direction: Literal["both", "to_scp", "to_snomed"] = "both"
    sole: bool = Field(default=False, description="to SCP only when the record has no code besides these")
    note: str = ""

    @model_validator(mode="after")
    def _known_codes(self) -> MappingPair:
        scp = vocabulary("SCP")
        if self.scp.startswith(CLASS_TOKEN):
            wanted = self.scp[len(CLASS_TOKEN) :]
            if not any(entry.get("diagnostic_class") == wanted for entry in scp.values()):
                raise ValueError(f"{self.scp}: no SCP statement has diagnostic_class {wanted!r}")
        elif self.scp not in scp:
            raise ValueError(f"unknown SCP code {self.scp!r}")
        unknown = [c for c in self.snomed if c not in vocabulary("SNOMED")]
        if unknown:
            raise ValueError(f"{self.scp}: SNOMED code(s) {unknown} are not in schemas/vocab/snomed.yaml")
        if self.sole and self.direction == "to_snomed":
            raise ValueError(f"{self.scp}: `sole` applies to the SNOMED → SCP direction only")
        return self

    def scp_matches(self, codes: dict[str, float]) -> float | None:
        """The likelihood with which SCP ``codes`` carry this pair's statement (None: not at all)."""
        if not self.scp.startswith(CLASS_TOKEN):
            return codes.get(self.scp)
        wanted = self.scp[len(CLASS_TOKEN) :]
        vocab = vocabulary("SCP")
        hits = [v for c, v in codes.items() if vocab.get(c, {}).get("diagnostic_class") == wanted]
        return max(hits) if hits else None


class LabelMapping(BaseModel):
    """A versioned SCP ↔ SNOMED mapping."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int = Field(ge=1)
    description: str = ""
    pairs: list[MappingPair] = Field(min_length=1)

    def translate(self, codes: dict[str, float], source: str, target: str) -> dict[str, float]:
        """A record's ``{code: likelihood}`` in ``source`` expressed in ``target`` (unpaired codes drop)."""
        if source == target:
            return dict(codes)
        out: dict[str, float] = {}
        if (source, target) == ("SNOMED", "SCP"):
            present = set(codes)
            for pair in self.pairs:
                if pair.direction == "to_snomed":
                    continue
                hits = [codes[c] for c in pair.snomed if c in codes]
                if not hits or (pair.sole and not present <= set(pair.snomed)):
                    continue
                out[pair.scp] = max(out.get(pair.scp, 0.0), *hits)
            return out
        if (source, target) == ("SCP", "SNOMED"):
            for pair in self.pairs:
                if pair.direction == "to_scp":
                    continue
                likelihood = pair.scp_matches(codes)
                if likelihood is None:
                    continue
                for code in pair.snomed:
                    out[code] = max(out.get(code, 0.0), likelihood)
            return out
        raise TaskError(f"mapping {self.name} translates between SCP and SNOMED, not {source} → {target}")


@cache
def load_mapping(name: str, mappings_dir: Path = MAPPINGS_DIR) -> LabelMapping:
    """``schemas/mappings/<name>.yaml``, validated (:class:`TaskError` naming the file and pair)."""
    path = mappings_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in mappings_dir.glob("*.yaml"))) or "(none)"
        raise TaskError(f"unknown label mapping {name!r}: no {path}; known: {known}")
    try:
        return LabelMapping.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        raise TaskError(f"{path}: {explain(exc)}") from None
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: not valid YAML: {exc}") from None
