"""Label vocabularies (schemas/vocab/<system>.yaml): SCP-ECG statements and SNOMED CT diagnosis codes."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components.config import SCHEMAS_DIR
from components.tasks.errors import TaskError

VOCAB_DIR = SCHEMAS_DIR / "vocab"
#: a finding known only at the level of a PTB-XL diagnostic class/subclass (from a mapped code)
CLASS_TOKEN, SUBCLASS_TOKEN = "class:", "subclass:"


def known_systems(vocab_dir: Path = VOCAB_DIR) -> list[str]:
    """Label systems with a vocabulary file (upper case)."""
    return sorted(p.stem.upper() for p in vocab_dir.glob("*.yaml"))


@cache
def vocabulary(system: str, vocab_dir: Path = VOCAB_DIR) -> dict[str, dict[str, Any]]:
    """``code → entry`` of one label system; :class:`TaskError` for a system without a vocabulary."""
    path = vocab_dir / f"{system.lower()}.yaml"
    if not path.is_file():
        raise TaskError(f"no vocabulary for label system {system!r}; known: {', '.join(known_systems())}")
    spec = yaml.safe_load(path.read_text())
    return {str(code): dict(entry or {}) for code, entry in spec["codes"].items()}


def describe(system: str, code: str) -> str:
    """A code's description (the code itself when the vocabulary has none)."""
    if code.startswith(CLASS_TOKEN):
        return f"any {code[len(CLASS_TOKEN) :]} statement"
    entry = vocabulary(system).get(code, {})
    return str(entry.get("description") or entry.get("abbreviation") or code)
