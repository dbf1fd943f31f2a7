"""Uploaded files → signals: a WFDB record (header + signal files) or a ``.npy`` array.

Uploads are the client's data, so anything that goes wrong reading them is a :class:`RequestError`
(400) naming the file and the problem. WFDB records are read with the ingest reader
(:func:`components.io.wfdb_reader.read_record`) from a private temporary directory.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.io.wfdb_header import HeaderError, parse_header
from components.io.wfdb_reader import RecordError, read_record
from components.serving.errors import RequestError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,200}$")


@dataclass(frozen=True)
class UploadedRecord:
    """A record read from uploaded files: ``signal`` is ``channels × samples`` in the header's units."""

    signal: np.ndarray
    fs: float
    names: tuple[str, ...]
    units: tuple[str, ...]


def read_wfdb_upload(header: bytes, signal_files: Sequence[tuple[str, bytes]]) -> UploadedRecord:
    """Read a WFDB record from its header bytes and ``(file name, bytes)`` of its signal files.

    Each signal file the header names is matched to the upload whose name ends with it (clients and
    proxies may prefix upload names); with one file named and one uploaded, that one is used.
    """
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the WFDB header is not ASCII text (byte {exc.start}): is it a .hea file?"
        ) from exc
    try:
        parsed = parse_header(text)
    except HeaderError as exc:
        raise RequestError(f"corrupt or unsupported WFDB header: {exc}") from exc
    wanted = sorted({s.file_name for s in parsed.signals})
    for name in [parsed.record_name, *wanted]:
        if not _SAFE_NAME.match(name):
            raise RequestError(f"the WFDB header names {name!r}; only plain file names are accepted")
    matched = _match_files(wanted, signal_files)
    with tempfile.TemporaryDirectory(prefix="ecgops-upload-") as tmp:
        folder = Path(tmp)
        (folder / f"{parsed.record_name}.hea").write_bytes(header)
        for name, content in matched.items():
            (folder / name).write_bytes(content)
        try:
            raw = read_record(folder / parsed.record_name)
        except RecordError as exc:
            raise RequestError(f"corrupt WFDB record: {exc}") from exc
        except Exception as exc:
            raise RequestError(
                f"could not read the uploaded WFDB record: {type(exc).__name__}: {exc}"
            ) from exc
    if raw.signal.ndim != 2 or raw.signal.shape[0] == 0:
        raise RequestError("the uploaded WFDB record holds no samples")
    return UploadedRecord(np.ascontiguousarray(raw.signal.T), float(raw.fs), raw.sig_names, raw.units)


def _match_files(wanted: list[str], uploads: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    if not uploads:
        raise RequestError(f"no signal file uploaded; the header names {wanted}")
    if len(wanted) == 1 and len(uploads) == 1:
        return {wanted[0]: uploads[0][1]}
    matched: dict[str, bytes] = {}
    for name in wanted:
        found = [content for upload, content in uploads if Path(upload).name.endswith(name)]
        if not found:
            raise RequestError(
                f"the WFDB header names the signal file {name!r}, which was not uploaded "
                f"(uploaded: {[Path(u).name for u, _ in uploads]})"
            )
        matched[name] = found[0]
    return matched


def read_npy_upload(content: bytes) -> np.ndarray:
    """A 2-D numeric array from ``.npy`` bytes (no pickles); :class:`RequestError` otherwise."""
    try:
        array = np.load(io.BytesIO(content), allow_pickle=False)
    except Exception as exc:
        raise RequestError(f"not a valid .npy file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise RequestError("the .npy upload holds no array")
    if array.dtype.kind not in "iuf":
        raise RequestError(f"the .npy array must hold numbers, not {array.dtype}")
    if array.ndim != 2:
        raise RequestError(f"the .npy array must be 2-D (leads × samples), got shape {list(array.shape)}")
    return array
