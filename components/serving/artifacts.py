"""Bento archives in the artifact store: a local directory or any fsspec URL (``s3://``, ``gs://``, ...).

Uploads and downloads stream through a sha256, so the digest recorded in the registry is the digest of
the bytes that were stored, and a pull refuses bytes that differ from it.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path
from urllib.parse import urlparse

import fsspec

from components.serving.errors import PackagingError

CHUNK = 1 << 20


def is_local(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1


def join_uri(base: str, *parts: str) -> str:
    """``base`` (path or URL) joined with ``parts``."""
    if is_local(base) and "://" not in base:
        return str(Path(base).joinpath(*parts))
    return posixpath.join(base.rstrip("/"), *parts)


def store_file(local: Path, uri: str) -> str:
    """Copy ``local`` to ``uri`` (creating folders); returns the sha256 of the bytes written."""
    digest = hashlib.sha256()
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        parent = posixpath.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with local.open("rb") as src, fs.open(path, "wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except (OSError, ValueError, ImportError) as exc:
        raise PackagingError(f"could not write the Bento to the artifact store at {uri}: {exc}") from exc
    return digest.hexdigest()


def fetch_file(uri: str, local: Path) -> str:
    """Copy ``uri`` to ``local``; returns the sha256 of the bytes read."""
    digest = hashlib.sha256()
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        with fs.open(path, "rb") as src, local.open("wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except FileNotFoundError as exc:
        raise PackagingError(
            f"the Bento artifact {uri} does not exist (was the artifact store moved?)"
        ) from exc
    except (OSError, ValueError, ImportError) as exc:
        raise PackagingError(f"could not fetch the Bento artifact {uri}: {exc}") from exc
    return digest.hexdigest()
