"""Tasks as data, the floor that fine-tuning and evaluation both stand on.

Modules: ``spec`` (schemas/tasks/*.yaml → :class:`~components.tasks.spec.TaskSpec`), ``vocab`` (label
vocabularies), ``mapping`` (SCP↔SNOMED), ``labels`` (a task's records and targets from the manifest),
``predict`` (a task model's probabilities for store rows), ``errors``. Nothing is imported here, so
``components.tasks.errors`` stays cheap to import.
"""
