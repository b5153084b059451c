"""``If-Match`` and ``ETag``: every versioned resource (incidents, staff-maintained records, the address
library) names its version the same way, so a client writes one kind of conditional request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

from gridmap.errors import InvalidInput

IfMatch = Annotated[str | None, Header(description="ETag（版本号）；修改时必填，缺少时为 428，过期时为 412")]


def if_match_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None when absent (the service
    answers 428); 422 when it names none."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise InvalidInput(f"If-Match 应为版本号（ETag），收到 {if_match!r}") from None


def etag(response: Response, view: dict[str, Any]) -> dict[str, Any]:
    """Set the view's version as its ETag and hand the view back."""
    response.headers["ETag"] = f'"{view["version"]}"'
    return view
