"""Serving: request validation and preprocessing, batching, HTTP middleware, Bento packaging and pull.

Modules: ``params`` (``serve:`` / ``package:``), ``errors``, ``schemas`` (API request and response
models), ``inputs`` (requests → canonical signals), ``uploads`` (WFDB and ``.npy`` uploads), ``runtime``
(the loaded models: predict, embed, zero-shot), ``routing`` (a family Bento's member for a request's
leads), ``family`` (the members ``package --family`` takes), ``batcher`` (adaptive batching), ``http``
(API key, body limit, error bodies), ``bentostore`` (BentoML model store and home), ``artifacts``
(export/fetch with sha256 over fsspec), ``card`` (model card), ``package``
(:func:`~components.serving.package.package`), ``pull`` (:func:`~components.serving.pull.pull`),
``launch`` (``bentoml serve`` in the background). Nothing is imported here, so
``components.serving.errors`` stays cheap to import.
"""
