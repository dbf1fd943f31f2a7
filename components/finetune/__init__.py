"""Task fine-tuning: tasks as data, labels, patient-level label fractions, Lightning fine-tuning, thresholds.

Modules: ``tasks`` (schemas/tasks/*.yaml), ``mapping`` (SCP↔SNOMED), ``labels`` (targets from the
manifest), ``sampling`` (label fractions), ``params`` (``finetune:``), ``data`` (DataModule), ``module``
(LightningModule), ``thresholds``, ``stage`` (:func:`~components.finetune.stage.finetune`), ``errors``.
Nothing is imported here, so ``components.finetune.errors`` stays cheap to import.
"""
