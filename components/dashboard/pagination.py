"""Page windows over long listings: the registry is asked for one page (offset/limit) plus a count."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

PAGE_SIZES = (25, 50, 100)


@dataclass(frozen=True)
class PageWindow:
    """Page ``page`` (1-based) of ``size`` rows out of ``total``."""

    page: int
    size: int
    total: int

    @property
    def n_pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def label(self) -> str:
        """``rows 26–50 of 10,000`` (or ``no rows``)."""
        if self.total == 0:
            return "no rows"
        last = min(self.total, self.offset + self.size)
        return f"rows {self.offset + 1:,}–{last:,} of {self.total:,}"

    def slice(self, frame: pd.DataFrame) -> pd.DataFrame:
        """This page of an in-memory table."""
        return frame.iloc[self.offset : self.offset + self.size]


def window(total: int, page: int = 1, size: int = PAGE_SIZES[0]) -> PageWindow:
    """A window with ``page`` clamped into ``1..n_pages`` (a filter may have shrunk the listing)."""
    if size < 1:
        raise ValueError(f"page size must be >= 1, got {size}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    n_pages = max(1, -(-total // size))
    return PageWindow(page=min(max(1, page), n_pages), size=size, total=total)
