"""The ecgops BentoML service: one gated task model and its foundation model behind an HTTP API.

Built into a Bento by ``ecgops package`` (components/serving/package.py), which passes the BentoML
model tags and the ``serve:`` parameters as Bento arguments and writes ``model_card.json`` next to
this file. Everything but the wiring lives in :mod:`components.serving`; preprocessing is the
training code (:mod:`components.io.canonical`).

Endpoints: ``POST /predict`` (JSON), ``/predict_wfdb`` (WFDB upload), ``/predict_npy`` (``.npy``
upload), ``/embed``, ``/zero_shot``, ``/model_card``; ``GET /livez``, ``/readyz``, ``/metrics``,
``/docs.json`` (OpenAPI).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import bentoml
import numpy as np
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from components.config import get_settings
from components.serving.batcher import AdaptiveBatcher, OverloadedError
from components.serving.errors import RequestError
from components.serving.http import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ClientErrorLogFilter,
    ErrorBodyMiddleware,
    OpenApiAccessMiddleware,
    error_body,
)
from components.serving.inputs import InputSpec, PreparedInput, prepare_input
from components.serving.logs import access_log_in_background
from components.serving.params import ServeParams
from components.serving.runtime import ModelRuntime
from components.serving.schemas import (
    EmbedResponse,
    InputSummary,
    ModelCard,
    PredictResponse,
    SignalRequest,
    ZeroShotRequest,
    ZeroShotResponse,
)
from components.serving.tracing import EXCLUDE_ALL_URLS, RequestSpanMiddleware
from components.serving.uploads import read_npy_upload, read_wfdb_upload


class BentoArguments(BaseModel):
    """What ``ecgops package`` bakes into the Bento (``bentoml serve --arg`` can override for development)."""

    task_model: str = Field(description="BentoML model tag of the task model")
    foundation_model: str = Field(description="BentoML model tag of its foundation model")
    serve: dict[str, Any] = Field(default_factory=dict, description="the serve: section of params.yaml")


ARGS = bentoml.use_arguments(BentoArguments)
SERVE = ServeParams.model_validate(ARGS.serve)
CARD = ModelCard.model_validate_json((Path(__file__).parent / "model_card.json").read_text())
API_KEY = get_settings().resolved_api_key

R = TypeVar("R")


def client_errors(func: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """A :class:`RequestError` becomes its 4xx JSON response; an overloaded model a 503."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except RequestError as exc:
            return _json_error(exc.status, exc.message)
        except OverloadedError as exc:
            return _json_error(503, str(exc))

    # BentoML reads the endpoint's signature on every call; computed once here instead of per request
    wrapper.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return wrapper


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(json.loads(error_body(message)), status_code=status)


@bentoml.service(
    name="ecgops",
    description=f"ecgops ECG service for task {CARD.model.task} ({CARD.model.ref})",
    workers=SERVE.workers,
    traffic={"timeout": SERVE.timeout_s},
    logging={"access": {"enabled": SERVE.access_log}},
    tracing={"excluded_urls": EXCLUDE_ALL_URLS},  # RequestSpanMiddleware traces instead: one span a request
    labels={"task": CARD.model.task, "model": CARD.model.ref},
)
class EcgService:
    """Predicts the task's labels, embeds ECGs and scores free-text prompts."""

    task_model = bentoml.models.BentoModel(ARGS.task_model)
    foundation_model = bentoml.models.BentoModel(ARGS.foundation_model)

    def __init__(self) -> None:
        import prometheus_client
        import torch

        torch.set_num_threads(SERVE.torch_threads or len(os.sched_getaffinity(0)))
        sys.setswitchinterval(SERVE.gil_switch_interval_ms / 1000)
        self.runtime = ModelRuntime(
            Path(self.task_model.path), Path(self.foundation_model.path), forward=SERVE.forward
        )
        self.runtime.warm_up()
        self.access_log = access_log_in_background() if SERVE.access_log else None
        gc.collect()
        gc.freeze()  # the models and libraries stay out of the collector's scans (which stalled requests)
        self.card = CARD
        self.batch_size = prometheus_client.Histogram(
            "ecgops_batch_size",
            "Records per batched forward of the task model",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.forward_seconds = prometheus_client.Histogram(
            "ecgops_forward_seconds", "Seconds per batched forward of the task model"
        )
        self.positives = prometheus_client.Counter(
            "ecgops_positive_decisions", "Predictions at or above the stored threshold", ["label"]
        )
        self.positives_by_label = {label: self.positives.labels(label=label) for label in self.runtime.labels}
        self.batcher = AdaptiveBatcher(
            self.runtime.predict_batch,
            max_batch_size=SERVE.max_batch_size,
            wait_ms=SERVE.batch_wait_ms,
            max_queue=SERVE.max_queue,
            observe=self._observe_batch,
        )

    def _observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.forward_seconds.observe(seconds)

    @bentoml.on_shutdown
    def _stop(self) -> None:
        self.batcher.close()
        if self.access_log is not None:
            self.access_log.stop()

    # ------------------------------------------------------------------ task predictions

    @bentoml.api
    @client_errors
    async def predict(self, request: SignalRequest, /) -> PredictResponse:
        """Per-label probabilities and decisions for one ECG sent as JSON (leads × samples, any rate,
        any lead subset the task allows)."""
        prepared = prepare_input(
            request.signal, request.fs, request.leads, request.units, self.runtime.task_spec, SERVE
        )
        return await self._predict(prepared)

    @bentoml.api
    @client_errors
    async def predict_wfdb(self, header: Path, signals: list[Path]) -> PredictResponse:
        """The same for an uploaded WFDB record: its ``.hea`` header and the signal file(s) it names
        (``.dat``, ``.mat``) as multipart form fields ``header`` and ``signals``."""
        record = read_wfdb_upload(header.read_bytes(), [(p.name, p.read_bytes()) for p in signals])
        prepared = prepare_input(
            record.signal,
            record.fs,
            record.names,
            record.units,
            self.runtime.task_spec,
            SERVE,
            other_channels=True,
        )
        return await self._predict(prepared)

    @bentoml.api
    @client_errors
    async def predict_npy(
        self, array: Path, fs: float, leads: list[str], units: str = "mV"
    ) -> PredictResponse:
        """The same for an uploaded ``.npy`` array (leads × samples) with its rate and lead names as
        multipart form fields."""
        signal = read_npy_upload(array.read_bytes())
        prepared = prepare_input(signal, fs, leads, units, self.runtime.task_spec, SERVE)
        return await self._predict(prepared)

    async def _predict(self, prepared: PreparedInput) -> PredictResponse:
        canonical = prepared.canonical
        proba = await self.batcher.submit(canonical.signal, canonical.lead_mask)
        labels, thresholds = self.runtime.labels, self.runtime.thresholds
        decisions = proba >= thresholds
        for label, positive in zip(labels, decisions, strict=True):
            if positive:
                self.positives_by_label[label].inc()
        return PredictResponse(
            labels=labels,
            probabilities={k: float(v) for k, v in zip(labels, proba, strict=True)},
            decisions={k: bool(v) for k, v in zip(labels, decisions, strict=True)},
            thresholds={k: float(v) for k, v in zip(labels, thresholds, strict=True)},
            positive_labels=[k for k, v in zip(labels, decisions, strict=True) if v],
            model=self.card.model,
            input=_summary(prepared, self.runtime.task_spec),
        )

    # ------------------------------------------------------------------ foundation model

    @bentoml.api
    @client_errors
    async def embed(self, request: SignalRequest, /) -> EmbedResponse:
        """The foundation model's unit-norm embedding of one ECG (JSON as for /predict)."""
        spec = self.runtime.foundation_spec
        prepared = prepare_input(request.signal, request.fs, request.leads, request.units, spec, SERVE)
        canonical = prepared.canonical
        vector = await asyncio.to_thread(self.runtime.embed, canonical.signal, canonical.lead_mask)
        return EmbedResponse(
            embedding=[float(v) for v in vector],
            dim=int(vector.shape[0]),
            foundation=self.card.model.foundation,
            input=_summary(prepared, spec),
        )

    @bentoml.api
    @client_errors
    async def zero_shot(self, request: ZeroShotRequest, /) -> ZeroShotResponse:
        """Scores of one ECG against free-text label prompts (JSON as for /predict plus ``prompts``);
        offered only where the foundation model's recipe learned a text space (404 otherwise)."""
        if not self.runtime.foundation.has_text_space:
            raise RequestError(
                "zero-shot is not offered: this model's foundation learned no text space (its pretraining "
                "recipe uses no reports); use /predict or /embed",
                status=404,
            )
        prompts = _check_prompts(request.prompts)
        spec = self.runtime.foundation_spec
        prepared = prepare_input(request.signal, request.fs, request.leads, request.units, spec, SERVE)
        canonical = prepared.canonical
        similarity, probability = await asyncio.to_thread(
            self.runtime.zero_shot, canonical.signal, canonical.lead_mask, prompts
        )
        return ZeroShotResponse(
            prompts=prompts,
            similarities=[float(v) for v in similarity],
            probabilities=[float(v) for v in probability],
            best=prompts[int(np.argmax(similarity))],
            foundation=self.card.model.foundation,
            input=_summary(prepared, spec),
        )

    # ------------------------------------------------------------------ metadata

    @bentoml.api
    async def model_card(self) -> ModelCard:
        """Model, training data version, labels, thresholds, leads, gate decision and metrics."""
        return self.card


def _check_prompts(prompts: list[str]) -> list[str]:
    cleaned = [p.strip() for p in prompts]
    if len(cleaned) > SERVE.max_prompts:
        raise RequestError(f"{len(cleaned)} prompts; at most {SERVE.max_prompts} are accepted per request")
    for i, prompt in enumerate(cleaned):
        if not prompt:
            raise RequestError(f"prompt {i} is empty")
        if len(prompt) > SERVE.max_prompt_chars:
            raise RequestError(
                f"prompt {i} has {len(prompt)} characters; the limit is {SERVE.max_prompt_chars}"
            )
    return cleaned


def _summary(prepared: PreparedInput, spec: InputSpec) -> InputSummary:
    return InputSummary(
        fs=prepared.fs,
        n_samples=prepared.n_samples,
        model_fs=spec.fs,
        model_samples=spec.n_samples,
        leads_present=list(prepared.leads_present),
        leads_used=list(prepared.leads_used),
    )


logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorLogFilter())
EcgService.add_asgi_middleware(RequestSpanMiddleware)
EcgService.add_asgi_middleware(ApiKeyMiddleware, api_key=API_KEY)
EcgService.add_asgi_middleware(
    BodyLimitMiddleware,
    max_bytes=SERVE.max_body_bytes,
    file_fields={api.route: api.input_spec.multipart_fields for api in EcgService.apis.values()},
)
EcgService.add_asgi_middleware(
    OpenApiAccessMiddleware, api_key=bool(API_KEY), max_body_bytes=SERVE.max_body_bytes
)
EcgService.add_asgi_middleware(ErrorBodyMiddleware)
