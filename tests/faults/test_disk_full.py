"""The disk fills up during an ingest (a small tmpfs holds the workspace): the ingest fails with an error
that says so, the store, its manifest and its quarantine are exactly as before, nothing half-written is
left, and the same ingest completes once there is space."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.store import DatasetStore, StoreError
from tests.conftest import FIXTURES, QUIET, SAMPLES, ingest_workspace

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs mounted for the test (unmounted afterwards)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(mount: Path, leave_bytes: int) -> Path:
    """A file that takes all the free space of ``mount`` but ``leave_bytes``."""
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with filler.open("wb") as handle:
        handle.truncate(0)
        os.posix_fallocate(handle.fileno(), 0, max(0, free - leave_bytes))
    return filler


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _drop_with_a_broken_record(tmp_path: Path) -> Path:
    """The 393 demo records (~19 MB of signals at 100 Hz), one of them with a truncated signal file."""
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLES, drop)
    broken = sorted((drop / "records100").rglob("*.dat"))[0]
    broken.write_bytes(broken.read_bytes()[:100])
    return drop


def test_a_full_disk_fails_the_ingest_cleanly_and_a_rerun_with_space_completes(
    small_disk: Path, tmp_path: Path
) -> None:
    settings = Settings(
        workspace=small_disk / "workspace",
        registry_url=f"sqlite:///{tmp_path / 'registry.db'}",
        patient_salt="test-salt",  # type: ignore[arg-type]
    )
    params = IngestParams(target_fs=100, workers=1)
    first = ingest(ingest_workspace(settings, params), FIXTURES / "ptbxl500", options=QUIET)
    assert first.ingested == 5
    store_root = settings.data_dir / "demo"
    before = _files(store_root)

    filler = _fill(small_disk, leave_bytes=2 * MIB)
    drop = _drop_with_a_broken_record(tmp_path)
    with pytest.raises(StoreError, match="no space left") as failure:
        ingest(ingest_workspace(settings, params), drop, options=QUIET)
    assert "the store is as it was before" in str(failure.value)
    assert _files(store_root) == before  # manifest, shards, quarantine, copies and log: byte for byte
    assert not list(store_root.rglob("*.tmp"))

    filler.unlink()
    again = ingest(ingest_workspace(settings, params), drop, options=QUIET)
    assert (again.ingested, again.duplicates, again.quarantined) == (392, 0, 1)
    store = DatasetStore.open(store_root)
    assert len(store) == 397 and store.manifest["record_id"].is_unique
    assert store.quarantine["source_record"].tolist() == [r["record"] for r in again.quarantine_reasons]
    referenced = set(store.manifest["shard"])
    assert {f"signals/{p.name}" for p in (store_root / "signals").glob("*.npy")} == referenced
    assert store.read(list(range(len(store)))).shape == (397, 12, 1000)
