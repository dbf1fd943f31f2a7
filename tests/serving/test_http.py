"""The API's ASGI middleware without a server: API key, body limit, multipart checks, error bodies."""

from __future__ import annotations

import logging
import sys

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from components.serving.http import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ClientErrorLogFilter,
    ErrorBodyMiddleware,
    OpenApiAccessMiddleware,
    document_access,
    normalize_error,
)

KEY = "k3y"


async def echo(request: Request) -> Response:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form()
        return JSONResponse({"fields": sorted(form.keys())})
    return JSONResponse({"bytes": len(body)})


async def pydantic_error(_: Request) -> Response:
    detail = [{"type": "float_type", "loc": ["signal", 0, 3], "msg": "Input should be a valid number"}]
    return JSONResponse({"error": "1 validation error for Input", "detail": detail}, status_code=400)


async def bentoml_error(_: Request) -> Response:
    return JSONResponse([{"error": "Invalid content type"}], status_code=415)


async def spec(_: Request) -> Response:
    schemas = {"InvalidArgument": {"type": "object"}}
    paths = {"/predict": {"post": {"responses": {"200": {}}}}, "/livez": {"get": {"responses": {"200": {}}}}}
    return JSONResponse({"openapi": "3.0.2", "paths": paths, "components": {"schemas": schemas}})


def _client(api_key: str | None = KEY, max_bytes: int = 1000) -> TestClient:
    app = Starlette(
        routes=[
            Route("/predict", echo, methods=["POST"]),
            Route("/livez", lambda _: PlainTextResponse("\n")),
            Route("/pydantic", pydantic_error, methods=["POST"]),
            Route("/bentoml", bentoml_error, methods=["POST"]),
            Route("/docs.json", spec),
        ],
        middleware=[
            Middleware(ApiKeyMiddleware, api_key=api_key),
            Middleware(BodyLimitMiddleware, max_bytes=max_bytes, file_fields={"/predict": ["header"]}),
            Middleware(OpenApiAccessMiddleware, api_key=bool(api_key), max_body_bytes=max_bytes),
            Middleware(ErrorBodyMiddleware),
        ],
    )
    return TestClient(app)


def test_api_key_is_required_everywhere_but_the_health_probes() -> None:
    client = _client()
    missing = client.post("/predict", content=b"{}")
    assert missing.status_code == 401 and missing.json()["error"].startswith("missing API key")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.post("/predict", content=b"{}", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"].startswith("wrong API key")
    assert client.post("/predict", content=b"{}", headers={"X-API-Key": KEY}).status_code == 200
    assert (
        client.post("/predict", content=b"{}", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    )
    assert client.get("/livez").status_code == 200
    assert client.get("/docs.json").status_code == 401
    assert _client(api_key=None).post("/predict", content=b"{}").status_code == 200


def test_bodies_over_the_limit_get_413_declared_or_streamed() -> None:
    client = _client(api_key=None)
    assert client.post("/predict", content=b"x" * 1000).json() == {"bytes": 1000}
    declared = client.post("/predict", content=b"x" * 1001)
    assert declared.status_code == 413 and "1001 bytes; the limit is 1000" in declared.json()["error"]

    def chunks():  # no Content-Length: chunked transfer
        for _ in range(5):
            yield b"y" * 300

    streamed = client.post("/predict", content=chunks())
    assert streamed.status_code == 413 and "the limit is 1000 bytes" in streamed.json()["error"]


def test_malformed_uploads_are_a_400_and_a_good_one_passes() -> None:
    client = _client(api_key=None, max_bytes=100_000)
    good = client.post("/predict", files={"header": ("a.hea", b"a 1 100 10\n")}, data={"fs": "100"})
    assert good.status_code == 200 and good.json() == {"fields": ["fs", "header"]}
    no_boundary = client.post("/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400
    assert no_boundary.json()["error"].startswith("malformed multipart/form-data body")
    as_text = client.post(
        "/predict", files={"fs": (None, b"100")}, data={"header": "http://example.invalid/x"}
    )
    assert as_text.status_code == 400
    assert (
        as_text.json()["error"]
        == "form field 'header' must be a file part (with a filename), not a text value"
    )
    urlencoded = client.post("/predict", data={"header": "http://example.invalid/x"})
    assert (
        urlencoded.status_code == 400 and "must be sent as multipart/form-data" in urlencoded.json()["error"]
    )


def test_error_bodies_become_error_and_detail_strings() -> None:
    client = _client(api_key=None)
    field = client.post("/pydantic")
    assert field.status_code == 400
    assert field.json() == {
        "error": "invalid request: signal[0][3]: Input should be a valid number",
        "detail": "signal[0][3]: Input should be a valid number",
    }
    listed = client.post("/bentoml")
    assert listed.status_code == 415 and listed.json() == {"error": "Invalid content type", "detail": ""}
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found", "detail": ""}
    assert normalize_error(503, b"") == ("Service Unavailable", "")


def test_openapi_document_gains_the_api_key_scheme_and_the_401_413_responses() -> None:
    served = _client().get("/docs.json", headers={"X-API-Key": KEY}).json()
    predict = served["paths"]["/predict"]["post"]
    assert {"401", "413"} <= set(predict["responses"]) and predict["security"]
    assert "401" not in served["paths"]["/livez"]["get"]["responses"]
    assert served["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    plain = {"paths": {"/predict": {"post": {"responses": {"200": {}}}}}}
    open_spec = document_access(plain, api_key=False, max_body_bytes=10)
    assert set(open_spec["paths"]["/predict"]["post"]["responses"]) == {"200", "413"}
    assert "securitySchemes" not in open_spec["components"]


@pytest.mark.parametrize("status", [400, 422, 500])
def test_normalize_error_keeps_plain_text_messages(status: int) -> None:
    assert normalize_error(status, b"too many leads") == ("too many leads", "")


def test_validation_failures_are_logged_as_one_info_line_not_an_error_with_traceback() -> None:
    from pydantic import BaseModel, ValidationError

    class Body(BaseModel):
        fs: float

    try:
        Body.model_validate({"fs": "x"})
    except ValidationError:
        record = logging.LogRecord(
            "bentoml",
            logging.ERROR,
            __file__,
            1,
            "Exception on %s [%s]",
            ("/predict", "POST"),
            sys.exc_info(),
        )
    assert ClientErrorLogFilter().filter(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == "Exception on /predict [POST]: invalid request (1 validation errors)"
    other = logging.LogRecord(
        "bentoml", logging.ERROR, __file__, 1, "boom", (), (RuntimeError, RuntimeError("x"), None)
    )
    assert (
        ClientErrorLogFilter().filter(other) and other.levelno == logging.ERROR and other.exc_info is not None
    )
