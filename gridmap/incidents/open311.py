"""Open311 GeoReport v2 (JSON) over the incident service, so existing Open311 clients can report.

Service codes are the leaf category codes; statuses map to open/closed. Requests listed
publicly carry no personal data.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gridmap.auth import Actor
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput, NotFound
from gridmap.incidents import service
from gridmap.incidents.categories import CATEGORIES
from gridmap.incidents.models import IncidentCreate, Reporter
from gridmap.incidents.workflow import FINAL, STATUS_LABELS
from gridmap.store.base import IncidentQuery, Store


def services() -> list[dict[str, Any]]:
    return [
        {"service_code": c.code, "service_name": c.name, "description": f"{c.group_name}：{c.name}（时限 {c.hours} 小时）",
         "metadata": False, "type": "realtime", "keywords": c.group_name, "group": c.group_name}
        for c in CATEGORIES.values()
    ]


def _as_request(record: dict[str, Any]) -> dict[str, Any]:
    category = CATEGORIES.get(record["category"])
    return {
        "service_request_id": str(record["id"]),
        "status": "closed" if record["status"] in FINAL else "open",
        "status_notes": STATUS_LABELS[record["status"]],
        "service_name": category.name if category else record["category"],
        "service_code": record["category"],
        "description": record["description"],
        "agency_responsible": record["grid_code"],
        "requested_datetime": record["reported_at"],
        "updated_datetime": record["updated_at"],
        "expected_datetime": record["due_at"],
        "address": record["address"],
        "lat": record["lat"],
        "long": record["lon"],
    }


def create(*, store: Store, coverage: Coverage, fields: dict[str, Any], actor: Actor) -> list[dict[str, Any]]:
    def number(name: str) -> float | None:
        value = fields.get(name)
        if value in (None, ""):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} 不是数字") from None

    if not fields.get("service_code"):
        raise InvalidInput("缺少 service_code")
    name = " ".join(str(fields[k]) for k in ("last_name", "first_name") if fields.get(k)) or None
    try:
        body = _body(fields, name, number("long"), number("lat"))
    except ValidationError as exc:
        said = "；".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise InvalidInput(f"请求参数有误：{said}") from None
    view, _ = service.intake(store=store, coverage=coverage, body=body, actor=actor)
    return [{"service_request_id": str(view["id"]), "service_notice": f"已受理登记，时限至 {view['due_at']}",
             "account_id": None, "token": view["receipt"]}]


def _body(fields: dict[str, Any], name: str | None, lon: float | None, lat: float | None) -> IncidentCreate:
    return IncidentCreate(
        category=str(fields["service_code"]),
        description=str(fields.get("description") or "（无描述）"),
        lon=lon, lat=lat,
        address=fields.get("address_string") or None,
        reporter=Reporter(name=name, phone=fields.get("phone") or None),
        source="Open311",
    )


def list_requests(*, store: Store, service_code: str | None = None, status: str | None = None,
                  start_date: str | None = None, end_date: str | None = None, limit: int = 1000
                  ) -> list[dict[str, Any]]:
    statuses: tuple[str, ...] = ()
    if status == "open":
        statuses = tuple(s for s in STATUS_LABELS if s not in FINAL)
    elif status == "closed":
        statuses = tuple(FINAL)
    elif status:
        raise InvalidInput("status 应为 open 或 closed")
    query = IncidentQuery(
        statuses=statuses,
        categories=tuple(service_code.split(",")) if service_code else (),
        since=service._parse_time(start_date, "start_date"),
        until=service._parse_time(end_date, "end_date"),
    )
    rows, _ = store.query_incidents(query, limit=limit)
    return [_as_request(r) for r in rows]


def get_request(*, store: Store, request_id: str) -> list[dict[str, Any]]:
    try:
        record = store.get_incident(int(request_id))
    except ValueError:
        record = None
    if record is None:
        raise NotFound(f"请求 {request_id} 不存在")
    return [_as_request(record)]
