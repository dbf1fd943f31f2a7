"""Monitoring policies as data: the shipped one loads; a wrong one is refused, naming the wrong key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from components.config import read_yaml
from components.errors import UserError
from components.monitoring.errors import MonitoringError
from components.monitoring.policy import MONITORING_DIR, load_policy, policy_names
from components.quality.monitored import MONITORED_FEATURES


def _written(tmp_path: Path, change: dict[str, Any], name: str = "custom") -> Path:
    """The default policy renamed ``name`` with ``change`` merged into its sections, in ``tmp_path``."""
    raw = read_yaml(MONITORING_DIR / "default.yaml") | {"name": name}
    for key, value in change.items():
        raw[key] = raw[key] | value if isinstance(value, dict) else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_default_policy_loads() -> None:
    policy = load_policy("default")
    assert "default" in policy_names()
    assert policy.ref == "default@v1"
    assert set(policy.features.names) <= set(MONITORED_FEATURES)
    assert policy.check_alpha() == pytest.approx(policy.alpha / 3)
    with pytest.raises(ValidationError, match="frozen"):
        policy.alpha = 0.5


def test_an_unknown_key_is_named_with_its_section(tmp_path: Path) -> None:
    path = _written(tmp_path, {"features": {"min_groups_samples": 10}})
    with pytest.raises(MonitoringError, match=r"unknown key features\.min_groups_samples") as error:
        load_policy(str(path))
    assert isinstance(error.value, UserError) and str(path) in str(error.value)


def test_an_unknown_feature_is_named(tmp_path: Path) -> None:
    _written(tmp_path, {"features": {"names": ["hr_bpm", "qrs_width_ms"]}})
    with pytest.raises(MonitoringError, match=r"features\.names: unknown feature\(s\) \['qrs_width_ms'\]"):
        load_policy("custom", monitoring_dir=tmp_path)


def test_too_few_permutations_for_alpha_are_refused(tmp_path: Path) -> None:
    path = _written(tmp_path, {"alpha": 0.01, "embedding": {"permutations": 200}})
    with pytest.raises(MonitoringError, match=r"embedding\.permutations: .* use at least 300"):
        load_policy(str(path))


def test_an_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(MonitoringError, match=r"unknown monitoring policy 'weekly'.*known: .*default"):
        load_policy("weekly")


def test_the_name_must_match_the_file(tmp_path: Path) -> None:
    path = _written(tmp_path, {}, name="custom")
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(MonitoringError, match="name 'custom' must match the file name 'other'"):
        load_policy("other", monitoring_dir=tmp_path)


def test_an_unknown_group_column_is_refused(tmp_path: Path) -> None:
    path = _written(tmp_path, {"features": {"group_by": ["site", "ward"]}})
    with pytest.raises(MonitoringError, match=r"features\.group_by\.1: Input should be 'site' or 'device'"):
        load_policy(str(path))
