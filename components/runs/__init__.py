"""The life of a training run and the policies around it, whatever runs it (the CLI, a Prefect flow or a
``dvc.yaml`` stage):

- :mod:`~components.runs.folder`: a run's folder (``run.json`` as a typed state, the last checkpoint);
- :mod:`~components.runs.trainer`: the one Lightning ``Trainer`` factory;
- :mod:`~components.runs.lifecycle`: the options every training run takes, and recording its failure;
- :mod:`~components.runs.resume`: the one resume decision (continue an interrupted run, or start afresh);
- :mod:`~components.runs.foundation`: whether to pretrain, resume pretraining or reuse a foundation model;
- :mod:`~components.runs.lock`: one retraining run per workspace;
- :mod:`~components.runs.params`: the ``orchestration:`` and ``compute:`` sections of params.yaml.

Nothing here imports Prefect or DVC.
"""
