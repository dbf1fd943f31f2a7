"""The ecgops BentoML service: a gated task model (or a task family) and its foundation model behind HTTP.

Built into a Bento by ``ecgops package`` (components/serving/package.py), which passes the BentoML
model tags and the ``serve:`` and ``windows:`` parameters as Bento arguments and writes
``model_card.json`` next to this file. A family Bento holds several task models of one task family and
routes each request to the one that suits the leads it carries (:mod:`components.serving.routing`).
Records longer than a model's input are read in windows whose probabilities are aggregated
(:mod:`components.tasks.windows`). Everything but the wiring lives in :mod:`components.serving`;
preprocessing is the training code (:mod:`components.io.canonical`).

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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import bentoml
import numpy as np
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from components.config import get_settings
from components.predictions.params import PredictionLogParams
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
from components.serving.inputs import (
    InputSpec,
    PreparedInput,
    ReceivedSignal,
    fit_input,
    prepare_input,
    receive_signal,
)
from components.serving.logs import access_log_in_background
from components.serving.params import ServeParams
from components.serving.prediction_log import ServedPrediction, served_log_writer
from components.serving.routing import route
from components.serving.runtime import FoundationRuntime, ModelRuntime, combine_windows
from components.serving.schemas import (
    EmbedResponse,
    InputSummary,
    ModelCard,
    ModelIdentity,
    Origin,
    PredictResponse,
    SignalRequest,
    ZeroShotRequest,
    ZeroShotResponse,
)
from components.serving.tracing import EXCLUDE_ALL_URLS, RequestSpanMiddleware
from components.serving.uploads import read_npy_upload, read_wfdb_upload
from components.tasks.windows import WindowParams


class BentoArguments(BaseModel):
    """What ``ecgops package`` bakes into the Bento (``bentoml serve --arg`` can override for development)."""

    task_model: str = Field(description="BentoML model tag of the task model (a family's base)")
    foundation_model: str = Field(description="BentoML model tag of its foundation model")
    members: list[str] = Field(
        default_factory=list, description="BentoML model tags of a family's other task models, family order"
    )
    serve: dict[str, Any] = Field(default_factory=dict, description="the serve: section of params.yaml")
    windows: dict[str, Any] = Field(default_factory=dict, description="the windows: section of params.yaml")
    prediction_log: dict[str, Any] = Field(
        default_factory=dict,
        description="the prediction_log: section (ECGOPS_PREDICTION_LOG overrides its url)",
    )


ARGS = bentoml.use_arguments(BentoArguments)
SERVE = ServeParams.model_validate(ARGS.serve)
WINDOWS = WindowParams.model_validate(ARGS.windows)
LOG = PredictionLogParams.model_validate(ARGS.prediction_log)
CARD = ModelCard.model_validate_json((Path(__file__).parent / "model_card.json").read_text())
API_KEY = get_settings().resolved_api_key

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class _Member:
    """One task model the Bento serves, with its own forward thread: runtime, batcher, identity, counters."""

    runtime: ModelRuntime
    batcher: AdaptiveBatcher
    identity: ModelIdentity
    positives: dict[str, Any]  # label -> its ecgops_positive_decisions counter


@dataclass(frozen=True)
class _Prediction:
    """One answered record: its prepared input, its probabilities (its windows' aggregated) and pooled
    features (its windows' averaged), and the member that answered."""

    prepared: PreparedInput
    probabilities: np.ndarray  # (n_labels,)
    features: np.ndarray  # (width,)
    member: _Member
    origin: Origin


def _with_member_models(cls: type[T]) -> type[T]:
    """A class attribute per family member's task model: BentoML finds a service's models (to pack them
    into the Bento) among its class attributes only."""
    for i, tag in enumerate(ARGS.members):
        setattr(cls, f"member_model_{i}", bentoml.models.BentoModel(tag))
    return cls


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
    description=f"ecgops ECG service for task {CARD.model.task} ({CARD.model.ref})"
    + "".join(f", {card.model.task} ({card.model.ref})" for card in CARD.family),
    workers=SERVE.workers,
    traffic={"timeout": SERVE.timeout_s},
    logging={"access": {"enabled": SERVE.access_log}},
    tracing={"excluded_urls": EXCLUDE_ALL_URLS},  # RequestSpanMiddleware traces instead: one span a request
    labels={"task": CARD.model.task, "model": CARD.model.ref},
)
@_with_member_models
class EcgService:
    """Predicts the task's labels, embeds ECGs and scores free-text prompts."""

    task_model = bentoml.models.BentoModel(ARGS.task_model)
    foundation_model = bentoml.models.BentoModel(ARGS.foundation_model)

    def __init__(self) -> None:
        import prometheus_client
        import torch

        torch.set_num_threads(SERVE.torch_threads or len(os.sched_getaffinity(0)))
        sys.setswitchinterval(SERVE.gil_switch_interval_ms / 1000)
        self.batch_size = prometheus_client.Histogram(
            "ecgops_batch_size",
            "Records (windows) per batched forward of a task model",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.forward_seconds = prometheus_client.Histogram(
            "ecgops_forward_seconds", "Seconds per batched forward of a task model"
        )
        self.positives = prometheus_client.Counter(
            "ecgops_positive_decisions", "Predictions at or above the stored threshold", ["task", "label"]
        )
        paths = [self.task_model.path] + [
            getattr(self, f"member_model_{i}").path for i in range(len(ARGS.members))
        ]
        self.members = [self._member(Path(path)) for path in paths]
        self.specs = [member.runtime.task_spec for member in self.members]
        self.foundation = FoundationRuntime(Path(self.foundation_model.path))
        self.foundation.warm_up()
        self.access_log = access_log_in_background() if SERVE.access_log else None
        self.log_failures = prometheus_client.Counter(
            "ecgops_prediction_log_failures", "Appends to the prediction log that failed (and are retried)"
        )
        self.prediction_log = served_log_writer(get_settings(), LOG, lambda _: self.log_failures.inc())
        pending = prometheus_client.Gauge(
            "ecgops_prediction_log_pending", "Answered predictions not yet in the prediction log"
        )
        pending.set_function(lambda: self.prediction_log.stats().pending)
        dropped = prometheus_client.Gauge(
            "ecgops_prediction_log_dropped", "Predictions dropped while the log was unreachable for long"
        )
        dropped.set_function(lambda: self.prediction_log.stats().dropped)
        gc.collect()
        gc.freeze()  # the models and libraries stay out of the collector's scans (which stalled requests)
        self.card = CARD

    def _member(self, task_dir: Path) -> _Member:
        """A task model loaded, traced and warmed up, with its own batcher (forward thread)."""
        runtime = ModelRuntime(task_dir, forward=SERVE.forward)
        runtime.warm_up()
        task = runtime.task.cfg.task
        card = next(c for c in (CARD, *CARD.family) if c.model.task == task)
        batcher = AdaptiveBatcher(
            runtime.predict_batch,
            max_batch_size=SERVE.max_batch_size,
            wait_ms=SERVE.batch_wait_ms,
            max_queue=SERVE.max_queue,
            observe=self._observe_batch,
        )
        positives = {label: self.positives.labels(task=task, label=label) for label in runtime.labels}
        return _Member(runtime, batcher, card.model, positives)

    def _observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.forward_seconds.observe(seconds)

    @bentoml.on_shutdown
    def _stop(self) -> None:
        for member in self.members:
            member.batcher.close()
        self.prediction_log.close()  # every answered prediction reaches the log (or its spool)
        if self.access_log is not None:
            self.access_log.stop()

    # ------------------------------------------------------------------ task predictions

    @bentoml.api
    @client_errors
    async def predict(self, request: SignalRequest, /) -> PredictResponse:
        """Per-label probabilities and decisions for one ECG sent as JSON (leads × samples, any rate,
        any lead subset a task model of the Bento reads; a record longer than the model's input is read
        in windows whose probabilities are aggregated)."""
        received = receive_signal(request.signal, request.fs, request.leads, request.units)
        return await self._predict(received, Origin(site=request.site, device=request.device))

    @bentoml.api
    @client_errors
    async def predict_wfdb(
        self, header: Path, signals: list[Path], site: str | None = None, device: str | None = None
    ) -> PredictResponse:
        """The same for an uploaded WFDB record: its ``.hea`` header and the signal file(s) it names
        (``.dat``, ``.mat``) as multipart form fields ``header`` and ``signals``."""
        record = read_wfdb_upload(header.read_bytes(), [(p.name, p.read_bytes()) for p in signals])
        received = receive_signal(record.signal, record.fs, record.names, record.units, other_channels=True)
        return await self._predict(received, Origin.checked(site, device))

    @bentoml.api
    @client_errors
    async def predict_npy(
        self,
        array: Path,
        fs: float,
        leads: list[str],
        units: str = "mV",
        site: str | None = None,
        device: str | None = None,
    ) -> PredictResponse:
        """The same for an uploaded ``.npy`` array (leads × samples) with its rate and lead names as
        multipart form fields."""
        signal = read_npy_upload(array.read_bytes())
        return await self._predict(receive_signal(signal, fs, leads, units), Origin.checked(site, device))

    async def _predict(self, received: ReceivedSignal, origin: Origin) -> PredictResponse:
        """What every predict endpoint runs: the member chosen by the leads present, the record's windows
        through its batcher, their probabilities aggregated and features averaged, then the response."""
        member = self.members[route(self.specs, received.leads_present)]
        prepared = fit_input(received, member.runtime.task_spec, SERVE, WINDOWS)
        rows = await member.batcher.submit_many(list(prepared.windows), prepared.canonical.lead_mask)
        probabilities, features = combine_windows(rows, WINDOWS.aggregate)
        return self._respond(_Prediction(prepared, probabilities, features, member, origin))

    def _respond(self, prediction: _Prediction) -> PredictResponse:
        """The response to an answered record (the one place a prediction leaves the service)."""
        member, proba = prediction.member, prediction.probabilities
        labels, thresholds = member.runtime.labels, member.runtime.thresholds
        decisions = proba >= thresholds
        for label, positive in zip(labels, decisions, strict=True):
            if positive:
                member.positives[label].inc()
        request_id = uuid.uuid4().hex
        self.prediction_log.submit(_served(prediction, request_id, decisions))
        return PredictResponse(
            request_id=request_id,
            labels=labels,
            probabilities={k: float(v) for k, v in zip(labels, proba, strict=True)},
            decisions={k: bool(v) for k, v in zip(labels, decisions, strict=True)},
            thresholds={k: float(v) for k, v in zip(labels, thresholds, strict=True)},
            positive_labels=[k for k, v in zip(labels, decisions, strict=True) if v],
            model=member.identity,
            input=_summary(prediction.prepared, member.runtime.task_spec, member.identity.task),
        )

    # ------------------------------------------------------------------ foundation model

    @bentoml.api
    @client_errors
    async def embed(self, request: SignalRequest, /) -> EmbedResponse:
        """The foundation model's unit-norm embedding of one ECG (JSON as for /predict); a record longer
        than the foundation model's input is read in its first window."""
        spec = self.foundation.spec
        prepared = prepare_input(request.signal, request.fs, request.leads, request.units, spec, SERVE)
        canonical = prepared.canonical
        vector = await asyncio.to_thread(self.foundation.embed, canonical.signal, canonical.lead_mask)
        return EmbedResponse(
            embedding=[float(v) for v in vector],
            dim=int(vector.shape[0]),
            foundation=self.card.model.foundation,
            input=_summary(prepared, spec, self.card.model.foundation),
        )

    @bentoml.api
    @client_errors
    async def zero_shot(self, request: ZeroShotRequest, /) -> ZeroShotResponse:
        """Scores of one ECG against free-text label prompts (JSON as for /predict plus ``prompts``);
        offered only where the foundation model's recipe learned a text space (404 otherwise); a long
        record is read in its first window, as by /embed."""
        if not self.foundation.has_text_space:
            raise RequestError(
                "zero-shot is not offered: this model's foundation learned no text space (its pretraining "
                "recipe uses no reports); use /predict or /embed",
                status=404,
            )
        prompts = _check_prompts(request.prompts)
        spec = self.foundation.spec
        prepared = prepare_input(request.signal, request.fs, request.leads, request.units, spec, SERVE)
        canonical = prepared.canonical
        similarity, probability = await asyncio.to_thread(
            self.foundation.zero_shot, canonical.signal, canonical.lead_mask, prompts
        )
        return ZeroShotResponse(
            prompts=prompts,
            similarities=[float(v) for v in similarity],
            probabilities=[float(v) for v in probability],
            best=prompts[int(np.argmax(similarity))],
            foundation=self.card.model.foundation,
            input=_summary(prepared, spec, self.card.model.foundation),
        )

    # ------------------------------------------------------------------ metadata

    @bentoml.api
    async def model_card(self) -> ModelCard:
        """Model, training data version, labels, thresholds, leads, gate decision and metrics; for a family
        Bento, the card of each other task model it serves in ``family``."""
        return self.card


def _served(prediction: _Prediction, request_id: str, decisions: np.ndarray) -> ServedPrediction:
    """What the prediction log keeps of an answered request (its signal only until measured)."""
    prepared, runtime = prediction.prepared, prediction.member.runtime
    return ServedPrediction(
        at=datetime.now(UTC),
        request_id=request_id,
        model=prediction.member.identity,
        input_hash=prepared.canonical.content_hash,
        site=prediction.origin.site,
        device=prediction.origin.device,
        n_windows=prepared.n_windows,
        leads_used=prepared.leads_used,
        window=prepared.windows[0].copy(),  # not a view: the queue must not keep every window alive
        lead_mask=prepared.canonical.lead_mask,
        n_valid=min(prepared.canonical.n_valid_samples, runtime.task_spec.n_samples),
        fs=runtime.task_spec.fs,
        labels=tuple(runtime.labels),
        probabilities=prediction.probabilities,
        decisions=decisions,
        features=prediction.features,
    )


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


def _summary(prepared: PreparedInput, spec: InputSpec, routed_to: str) -> InputSummary:
    return InputSummary(
        fs=prepared.fs,
        n_samples=prepared.n_samples,
        model_fs=spec.fs,
        model_samples=spec.n_samples,
        n_windows=prepared.n_windows,
        routed_to=routed_to,
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
