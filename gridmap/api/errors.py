"""One place that turns domain errors into HTTP answers: ``{"error", "detail", "problems"?}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from gridmap.errors import GridmapError

HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求体无法解析：应为 UTF-8 编码的有效 JSON 或表单，且嵌套不可过深"),
    404: ("not_found", "没有这个地址"),
    405: ("method_not_allowed", "此地址不接受这种请求方法"),
    413: ("payload_too_large", "请求体过大"),
}
"""Errors raised by FastAPI/Starlette themselves (a body that cannot be parsed, an unknown path),
said in the same ``{"error", "detail"}`` form and in Chinese like every other error."""

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "错误码，如 invalid_input、not_found、payload_too_large"},
        "detail": {"type": "string", "description": "给使用者看的说明（中文）"},
        "problems": {"type": "array", "items": {"type": "object"}, "description": "逐条问题（参数校验、数据包校验）"},
    },
}


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part not in ("query", "body", "path"))


def register(app: FastAPI) -> None:
    @app.exception_handler(GridmapError)
    async def domain_error(request: Request, exc: GridmapError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return JSONResponse({"error": "invalid_input", "detail": "请求体不是有效的 JSON"}, status_code=422)
        problems = [{"field": _where(e["loc"]), "message": e["msg"].removeprefix("Value error, ")}
                    for e in exc.errors()]
        said = "；".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems[:5])
        return JSONResponse(
            {"error": "invalid_input", "detail": f"请求参数有误：{said}", "problems": problems},
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """FastAPI answers a body it cannot parse (too deep, not UTF-8, broken multipart) with a 400."""
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        code, message = HTTP_ERRORS.get(exc.status_code, ("http_error", str(exc.detail)))
        if isinstance(exc.detail, str) and not exc.detail.isascii():
            message = exc.detail  # already written for users
        return JSONResponse({"error": code, "detail": message}, status_code=exc.status_code, headers=exc.headers)

    _document_errors(app)


def _document_errors(app: FastAPI) -> None:
    """Say in the OpenAPI what error answers look like, so that clients (and the fuzz test) can rely on it.

    FastAPI documents its own 422 shape (``HTTPValidationError``), which this app never sends; every
    error here is ``ERROR_SCHEMA``. Each 4xx/5xx response declared without content, and every 4xx of
    an operation that answers JSON, is given that schema. Redirects are said to have no body.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if "Error" in schemas:
            return schema  # already done: FastAPI caches the schema it returns
        schemas["Error"] = ERROR_SCHEMA
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _describe(operation.setdefault("responses", {}), error)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe(responses: dict[str, Any], error: dict[str, Any]) -> None:
    for code, answer in responses.items():
        if code.startswith("3"):
            answer.pop("content", None)  # a redirect (sign-in, sign-out) has no body, whatever FastAPI assumes
    answers_json = any(code.startswith("2") and (not answer.get("content") or "application/json" in answer["content"])
                       for code, answer in responses.items())
    for code, answer in responses.items():
        if code[0] not in "45":
            continue
        content = answer.get("content")
        refs = str(content)
        if not content and answers_json or "HTTPValidationError" in refs:
            answer["content"] = error
    if answers_json:
        responses.setdefault("4XX", {"description": "请求有误：错误码与说明", "content": error})
