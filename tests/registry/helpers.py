"""Small builders shared by the registry tests."""

from __future__ import annotations

from components.registry import Registry

MD5_A = "a" * 32
MD5_B = "b" * 32
SHA = "0" * 64


def add_dataset(reg: Registry, md5: str = MD5_A, parent: str | None = None, dataset: str = "demo") -> None:
    """Record a dataset version with plausible counts."""
    reg.record_dataset_version(
        dataset,
        md5,
        git_rev="deadbeef",
        n_records=100,
        n_quarantined=3,
        n_patients=40,
        statistics={"mean_hr": 71.5},
        parent_md5=parent,
    )
