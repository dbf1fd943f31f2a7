"""The one home of the metrics every stage reports (NumPy only).

Modules: ``classification`` (AUROC, PR-AUC, F1/sensitivity/specificity, ECE, curves, macro averages; case
weights so a bootstrap round is one weight row), ``bootstrap`` (patient-level resampling weights,
percentile CIs as :class:`~components.metrics.bootstrap.Estimate`, and the case-level
:func:`~components.metrics.bootstrap.bootstrap_ci` the benchmarks use), ``agreement`` (two models' decisions
on the same records: Cohen's kappa, flips per label, probability shift — what shadow evaluation reports).
Nothing is imported here.
"""
