"""Artifact hashing: files, directories (content and layout both count), and which URIs are local."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from components.registry import ArtifactMismatchError, InvalidArgumentError, NotFoundError
from components.registry.artifacts import check_sha256, local_path, sha256_of, verify


def test_file_hash_is_plain_sha256(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert sha256_of(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_directory_hash_covers_names_and_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "m.pt").write_bytes(b"1")
        (root / "z.yaml").write_text("k: v")
    assert sha256_of(a) == sha256_of(b)
    (b / "sub" / "m.pt").rename(b / "sub" / "n.pt")
    assert sha256_of(a) != sha256_of(b)


def test_local_paths_and_verification(tmp_path: Path) -> None:
    path = tmp_path / "my model.bin"
    path.write_bytes(b"abc")
    assert local_path(path.as_uri()) == path
    assert local_path(str(path)) == path
    with pytest.raises(InvalidArgumentError, match="not local"):
        local_path("s3://bucket/model.bin")
    with pytest.raises(NotFoundError):
        sha256_of(tmp_path / "missing")
    with pytest.raises(ArtifactMismatchError, match=r"recorded 0{64}"):
        verify("model m@1", str(path), "0" * 64)
    assert check_sha256(" " + "A" * 64) == "a" * 64
