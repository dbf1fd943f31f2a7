"""The prediction log: every served, batch and shadow prediction, appended to date-partitioned Parquet
files in a local folder or any fsspec URL, and read back for ``ecgops predictions`` and monitoring.

Modules: ``entry`` (:class:`~components.predictions.entry.PredictionEntry`, what one prediction leaves:
never the signal, never a patient identifier), ``table`` (entries as Arrow tables and back), ``log``
(:class:`~components.predictions.log.PredictionLog`: append, read with skipped parts reported, prune),
``writer`` (:class:`~components.predictions.writer.BackgroundWriter`: off the request path, retried,
spooled at shutdown), ``spool`` (the local folder of parts the log refused at shutdown), ``params``
(``prediction_log:``), ``when`` (``--since`` values), ``errors``. Nothing is imported here, so
``components.predictions.params`` and ``errors`` stay cheap to import.
"""
