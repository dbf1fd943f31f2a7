"""Where and with which code a run happens."""

from __future__ import annotations

import socket
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from components.config import PACKAGE_ROOT


@cache
def code_version() -> str:
    """The git commit of the ecgops checkout (``-dirty`` if changed), else the package version."""
    try:
        rev = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        return f"{rev}-dirty" if dirty else rev
    except (OSError, subprocess.CalledProcessError):
        try:
            return f"ecgops=={version('ecgops')}"
        except PackageNotFoundError:
            return "unknown"


def host() -> str:
    """This machine's host name."""
    return socket.gethostname()


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return out.stdout.strip()
