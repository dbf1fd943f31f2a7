"""One server span per request (components/serving/tracing.py), with OpenTelemetry's SDK exporting to
memory: what the served API's traces and log correlation rest on."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from components.serving.tracing import RequestSpanMiddleware

#: a W3C trace context header of a caller (trace id, parent span id, sampled)
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


async def current_span(_: Request) -> Response:
    """What the app sees while it runs: the current span and BentoML's request id."""
    from bentoml._internal.context import trace_context

    context = trace.get_current_span().get_span_context()
    return JSONResponse(
        {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
            "request_id": format(trace_context.request_id or 0, "016x"),
        }
    )


async def fails(_: Request) -> Response:
    return JSONResponse({"error": "boom"}, status_code=503)


async def bad_request(_: Request) -> Response:
    return JSONResponse({"error": "no"}, status_code=400)


def _traced(sampler: Sampler) -> tuple[TestClient, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Starlette(
        routes=[
            Route("/predict", current_span, methods=["POST"]),
            Route("/fails", fails),
            Route("/bad", bad_request),
        ],
        middleware=[Middleware(RequestSpanMiddleware, tracer_provider=provider)],
    )
    return TestClient(app), exporter


def test_each_request_is_one_server_span_that_the_app_runs_in() -> None:
    client, exporter = _traced(ALWAYS_ON)
    seen = client.post("/predict?verbose=1", json={}).json()
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /predict"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == seen["trace_id"]
    assert format(span.context.span_id, "016x") == seen["span_id"] == seen["request_id"]
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["url.path"] == "/predict"
    assert attributes["url.query"] == "verbose=1"
    assert attributes["http.response.status_code"] == 200
    assert attributes["user_agent.original"] == "testclient"
    assert span.status.status_code is StatusCode.UNSET


def test_a_callers_trace_context_is_the_parent() -> None:
    client, exporter = _traced(ALWAYS_ON)
    seen = client.post("/predict", json={}, headers={"traceparent": TRACEPARENT}).json()
    (span,) = exporter.get_finished_spans()
    assert seen["trace_id"] == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN
    assert span.parent.is_remote


def test_server_errors_mark_the_span_and_client_errors_do_not() -> None:
    client, exporter = _traced(ALWAYS_ON)
    assert client.get("/fails").status_code == 503
    assert client.get("/bad").status_code == 400
    failed, refused = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["http.response.status_code"] == 503
    assert refused.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("traceparent", [None, TRACEPARENT])
def test_unsampled_requests_export_nothing_but_still_carry_a_trace_id(traceparent: str | None) -> None:
    """BentoML's default sample rate is 0: log lines still get a trace id to correlate them by."""
    client, exporter = _traced(ALWAYS_OFF)
    headers = {"traceparent": traceparent.replace("-01", "-00")} if traceparent else {}
    first = client.post("/predict", json={}, headers=headers).json()
    second = client.post("/predict", json={}).json()
    assert exporter.get_finished_spans() == ()
    assert int(first["trace_id"], 16) != 0 and int(first["span_id"], 16) != 0
    assert first["trace_id"] != second["trace_id"]
    if traceparent:
        assert first["trace_id"] == CALLER_TRACE
