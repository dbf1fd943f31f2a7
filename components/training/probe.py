"""A linear probe on frozen features: multi-label logistic regression, L2 strength chosen on validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from components.metrics.classification import macro_auroc


@dataclass
class ProbeResult:
    weight_decay: float
    val_macro_auroc: float
    test_scores: np.ndarray


def _fit(x: torch.Tensor, y: torch.Tensor, weight_decay: float, iterations: int) -> torch.nn.Linear:
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x), y)
        loss = loss + weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def linear_probe(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test_x: np.ndarray,
    *,
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
    iterations: int = 200,
) -> ProbeResult:
    """Standardise features on train, fit one head per L2 strength, keep the best on validation."""
    mean, std = train[0].mean(0), train[0].std(0) + 1e-6

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((a - mean) / std).astype(np.float32))

    x, y = tensor(train[0]), torch.from_numpy(train[1].astype(np.float32))
    best: ProbeResult | None = None
    for wd in weight_decays:
        head = _fit(x, y, wd, iterations)
        with torch.no_grad():
            score = macro_auroc(val[1], head(tensor(val[0])).numpy())
            if best is None or score > best.val_macro_auroc:
                best = ProbeResult(wd, score, head(tensor(test_x)).numpy())
    assert best is not None
    return best
