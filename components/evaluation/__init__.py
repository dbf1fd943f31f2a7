"""Evaluation of task models and the promotion gate.

Modules: ``metrics`` (weighted AUROC, PR-AUC, F1/sensitivity/specificity, ECE), ``bootstrap``
(patient-level resampling, CIs, paired differences), ``cohorts`` (subgroups), ``predict`` (records →
probabilities), ``compute`` (an :class:`~components.evaluation.compute.EvaluationReport`), ``gates``
(policies in schemas/gates and the decision engine), ``plots``, ``report`` (HTML), ``model_card``,
``params`` (``evaluate:``), ``stage`` (:func:`~components.evaluation.stage.evaluate`), ``errors``.
"""
