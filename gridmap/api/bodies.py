"""JSON request bodies read by routers themselves (batch lookup, Open311): strict, and never a 500.

The standard ``json`` module recurses once per nesting level (a few thousand ``[`` raise
RecursionError), accepts ``NaN`` and ``Infinity``, which are not JSON, and decodes invalid UTF-8
by guessing. orjson stops at 1,024 levels, refuses non-finite numbers and invalid UTF-8, and is
faster; every refusal becomes a 422 saying why, in Chinese. Bodies FastAPI parses for a pydantic
model are covered by the handler for body-parsing errors in ``gridmap.api.errors``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from gridmap.errors import InvalidInput

MAX_DEPTH = 1024
"""orjson's fixed nesting limit, said in the message."""


def load_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"请求体不是有效的 JSON：{_reason(exc, raw)}") from None


async def json_body(request: Request) -> Any:
    return load_json(await request.body())


def _reason(exc: orjson.JSONDecodeError, raw: bytes) -> str:
    said = str(exc)
    if "depth" in said:
        return f"嵌套超过 {MAX_DEPTH} 层"
    if "UTF-8" in said:
        return "不是 UTF-8 编码的文本"
    if not raw.strip():
        return "请求体为空"
    if "infinity" in said:
        return f"第 {exc.lineno} 行第 {exc.colno} 列：数值超出范围"
    at = exc.doc[max(exc.pos - 1, 0):exc.pos + 9]
    if "NaN" in at or "Infinity" in at:
        return f"第 {exc.lineno} 行第 {exc.colno} 列：NaN、Infinity 不是 JSON 数值"
    return f"第 {exc.lineno} 行第 {exc.colno} 列有语法错误"
