"""Agreement between two models' decisions on the same records (NumPy only): Cohen's kappa, flips per
label, and how far their probabilities moved — what a shadow evaluation reports.

Conventions for the undefined cases:

* kappa is ``1.0`` when both raters give one and the same answer on every record (chance agreement is
  total, and so is the observed agreement: there is nothing they disagree on);
* with no records every statistic is ``nan`` (``None`` in :meth:`LabelAgreement.to_dict`);
* two raters constant on *different* answers have kappa ``0.0`` (observed and chance agreement are both 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray


def _bool_matrix(what: str, value: NDArray[np.bool_]) -> NDArray[np.bool_]:
    if value.dtype != np.bool_:
        raise ValueError(f"{what} must be a boolean array (decisions, not probabilities), got {value.dtype}")
    return value


def _kappa(
    n: NDArray[np.int64], agree: NDArray[np.int64], a1: NDArray[np.int64], b1: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Cohen's kappa per column from counts, with the module's conventions; exact in integers until the
    final division (``(n·agree − chance) / (n² − chance)``, chance = ``a1·b1 + (n−a1)(n−b1)``)."""
    chance = a1 * b1 + (n - a1) * (n - b1)
    numerator = (n * agree - chance).astype(np.float64)
    denominator = (n * n - chance).astype(np.float64)
    out = np.full(numerator.shape, np.nan)
    defined = denominator != 0
    out[defined] = numerator[defined] / denominator[defined]
    out[~defined & (n > 0)] = 1.0  # both constant and equal: the only way chance agreement is total
    return out


def cohen_kappa(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    """Cohen's kappa of two raters' yes/no decisions on the same records (1.0 when both are constant and
    equal, ``nan`` for no records)."""
    a, b = _bool_matrix("a", np.asarray(a)), _bool_matrix("b", np.asarray(b))
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-d and of the same length, got {a.shape} and {b.shape}")
    n = np.array([a.size], dtype=np.int64)
    agree = np.array([int(np.count_nonzero(a == b))], dtype=np.int64)
    a1 = np.array([int(np.count_nonzero(a))], dtype=np.int64)
    b1 = np.array([int(np.count_nonzero(b))], dtype=np.int64)
    return float(_kappa(n, agree, a1, b1)[0])


@dataclass(frozen=True)
class LabelAgreement:
    """How the candidate's decisions on one label compare with production's on the same ``n`` records.

    ``agreement``: share of records decided alike; ``flips_to_positive``: production negative, candidate
    positive; ``flips_to_negative``: the reverse; ``flip_rate``: share of records that flipped.
    """

    label: str
    n: int
    agreement: float
    kappa: float
    flips_to_positive: int
    flips_to_negative: int
    flip_rate: float

    def to_dict(self) -> dict[str, str | int | float | None]:
        """JSON-ready: an undefined statistic (``nan``) becomes ``None``."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def label_agreement(
    production: NDArray[np.bool_], candidate: NDArray[np.bool_], labels: Sequence[str]
) -> list[LabelAgreement]:
    """Per label: agreement, Cohen's kappa and flips between two ``(n, L)`` boolean decision matrices."""
    production = _bool_matrix("production", np.asarray(production))
    candidate = _bool_matrix("candidate", np.asarray(candidate))
    if production.ndim != 2 or production.shape != candidate.shape:
        raise ValueError(
            f"decisions must be (n, L) of one shape, got {production.shape} and {candidate.shape}"
        )
    if production.shape[1] != len(labels):
        raise ValueError(f"{production.shape[1]} label columns but {len(labels)} label names")
    n_records = production.shape[0]
    n = np.full(len(labels), n_records, dtype=np.int64)
    to_positive = np.count_nonzero(~production & candidate, axis=0).astype(np.int64)
    to_negative = np.count_nonzero(production & ~candidate, axis=0).astype(np.int64)
    agree = n - to_positive - to_negative
    kappa = _kappa(n, agree, production.sum(axis=0, dtype=np.int64), candidate.sum(axis=0, dtype=np.int64))
    denominator = n_records if n_records else np.nan  # no records: every share is undefined
    share, flipped = agree / denominator, (n - agree) / denominator
    return [
        LabelAgreement(
            label=label,
            n=n_records,
            agreement=float(share[i]),
            kappa=float(kappa[i]),
            flips_to_positive=int(to_positive[i]),
            flips_to_negative=int(to_negative[i]),
            flip_rate=float(flipped[i]),
        )
        for i, label in enumerate(labels)
    ]


def probability_shift(
    production_proba: NDArray[np.floating], candidate_proba: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Per label, the mean absolute difference between two ``(n, L)`` probability matrices (``nan`` for
    no records)."""
    production = np.asarray(production_proba, dtype=np.float64)
    candidate = np.asarray(candidate_proba, dtype=np.float64)
    if production.ndim != 2 or production.shape != candidate.shape:
        raise ValueError(
            f"probabilities must be (n, L) of one shape, got {production.shape} and {candidate.shape}"
        )
    if production.shape[0] == 0:
        return np.full(production.shape[1], np.nan)
    shift: NDArray[np.float64] = np.abs(candidate - production).mean(axis=0)
    return shift
