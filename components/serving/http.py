"""ASGI middleware of the served API: API key, body limit, well-formed uploads, uniform error bodies.

Every error response is JSON ``{"error": "...", "detail": "..."}`` — the schema BentoML's OpenAPI
documents for 4xx/5xx — with a message that says what is wrong (pydantic's per-field errors are spelled
out as ``signal[0][3]: Input should be a valid number``). The OpenAPI document itself gains the
API-key security scheme and the 401/413 responses.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: probes stay open: orchestrators call them without credentials
HEALTH_PATHS = frozenset({"/livez", "/healthz", "/readyz"})
API_KEY_HEADER = "x-api-key"
OPENAPI_PATH = "/docs.json"
#: field errors spelled out in an error message (a 1-D signal fails once per sample)
MAX_LISTED = 3


def error_body(error: str, detail: str = "") -> bytes:
    """The JSON error body every failing request gets."""
    return json.dumps({"error": error, "detail": detail}).encode()


async def send_error(
    send: Send, status: int, error: str, detail: str = "", headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = error_body(error, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def buffered_response(
    send: Send, wanted: Callable[[Message], bool], finish: Callable[[Message, bytes], Awaitable[None]]
) -> Send:
    """A ``send`` that passes responses on, except those whose ``http.response.start`` message
    ``wanted`` accepts: their start is held and their body collected, then ``finish(start, body)``
    answers in their place once the body is complete."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and wanted(message):
            start = message
            return
        if start is None:
            await send(message)
            return
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await finish(start, b"".join(chunks))

    return capture


class ApiKeyMiddleware:
    """401 for every request without the API key (``X-API-Key: K`` or ``Authorization: Bearer K``),
    except the health probes. No key configured: everything is open."""

    def __init__(self, app: ASGIApp, api_key: str | None, open_paths: Collection[str] = HEALTH_PATHS) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api_key is None or scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = request_header(scope, API_KEY_HEADER.encode())
        if given is None:
            authorization = request_header(scope, b"authorization") or ""
            scheme, _, token = authorization.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if given is not None and hmac.compare_digest(given.encode(), self.api_key):
            await self.app(scope, receive, send)
            return
        problem = "missing API key" if given is None else "wrong API key"
        await send_error(
            send,
            401,
            f"{problem}: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
            "every endpoint except /livez, /healthz and /readyz needs the key the server was started with "
            "(ECGOPS_API_KEY)",
            headers=[(b"www-authenticate", b'Bearer realm="ecgops"')],
        )


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes`` (declared or streamed); 400 for malformed uploads.

    The body is read here (it is bounded by the limit) and handed on in one piece, so the limit holds
    for chunked uploads too. On routes with file fields (``file_fields``: route → field names) the body
    must be well-formed ``multipart/form-data`` whose file fields are file parts: BentoML would
    otherwise take a plain text value as a URL and download it.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, file_fields: Mapping[str, Collection[str]] | None = None
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.file_fields = {
            route: frozenset(fields) for route, fields in (file_fields or {}).items() if fields
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = request_header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = await upload_problem(scope, body, self.file_fields.get(scope.get("path", "")))
        if problem is not None:
            await send_error(send, 400, problem)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, size: int) -> None:
        await send_error(
            send,
            413,
            f"request body too large: {size} bytes; the limit is {self.max_bytes} bytes",
            "send a shorter recording, a lower sampling rate, or a binary .npy/WFDB upload",
        )


async def upload_problem(scope: Scope, body: bytes, file_fields: Collection[str] | None) -> str | None:
    """What is wrong with a form body (malformed multipart, a file field sent as text), or None."""
    from starlette.datastructures import Headers, UploadFile
    from starlette.formparsers import MultiPartParser

    content_type = (request_header(scope, b"content-type") or "").lower()
    is_multipart = content_type.startswith("multipart/form-data")
    if file_fields and content_type.startswith("application/x-www-form-urlencoded"):
        return "uploads must be sent as multipart/form-data, not application/x-www-form-urlencoded"
    if not is_multipart:
        return None

    async def stream() -> Any:
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except Exception as exc:
        reason = str(getattr(exc, "message", "") or exc) or type(exc).__name__
        return f"malformed multipart/form-data body: {reason}"
    try:
        for name in sorted(file_fields or ()):
            if any(not isinstance(value, UploadFile) for value in form.getlist(name)):
                return f"form field {name!r} must be a file part (with a filename), not a text value"
    finally:
        await form.close()
    return None


class ErrorBodyMiddleware:
    """Rewrites every error response (status ≥ 400) into ``{"error": str, "detail": str}`` JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def normalized(start: Message, body: bytes) -> None:
            await self._send_normalized(send, start, body)

        await self.app(scope, receive, buffered_response(send, _is_error, normalized))

    @staticmethod
    async def _send_normalized(send: Send, start: Message, body: bytes) -> None:
        status = int(start["status"])
        error, detail = normalize_error(status, body)
        payload = error_body(error, detail)
        headers = [
            (k, v)
            for k, v in start.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _is_error(start: Message) -> bool:
    return bool(start["status"] >= 400)


def normalize_error(status: int, body: bytes) -> tuple[str, str]:
    """``(error, detail)`` strings from whatever error body BentoML, Starlette or pydantic produced."""
    phrase = _phrase(status)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return (text or phrase), ""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return phrase, json.dumps(data) if data is not None else ""
    detail = data.get("detail", "")
    if isinstance(detail, list):
        listed = [_field_problem(item) for item in detail]
        shown = (
            listed
            if len(listed) <= MAX_LISTED
            else [*listed[:MAX_LISTED], f"... {len(listed) - MAX_LISTED} more"]
        )
        problems = "; ".join(shown)
        return f"invalid request: {problems}", problems
    error = data.get("error")
    return (str(error) if error else phrase), (detail if isinstance(detail, str) else json.dumps(detail))


def _field_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item.get("loc", ()))
    loc = loc.lstrip(".") or "body"
    return f"{loc}: {item.get('msg', 'invalid')}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def document_access(spec: dict[str, Any], *, api_key: bool, max_body_bytes: int) -> dict[str, Any]:
    """The OpenAPI document with the 401 and 413 responses of the API operations, and the API-key
    security scheme when a key is required."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error_ref = {"$ref": "#/components/schemas/InvalidArgument"} if "InvalidArgument" in schemas else {}
    content = {"application/json": {"schema": error_ref}} if error_ref else {}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if method.lower() == "post":
                operation["responses"].setdefault(
                    "413", {"description": f"Request body over {max_body_bytes} bytes", "content": content}
                )
            if api_key and path not in HEALTH_PATHS:
                operation["responses"].setdefault(
                    "401", {"description": "Missing or wrong API key", "content": content}
                )
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
    if api_key:
        spec["components"].setdefault("securitySchemes", {}).update(
            {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerAuth": {"type": "http", "scheme": "bearer"},
            }
        )
    return spec


class OpenApiAccessMiddleware:
    """Adds :func:`document_access` to the served OpenAPI document (``GET /docs.json``)."""

    def __init__(self, app: ASGIApp, api_key: bool, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != OPENAPI_PATH or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return

        async def documented(start: Message, body: bytes) -> None:
            if start["status"] == 200:
                spec = document_access(
                    json.loads(body), api_key=self.api_key, max_body_bytes=self.max_body_bytes
                )
                body = json.dumps(spec).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered_response(send, lambda _: True, documented))


class ClientErrorLogFilter(logging.Filter):
    """Turns BentoML's ERROR-with-traceback log of a request that failed validation (a client's mistake,
    answered with a 400) into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            record.msg = f"{record.getMessage()}: invalid request ({error.error_count()} validation errors)"
            record.args = ()
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True
