"""Signal-language pretraining with Lightning.

Modules: ``stage`` (:func:`~components.training.stage.pretrain`, the stage function), ``params`` (the
``pretrain:`` section), ``data`` (DataModule over the store), ``module`` (LightningModule), ``augment``,
``objectives``, ``sampler``, ``reports``, ``evaluate`` (zero-shot, retrieval), ``probe``,
``errors``. Nothing is imported here, so ``components.training.errors`` stays cheap to import.
"""
