"""Orchestration of the stages under Prefect: cache keys, the workspace lock, the foundation-model reuse
policy, resume, task runners (threads or a Dask cluster), the Prefect API, the run summary.

This is the only package of :mod:`components` that knows about Prefect; the stage functions it calls
(ingest, validate, version, pretrain, ...) do not. Nothing heavy is imported here.
"""
