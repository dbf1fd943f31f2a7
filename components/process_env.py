"""This process's environment variables, put back as they were after a block that changes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def environ_restored() -> Iterator[None]:
    """Put ``os.environ`` back as it was when the block ends: keys added are removed, keys changed or
    removed get their values back.

    A local Dask cluster's nannies run in this process and export their workers' settings
    (``OMP_NUM_THREADS=1``, a fixed ``PYTHONHASHSEED``, ...) into ``os.environ``; without this every
    process started afterwards (DDP ranks, ``dvc``, a later cluster) would inherit them.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
