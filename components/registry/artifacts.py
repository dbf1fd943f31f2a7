"""Artifact hashing and verification: a file's sha256, or a directory's (over sorted relative paths)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from components.registry.errors import ArtifactMismatchError, InvalidArgumentError, NotFoundError

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def local_path(uri: str) -> Path:
    """The local path of a plain path or ``file://`` URI; other schemes must be fetched first."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return Path(uri)
    raise InvalidArgumentError(f"artifact {uri} is not local ({parsed.scheme}://); fetch it before verifying")


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory as the hash of each file's relative path and content, sorted."""
    if not path.exists():
        raise NotFoundError(f"artifact {path} does not exist")
    digest = hashlib.sha256()
    if path.is_file():
        _feed(digest, path)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        _feed(digest, file)
    return digest.hexdigest()


def check_sha256(value: str) -> str:
    """A lower-case hex sha256, or an error saying what is wrong with ``value``."""
    normalized = value.strip().lower()
    if not SHA256_RE.match(normalized):
        raise InvalidArgumentError(f"not a sha256 hex digest: {value!r}")
    return normalized


def verify(what: str, uri: str, expected: str) -> Path:
    """The local path of ``uri`` after checking its sha256 against ``expected``."""
    path = local_path(uri)
    actual = sha256_of(path)
    if actual != expected:
        raise ArtifactMismatchError(what, str(path), expected=expected, actual=actual)
    return path


def _feed(digest: hashlib._Hash, file: Path) -> None:
    with file.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
