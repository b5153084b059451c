"""Bulk registration from the lists staff keep in Excel (CSV in UTF-8 or GBK, or ``.xlsx``).

The file is read by ``gridmap.coverage.tables`` (encodings, zip-bomb limits, Excel's row numbers) and every
row is checked before anything is written: one bad row makes the whole file a 422 whose message names the
row and the column (``第 3 行 B 列（手机）``), with every problem found listed in ``problems``; nothing is
stored. A row in a community the caller may not write is a 403 naming the row. A good file is stored in one
transaction (all or none).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from gridmap.access import check_record_write, record_communities
from gridmap.auth import Actor
from gridmap.cogov import kinds, registrations
from gridmap.cogov.models import Contact, MemberRegistrationCreate, UnitRegistrationCreate
from gridmap.cogov.places import check_grid, community_name, unit_row
from gridmap.coverage.service import Coverage
from gridmap.coverage.tables import Table, column_letter, read_table, where
from gridmap.errors import Forbidden, InvalidInput
from gridmap.store.base import Store

MAX_IMPORT_ROWS: Final = 5000
MAX_PROBLEMS: Final = 50
"""Problems listed in one answer (the first is in the message)."""

UNIT_COLUMNS: Final = {
    "unit_code": ("unit_code", "单位编码", "共建单位编码"),
    "community_code": ("community_code", "社区编码"),
    "registered_on": ("registered_on", "报到日期", "报到时间"),
    "contact_name": ("contact_name", "联系人"),
    "contact_phone": ("contact_phone", "联系电话", "联系人电话"),
}
MEMBER_COLUMNS: Final = {
    "name": ("name", "姓名"),
    "phone": ("phone", "手机", "手机号", "手机号码", "电话"),
    "unit_code": ("unit_code", "单位编码", "工作单位编码"),
    "community_code": ("community_code", "社区编码"),
    "grid_code": ("grid_code", "网格编码"),
    "skills": ("skills", "技能", "特长"),
    "registered_on": ("registered_on", "报到日期", "报到时间"),
}
REQUIRED: Final = {"unit": ("unit_code", "community_code", "registered_on"),
                   "member": ("name", "phone", "unit_code", "community_code", "registered_on")}
SKILL_SEPARATORS: Final = re.compile(r"[;；,，、/\s]+")
_DATE: Final = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[T\s].*)?")


class Problem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def parse_date(text: str) -> date:
    """``2025-03-01``, ``2025/3/1``, ``2025年3月1日`` or an Excel date (``2025-03-01T00:00:00``)."""
    m = _DATE.fullmatch(text.strip())
    if not m:
        raise ValueError(text)
    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _columns(table: Table, names: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> dict[str, int]:
    cleaned = [re.sub(r"\s+", "", h).lower() for h in table.header]
    found: dict[str, int] = {}
    for field, aliases in names.items():
        for alias in aliases:
            if alias.lower() in cleaned:
                found[field] = cleaned.index(alias.lower())
                break
    missing = [names[f][1] + f"（{f}）" for f in required if f not in found]
    if missing:
        raise InvalidInput(f"缺少列：{'、'.join(missing)}（现有列：{'、'.join(table.header) or '无'}）")
    return found


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _unit_row(coverage: Coverage, values: dict[str, str]) -> UnitRegistrationCreate:
    _check_codes(coverage, values)
    contact = Contact(name=values.get("contact_name") or None, phone=values.get("contact_phone") or None)
    return _model(UnitRegistrationCreate, unit_code=values["unit_code"], community_code=values["community_code"],
                  registered_on=_date(values), contact=contact if contact.name or contact.phone else None)


def _member_row(coverage: Coverage, values: dict[str, str]) -> MemberRegistrationCreate:
    _check_codes(coverage, values)
    if values.get("grid_code"):
        try:
            check_grid(coverage, values["grid_code"], values["community_code"])
        except InvalidInput as exc:
            raise Problem("grid_code", exc.message) from None
    skills = [s for s in SKILL_SEPARATORS.split(values.get("skills", "")) if s]
    return _model(MemberRegistrationCreate, name=values["name"], phone=values["phone"], unit_code=values["unit_code"],
                  community_code=values["community_code"], grid_code=values.get("grid_code") or None,
                  skills=skills, registered_on=_date(values))


def _check_codes(coverage: Coverage, values: dict[str, str]) -> None:
    for field, check in (("community_code", lambda v: community_name(coverage, v)),
                         ("unit_code", lambda v: unit_row(coverage, v))):
        if not values.get(field):
            raise Problem(field, "不能为空")
        try:
            check(values[field])
        except InvalidInput as exc:
            raise Problem(field, exc.message) from None


def _date(values: dict[str, str]) -> date:
    try:
        return parse_date(values.get("registered_on", ""))
    except ValueError:
        raise Problem("registered_on", f"日期“{values.get('registered_on', '')}”无法识别，应为 2025-03-01 的形式") from None


def _model(model: type[BaseModel], **values: Any) -> Any:
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        raise Problem("contact_phone" if field == "contact" else field, _pydantic_text(error)) from None


def _pydantic_text(error: Any) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 个字符"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    return f"格式错误（{error.get('msg', '')}）"


def _rows(table: Table, coverage: Coverage, actor: Actor, names: dict[str, tuple[str, ...]], required: tuple[str, ...],
          parse: Callable[[Coverage, dict[str, str]], Any], key: Callable[[Any], str | None] | None = None,
          taken: Callable[[str], bool] | None = None) -> list[Any]:
    columns = _columns(table, names, required)
    bodies, problems, keys = [], [], {}
    for position, row in enumerate(table.rows):
        values = {field: _cell(row, index) for field, index in columns.items()}
        try:
            if values.get("community_code"):
                try:
                    check_record_write(actor, coverage, values["community_code"])
                except Forbidden as exc:
                    raise Forbidden(f"{where(table, position, columns['community_code'])}：{exc.message}") from None
            for field in required:
                if not values.get(field):
                    raise Problem(field, "不能为空")
            body = parse(coverage, values)
            k = key(body) if key else None
            if k is not None and k in keys:
                raise Problem("unit_code", f"与第 {table.numbers[keys[k]]} 行重复（同一单位在同一社区只报到一次）")
            if k is not None and taken is not None and taken(k):
                raise Problem("unit_code", "该单位已在此社区报到")
            if k is not None:
                keys[k] = position
            bodies.append(body)
        except Problem as p:
            column = columns.get(p.field, columns.get(required[0], 0))
            problems.append({"row": table.numbers[position], "column": column_letter(column),
                             "field": p.field, "message": f"{where(table, position, column)}：{p.message}"})
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        more = f"（共 {len(problems)} 处问题，见 problems）" if len(problems) > 1 else ""
        raise InvalidInput(f"{problems[0]['message']}；未导入任何记录{more}", details=problems)
    if not bodies:
        raise InvalidInput("文件中没有数据行")
    return bodies


def _signed_writer(actor: Actor, coverage: Coverage) -> None:
    """401 for the public and 403 for planners before the file is read."""
    if actor.role == "planner":
        raise Forbidden("规划人员只能查看，不能修改")
    record_communities(actor, coverage)


def import_units(store: Store, coverage: Coverage, actor: Actor, data: bytes, *, encoding: str | None
                 ) -> list[dict[str, Any]]:
    _signed_writer(actor, coverage)
    table = read_table(data, encoding=encoding, max_rows=MAX_IMPORT_ROWS)
    bodies = _rows(table, coverage, actor, UNIT_COLUMNS, REQUIRED["unit"], _unit_row,
                   key=lambda b: f"{b.unit_code}@{b.community_code}",
                   taken=lambda k: store.find_entity(kinds.UNIT_REGISTRATION, k) is not None)
    return registrations.register_units(store, coverage, actor, bodies)


def import_members(store: Store, coverage: Coverage, actor: Actor, data: bytes, *, encoding: str | None
                   ) -> list[dict[str, Any]]:
    _signed_writer(actor, coverage)
    table = read_table(data, encoding=encoding, max_rows=MAX_IMPORT_ROWS)
    bodies = _rows(table, coverage, actor, MEMBER_COLUMNS, REQUIRED["member"], _member_row)
    return registrations.register_members(store, coverage, actor, bodies)
