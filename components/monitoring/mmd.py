"""The maximum mean discrepancy two-sample test (Gretton et al., JMLR 2012) in NumPy.

Unbiased MMD² with a Gaussian (RBF) kernel whose bandwidth is the median pairwise distance of the pooled
sample; the p-value comes from permutations of the pooled sample. The pooled kernel matrix is computed
once; a permutation is a 0/1 row marking which pooled points play the first sample, so a block of
permutations costs one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: bytes of the ``(permutations, pooled)`` block multiplied by the kernel matrix at once
_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class MmdTest:
    """The observed unbiased MMD², its permutation p-value and the kernel bandwidth used."""

    statistic: float
    p_value: float
    bandwidth: float


def squared_distances(z: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances ``(N, N)`` of the rows of ``z``, in float64."""
    z = np.asarray(z, dtype=np.float64)
    norms = (z**2).sum(axis=1)
    d2 = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.fill_diagonal(d2, 0.0)
    clipped: np.ndarray = np.maximum(d2, 0.0)
    return clipped


def median_bandwidth(d2: np.ndarray) -> float:
    """The median heuristic: the median of the positive pairwise distances (1 when all points coincide,
    where every bandwidth gives the same kernel)."""
    upper = np.sqrt(d2[np.triu_indices_from(d2, k=1)])
    positive = upper[upper > 0]
    return float(np.median(positive)) if positive.size else 1.0


def mmd2_of_splits(kernel: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each row of ``first`` ``(P, N)`` 0/1 (1: the pooled point is in the first sample)."""
    n = first[0].sum()
    m = kernel.shape[0] - n
    total = kernel.sum()
    diagonal = np.diag(kernel)
    xx = ((first @ kernel) * first).sum(axis=1)
    xy = first @ kernel.sum(axis=1) - xx
    yy = total - xx - 2.0 * xy
    dx = first @ diagonal
    dy = diagonal.sum() - dx
    mmd2: np.ndarray = (xx - dx) / (n * (n - 1)) + (yy - dy) / (m * (m - 1)) - 2.0 * xy / (n * m)
    return mmd2


def _random_splits(rng: np.random.Generator, count: int, pooled: int, n: int) -> np.ndarray:
    order = rng.random((count, pooled)).argsort(axis=1)
    first = np.zeros((count, pooled))
    np.put_along_axis(first, order[:, :n], 1.0, axis=1)
    return first


def mmd_test(x: np.ndarray, y: np.ndarray, permutations: int, rng: np.random.Generator) -> MmdTest:
    """MMD² of ``x`` ``(n, d)`` against ``y`` ``(m, d)`` (n, m ≥ 2) and its permutation p-value
    ``(1 + #{permuted ≥ observed}) / (1 + permutations)``."""
    pooled = np.concatenate([x, y])
    d2 = squared_distances(pooled)
    bandwidth = median_bandwidth(d2)
    kernel = np.exp(-d2 / (2.0 * bandwidth**2))
    observed_split = np.zeros((1, len(pooled)))
    observed_split[0, : len(x)] = 1.0
    observed = float(mmd2_of_splits(kernel, observed_split)[0])
    block = max(1, _BLOCK_BYTES // (8 * len(pooled)))
    exceed = 0
    for start in range(0, permutations, block):
        splits = _random_splits(rng, min(block, permutations - start), len(pooled), len(x))
        exceed += int((mmd2_of_splits(kernel, splits) >= observed).sum())
    return MmdTest(statistic=observed, p_value=(1 + exceed) / (1 + permutations), bandwidth=bandwidth)
