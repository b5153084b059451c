"""The residents' pages (issue #15 §3): what ``/report`` and ``/status`` show, without HTTP.

``/report`` is a form on a phone that goes through the public intake (``gridmap.incidents.service.intake``,
called by the page router as ``POST /v1/incidents`` calls it); ``/status`` shows a report as its
reporter may see it (``service.get`` and ``service.history`` with the receipt, shaped by
``gridmap.access``) and takes the reporter's feedback (``service.feedback``). This module turns a form
into an ``IncidentCreate`` with messages a resident can read, and an incident's reporter view into what
the page prints; it decides nothing about who may see what.

**The page's 回执码** is ``<incident id>-<receipt>`` (``123-3f2a9c…``): the API returns the id and the
receipt separately (``X-Receipt``), and a receipt is derived from the id, never stored, so a page that
is given only a receipt could not find its report without trying every incident. One string to keep,
copy or type carries both; ``/status?id=123&receipt=3f2a9c…`` takes them apart as well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from gridmap.errors import InvalidInput
from gridmap.incidents.categories import CATEGORIES, category_tree
from gridmap.incidents.images import FULL_SIDE
from gridmap.incidents.models import MAX_DESCRIPTION, Feedback, IncidentCreate, Reporter
from gridmap.incidents.photos import MAX_PHOTOS_PER_STAGE
from gridmap.incidents.workflow import STATUS_LABELS

STATIC: Final = Path(__file__).resolve().parent / "static"
"""The pages' own script and style (served under ``/static/web``; part of the package)."""
MAX_PHOTOS: Final = MAX_PHOTOS_PER_STAGE
"""Photos one report may carry (the photo service's limit for a step)."""
PHOTO_SIDE: Final = FULL_SIDE
"""Longest side a photo is stored at: the page's script shrinks larger JPEG/PNG photos to it before sending."""
MAX_NAME: Final = Reporter.model_fields["name"].metadata[0].max_length
MAX_PHONE: Final = Reporter.model_fields["phone"].metadata[0].max_length
MAX_ADDRESS: Final = IncidentCreate.model_fields["address"].metadata[0].max_length
MAX_COMMENT: Final = Feedback.model_fields["comment"].metadata[0].max_length
MAX_CODE: Final = 100
"""Characters of a typed 回执码 the page reads at all (as ``X-Receipt`` on the API)."""

_CODE: Final = re.compile(r"(\d{1,19})\s*[-－—–]\s*([0-9a-fA-F]{16,64})")
_RECEIPT: Final = re.compile(r"[0-9a-fA-F]{16,64}")
_SPACES: Final = re.compile(r"\s+")


# the 回执码 ------------------------------------------------------------------------------------------

def status_code(incident_id: int, receipt: str) -> str:
    """The 回执码 the page gives out: the incident's number and its receipt in one string."""
    return f"{incident_id}-{receipt}"


@dataclass(frozen=True)
class StatusKey:
    incident_id: int
    receipt: str


def parse_status_code(code: str | None, incident_id: str | None = None) -> StatusKey | None:
    """``123-3f2a…`` (as the page gives it; spaces and a full-width dash forgiven), or a bare receipt
    with the incident's number given apart (``incident_id``, as the API and Open311 return them).
    None when the text cannot be a 回执码 at all: the page then asks again."""
    text = _SPACES.sub("", code or "")[:MAX_CODE]
    whole = _CODE.fullmatch(text)
    if whole:
        return StatusKey(int(whole.group(1)), whole.group(2).lower())
    number = _SPACES.sub("", incident_id or "")
    if _RECEIPT.fullmatch(text) and number.isascii() and number.isdigit() and 0 < len(number) <= 19:
        return StatusKey(int(number), text.lower())
    return None


# the report form -------------------------------------------------------------------------------

FIELDS: Final = ("category", "description", "lon", "lat", "address", "name", "phone")
"""The form's fields, as posted to ``/report`` (and kept when the page is shown again after an error)."""


def categories_for_form() -> list[dict[str, Any]]:
    """The category tree as the form lists it: groups, leaves with their plain words, and a note on
    the sensitive ones (disputes, care, public order): they are taken like any other report, and never
    shown to the public (docs/security.md)."""
    return [{"code": g["code"], "name": g["name"],
             "children": [{"code": c["code"], "name": c["name"], "hint": c["hint"], "sensitive": c["sensitive"]}
                          for c in g["children"]]}
            for g in category_tree()]


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a posted form, trimmed (a file or a missing field is empty)."""
    return {name: form[name].strip() if isinstance(form.get(name), str) else "" for name in FIELDS}


def _number(value: str, what: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{what}不是数字，请在地图上重新点选位置") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what}不是有效的数字，请在地图上重新点选位置")
    return number


def incident_from_form(values: Mapping[str, str]) -> IncidentCreate:
    """The body of a public report from the form's fields, or ``InvalidInput`` saying in plain words
    what to fix. The limits are the intake's own (``IncidentCreate``); where and what a report may be
    is decided by the intake itself (service area, address matching, categories)."""
    category = values.get("category", "")
    if category not in CATEGORIES:
        raise InvalidInput("请选择问题类别" if not category else "问题类别不在列表中，请重新选择")
    description = values.get("description", "")
    if not description:
        raise InvalidInput("请简单描述一下问题")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"问题描述最多 {MAX_DESCRIPTION} 字，现在有 {len(description)} 字")
    lon, lat = _number(values.get("lon", ""), "经度"), _number(values.get("lat", ""), "纬度")
    address = values.get("address", "")
    if (lon is None) != (lat is None):
        raise InvalidInput("位置不完整，请在地图上重新点选位置")
    if lon is None and not address:
        raise InvalidInput("请告诉我们问题在哪里：在地图上点选位置、使用我的位置，或填写地址")
    if len(address) > MAX_ADDRESS:
        raise InvalidInput(f"地址最多 {MAX_ADDRESS} 字")
    name, phone = values.get("name", ""), values.get("phone", "")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"姓名最多 {MAX_NAME} 字")
    if len(phone) > MAX_PHONE:
        raise InvalidInput(f"电话最多 {MAX_PHONE} 位")
    reporter = Reporter(name=name or None, phone=phone or None) if name or phone else None
    try:
        return IncidentCreate(category=category, description=description, lon=lon, lat=lat,
                              address=address or None, reporter=reporter)
    except ValidationError as exc:  # the model's bounds (a longitude of 500): said for the field
        fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if fields & {"lon", "lat"}:
            raise InvalidInput("位置超出范围，请在地图上重新点选位置") from None
        raise InvalidInput("填写的内容有误，请检查后重新提交") from None


# the status page -------------------------------------------------------------------------------

STEP_WORDS: Final = {
    "report": "您的反映已登记",
    "accept": "指挥中心已受理",
    "dispatch": "已派给网格员办理",
    "start": "网格员开始处理",
    "resolve": "已处理完成",
    "verify": "指挥中心已核查",
    "close": "已办结",
    "return": "退回重新安排",
    "cancel": "不予办理（已作废）",
    "reopen": "核查未通过，重新办理",
    "feedback": "您已评价",
}
"""Each step of the time line in a resident's words (the workflow table's labels are the staff's)."""

STATUS_WORDS: Final = {
    "reported": "已登记，等待受理",
    "accepted": "已受理，正在安排",
    "dispatched": "已派给网格员",
    "in_progress": "正在处理",
    "resolved": "已处理完成，请您评价",
    "verified": "已核查，请您评价",
    "closed": "已办结",
    "returned": "正在重新安排",
    "cancelled": "已作废",
}
RATED_WORDS: Final = {"resolved": "已处理完成", "verified": "已核查，等待办结"}
"""The status in a resident's words once they have rated (nothing is asked of them any more)."""
FEEDBACK_STATUSES: Final = frozenset({"resolved", "verified", "closed"})
"""When the reporter may rate (``service.feedback`` decides; the page offers the form only then)."""
STARS: Final = {1: "很不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"}


def status_words(view: dict[str, Any]) -> str:
    """Where the report stands, in a resident's words."""
    if view["rating"] is not None and view["status"] in RATED_WORDS:
        return RATED_WORDS[view["status"]]
    return STATUS_WORDS.get(view["status"], view["status_label"])


def time_line(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reporter's history (``access.shape_history``: status changes and public replies, no staff
    notes, no actors) as the page lists it, oldest first."""
    return [{"at": e["at"], "words": STEP_WORDS.get(e["action"], STATUS_LABELS.get(e["to_status"], e["action"])),
             "status": STATUS_LABELS.get(e["to_status"], ""), "reply": e.get("reply")}
            for e in events]


def handler_contact(coverage: Any, view: dict[str, Any]) -> dict[str, Any] | None:
    """The worker who will handle the report, with their work phone: the public service contact
    ``/v1/lookup`` gives for the place (docs/security.md), looked up by the assignee's code."""
    assignee = view.get("assignee")
    if not assignee:
        return None
    workers = coverage.workers
    row = workers[workers["code"] == assignee["code"]]
    phone = row["phone"].iat[0] if len(row) else None
    phone = phone if isinstance(phone, str) and phone else None  # an empty cell may read as NaN
    return {"name": assignee.get("name"), "role": assignee.get("role"), "phone": phone}


def feedback_values(form: Mapping[str, Any]) -> tuple[int, str | None]:
    """(rating, comment) from the feedback form, or ``InvalidInput`` in plain words."""
    raw = form.get("rating")
    rating = int(raw) if isinstance(raw, str) and raw.strip() in {str(n) for n in STARS} else None
    if rating is None:
        raise InvalidInput("请先选择满意程度（1 到 5 星）")
    comment = form.get("comment")
    comment = comment.strip() if isinstance(comment, str) else ""
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"意见最多 {MAX_COMMENT} 字，现在有 {len(comment)} 字")
    return rating, comment or None


CHINA_TIME: Final = timezone(timedelta(hours=8), "北京时间")


def local_time(stamp: str | None) -> str:
    """A stored UTC time (``2026-05-01T08:15:00Z``) as residents read it: Beijing time, to the minute."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
