"""One OpenTelemetry server span per request, in place of BentoML's instrumentation of the ASGI app.

BentoML wraps every request in OpenTelemetry's ASGI middleware, which collects a dozen attributes and
starts a span for the request plus one for each ASGI message received and sent — whether or not any
trace is sampled (BentoML's default ``tracing.sample_rate`` is 0). That cost ~20 % of the event loop
under load in ``benchmarks/serving.py``. The service excludes every URL from it
(:data:`EXCLUDE_ALL_URLS`, BentoML's ``tracing.excluded_urls``) and adds :class:`RequestSpanMiddleware`:
the same server span per request, with the W3C trace context of the caller (``traceparent``) as parent,
set as the current span so that log lines — the access log included — carry its trace id, and
BentoML's tracer provider, so ``tracing:`` in the BentoML configuration (sample rate, exporter) applies
unchanged. Attributes are only collected for spans that are sampled.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from components.serving.http import ASGIApp, Message, Receive, Scope, Send, request_header

#: BentoML's ``tracing.excluded_urls`` that turns its per-message ASGI instrumentation off everywhere
EXCLUDE_ALL_URLS = [".*"]
#: request headers the W3C propagators read (trace context and baggage)
PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
TRACER_NAME = "ecgops.serving"


def _bentoml_tracer_provider() -> trace.TracerProvider:
    """The provider BentoML builds from its ``tracing:`` configuration (sampler and exporter)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    provider: trace.TracerProvider = BentoMLContainer.tracer_provider.get()
    return provider


def _set_bentoml_request_id(span: trace.Span) -> None:
    """What BentoML's own instrumentation does per request: the span id becomes the request id its
    service context and log records carry."""
    from bentoml._internal.context import trace_context

    trace_context.request_id = span.get_span_context().span_id


class RequestSpanMiddleware:
    """Runs each HTTP request inside one server span named ``METHOD /path``; a 5xx marks it an error."""

    def __init__(self, app: ASGIApp, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.app = app
        self.tracer = (tracer_provider or _bentoml_tracer_provider()).get_tracer(TRACER_NAME)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): bytes(value).decode("latin-1")
            for key, value in scope.get("headers", ())
            if key.lower() in PROPAGATION_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        method, path = scope.get("method", ""), scope.get("path", "")
        with self.tracer.start_as_current_span(
            f"{method} {path}", context=parent, kind=SpanKind.SERVER, record_exception=False
        ) as span:
            _set_bentoml_request_id(span)
            if span.is_recording():
                span.set_attributes(_request_attributes(scope))

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start" and span.is_recording():
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                await send(message)

            await self.app(scope, receive, traced_send)


def _request_attributes(scope: Scope) -> dict[str, Any]:
    """The HTTP server span attributes of OpenTelemetry's semantic conventions that a request gives."""
    attributes: dict[str, Any] = {
        "http.request.method": scope.get("method", ""),
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", ""),
    }
    if query := scope.get("query_string"):
        attributes["url.query"] = bytes(query).decode("latin-1")
    if server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    if user_agent := request_header(scope, b"user-agent"):
        attributes["user_agent.original"] = user_agent
    return attributes
