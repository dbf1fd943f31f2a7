"""Task fine-tuning: patient-level label fractions, Lightning fine-tuning, thresholds.

Modules: ``sampling`` (label fractions), ``params`` (``finetune:``), ``data`` (DataModule), ``module``
(LightningModule), ``thresholds``, ``foundation`` (which foundation model to start from), ``stage``
(:func:`~components.finetune.stage.finetune`), ``errors``. Tasks, labels and predictions over store rows
are :mod:`components.tasks`, shared with evaluation. Nothing is imported here, so
``components.finetune.errors`` stays cheap to import.
"""
