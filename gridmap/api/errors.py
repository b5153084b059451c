"""One place that turns domain errors into HTTP answers: ``{"error", "detail", "problems"?}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gridmap.errors import GridmapError


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part not in ("query", "body", "path"))


def register(app: FastAPI) -> None:
    @app.exception_handler(GridmapError)
    async def domain_error(request: Request, exc: GridmapError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _where(e["loc"]), "message": e["msg"].removeprefix("Value error, ")}
                    for e in exc.errors()]
        said = "；".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems[:5])
        return JSONResponse(
            {"error": "invalid_input", "detail": f"请求参数有误：{said}", "problems": problems},
            status_code=422,
        )
