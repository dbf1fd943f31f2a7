"""Dataset versions with DVC: ``data/`` is tracked by ``data.dvc`` and pushed to a DVC remote.

The version id of the canonical store is the DVC md5 of ``data/`` (the ``.dir`` hash in ``data.dvc``).
When no default remote is configured, a local directory remote (``ECGOPS_DVC_REMOTE_URL``, default
``.ecgops/dvc-remote``) is added to ``.dvc/config.local`` so no machine path is committed; a team
remote (``dvc remote add -d storage s3://…``) in ``.dvc/config`` takes precedence.

A store that is exactly the version ``data.dvc`` names is not added or pushed again (``dvc status``).
Versioning is all or nothing: ``data.dvc`` only names a version once the remote holds it. While
``dvc add`` + ``dvc push`` run, the previous ``data.dvc`` is kept in ``<state dir>/versioning/``; a failed
push puts it back, and a process killed in between leaves it there for the next ``version_data`` to put
back first (see ``docs/faults.md``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from components.errors import UserError
from components.workspace import Workspace

DVC_FILE = "data.dvc"
DATA_DIR = "data"
LOCAL_REMOTE_NAME = "ecgops-local"
_NO_PREVIOUS = "# no data.dvc before this version\n"  # the journal's content when there was none


class VersioningError(UserError, RuntimeError):
    """DVC could not version or restore the data; the message says what to do."""


@dataclass(frozen=True)
class DataVersion:
    """A version of ``data/``: its DVC md5 and where it was pushed."""

    md5: str
    changed: bool
    remote: str
    git_rev: str | None
    n_files: int | None = None
    size_bytes: int | None = None
    previous: str | None = None  # the version data.dvc recorded before (None: the first version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _repo(root: Path) -> Iterator[Any]:
    from dvc.repo import Repo

    _quiet_dvc()
    with Repo(str(root)) as repo:
        yield repo


def _quiet_dvc() -> None:
    """DVC logs progress at INFO on stdout; keep stdout clean for ``--json`` output."""
    logging.getLogger("dvc").setLevel(logging.WARNING)


def ensure_dvc_project(workspace: Workspace) -> str:
    """``dvc init`` the workspace if needed and make sure a default remote exists; returns its URL."""
    from dvc.repo import Repo

    root = workspace.root
    if not (root / ".dvc").is_dir():
        _quiet_dvc()
        Repo.init(str(root), no_scm=not (root / ".git").exists())
    with Repo(str(root)) as repo:
        remote_name = repo.config["core"].get("remote")
        if remote_name:
            return str(repo.config["remote"][remote_name]["url"])
        url = workspace.settings.resolved_dvc_remote_url
        if "://" not in url:
            try:
                Path(url).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise VersioningError(f"the DVC remote {url} cannot be created or reached: {exc}") from exc
        with repo.config.edit(level="local") as config:
            config["remote"][LOCAL_REMOTE_NAME] = {"url": url}
            config["core"]["remote"] = LOCAL_REMOTE_NAME
        return url


def current_version(workspace: Workspace) -> str | None:
    """The md5 ``data.dvc`` records now, or None before the first version."""
    path = workspace.root / DVC_FILE
    if not path.is_file():
        return None
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or [{}]
    md5 = outs[0].get("md5")
    return str(md5) if md5 else None


def version_data(workspace: Workspace) -> DataVersion:
    """``dvc add data`` and ``dvc push``: record the store as a version and copy it to the remote; a store
    that is exactly the version ``data.dvc`` names is that version already, and nothing runs."""
    root = workspace.root
    if not (root / DATA_DIR).is_dir():
        raise VersioningError(f"nothing to version: {root / DATA_DIR} does not exist")
    remote = ensure_dvc_project(workspace)
    if _is_current_version(workspace):
        return _data_version(workspace, remote, previous=current_version(workspace))
    with _journal(workspace) as before, _repo(root) as repo:
        repo.add([str(root / DATA_DIR)])
        try:
            repo.push(targets=[str(root / DVC_FILE)])
        except Exception as exc:
            raise VersioningError(
                f"dvc push to the DVC remote {remote} failed, so nothing was versioned (data.dvc is "
                f"unchanged); make the remote reachable and run again: {exc}"
            ) from exc
    return _data_version(workspace, remote, previous=before)


def _is_current_version(workspace: Workspace) -> bool:
    """``data/`` is exactly what ``data.dvc`` names. That version was pushed: ``data.dvc`` never names an
    unpushed one (see :func:`_journal`), unless a versioning was cut short, which the journal shows."""
    dvc_file = workspace.root / DVC_FILE
    if journal_path(workspace).is_file() or not dvc_file.is_file():
        return False
    with _repo(workspace.root) as repo:
        return not repo.status(targets=[str(dvc_file)])


def _data_version(workspace: Workspace, remote: str, previous: str | None) -> DataVersion:
    md5 = current_version(workspace)
    if md5 is None:
        raise VersioningError("dvc add wrote no md5 into data.dvc")
    outs = yaml.safe_load((workspace.root / DVC_FILE).read_text())["outs"][0]
    return DataVersion(
        md5=md5,
        changed=md5 != previous,
        remote=remote,
        git_rev=git_revision(workspace.root),
        n_files=outs.get("nfiles"),
        size_bytes=outs.get("size"),
        previous=previous,
    )


def journal_path(workspace: Workspace) -> Path:
    """Where the ``data.dvc`` of before a version in progress is kept until that version is pushed."""
    return workspace.state_dir / "versioning" / f"{DVC_FILE}.previous"


@contextmanager
def _journal(workspace: Workspace) -> Iterator[str | None]:
    """Keep ``data.dvc`` as it was (yielding the md5 it records) until the block ends without an error;
    on an error, or at the next call after the process died in the block, put it back."""
    dvc_file, journal = workspace.root / DVC_FILE, journal_path(workspace)
    if journal.is_file():  # an earlier version_data died between dvc add and a finished push
        _restore(dvc_file, journal.read_text())
    else:
        journal.parent.mkdir(parents=True, exist_ok=True)
        previous = dvc_file.read_text() if dvc_file.is_file() else _NO_PREVIOUS
        tmp = journal.with_suffix(".tmp")
        tmp.write_text(previous)
        os.replace(tmp, journal)
    before = current_version(workspace)
    try:
        yield before
    except BaseException:
        _restore(dvc_file, journal.read_text())
        journal.unlink()
        raise
    journal.unlink()


def _restore(dvc_file: Path, previous: str) -> None:
    if previous == _NO_PREVIOUS:
        dvc_file.unlink(missing_ok=True)
        return
    tmp = dvc_file.with_suffix(".dvc.tmp")
    tmp.write_text(previous)
    os.replace(tmp, dvc_file)


def checkout_version(workspace: Workspace, md5: str) -> DataVersion:
    """Restore ``data/`` to the version ``md5`` bit-exactly (from the local cache, else the remote).

    ``data.dvc`` is rewritten to point at that version, as ``git checkout <rev> data.dvc`` would.
    """
    remote = ensure_dvc_project(workspace)
    full = md5 if md5.endswith(".dir") else f"{md5}.dir"
    dvc_file = workspace.root / DVC_FILE
    previous = dvc_file.read_text() if dvc_file.is_file() else None
    dvc_file.write_text(
        yaml.safe_dump({"outs": [{"md5": full, "hash": "md5", "path": DATA_DIR}]}, sort_keys=False)
    )
    try:
        with _repo(workspace.root) as repo:
            target = str(dvc_file)
            try:
                repo.checkout(targets=[target], force=True)
            except Exception:
                repo.pull(targets=[target], force=True)
    except Exception as exc:
        if previous is not None:
            dvc_file.write_text(previous)
        raise VersioningError(
            f"version {md5} is neither in the local DVC cache nor on the remote {remote}: {exc}"
        ) from exc
    return DataVersion(md5=full, changed=True, remote=remote, git_rev=git_revision(workspace.root))


def git_revision(workspace: Path) -> str | None:
    """The workspace's git HEAD commit, or None outside git / before the first commit."""
    result = subprocess.run(
        ["git", "-C", str(workspace), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None if result.returncode == 0 else None
