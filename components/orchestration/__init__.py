"""Orchestration of the stages under Prefect: cache keys, retries, task runners (threads or a Dask
cluster), the Prefect API, the schedule, the run summary.

This is the only package of :mod:`components` that knows about Prefect; the stage functions it calls
(ingest, validate, version, pretrain, ...) do not, and the policies the flows apply (lock, foundation reuse,
resume) are in :mod:`components.runs`. Nothing heavy is imported here.
"""
