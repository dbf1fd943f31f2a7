"""Drift monitoring: a window of production traffic against the data the production model was trained on.

Modules: ``policy`` (``schemas/monitoring/<name>.yaml``), ``drift`` (the two-sample tests and the
assessment), ``report`` (HTML with plots), ``gauges`` (Prometheus text format), ``errors``. Pure
functions over arrays and data frames: reading the prediction log and the store is the caller's part.
"""
