"""Prefect flows: one per stage (``flows.data``: ingest, validate, version; ``flows.training``: pretrain,
finetune; ``flows.release``: evaluate, package, promote), composed into ``flows.retrain.retrain``.

They are thin: the work is in :mod:`components`, the orchestration (cache keys, the workspace lock,
reuse and resume, task runners, the run summary) in :mod:`components.orchestration`.
"""
