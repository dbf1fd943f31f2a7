"""Evaluation of task models and the promotion gate.

Modules: ``cohorts`` (subgroups), ``predict`` (a cohort's records → probabilities), ``compute`` (an
:class:`~components.evaluation.compute.EvaluationReport`, with the metrics and bootstrap of
:mod:`components.metrics`), ``gates`` (policies in schemas/gates and the decision engine), ``plots``,
``report`` (HTML), ``model_card``, ``params`` (``evaluate:``), ``stage``
(:func:`~components.evaluation.stage.evaluate`), ``errors``.
"""
