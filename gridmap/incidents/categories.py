"""The coded two-level taxonomy of incidents, with time limits and default handlers.

Codes are stable API identifiers (and Open311 service codes); names are what staff see.
``police`` adds the covering precinct as co-handler (警格联动); ``resources`` are what a co-building
unit must be able to offer to be suggested (一呼百应). ``sensitive`` leaves (disputes, care of vulnerable
people, public order, mental health) never reach the public; reports on a ``public_asset`` (street
lights, signs, roads) keep their exact position in public answers (see docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gridmap.errors import InvalidInput


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    group: str
    group_name: str
    hours: int
    police: bool = False
    resources: tuple[str, ...] = field(default_factory=tuple)
    sensitive: bool = False
    public_asset: bool = False
    hint: str = ""
    """What the category covers, in a resident's words."""

    @property
    def handlers(self) -> list[str]:
        out = ["grid_worker"]
        if self.police:
            out.append("police")
        if self.resources:
            out.append("units")
        return out


SENSITIVE: Final = frozenset({
    "dispute.neighbour", "dispute.family", "dispute.dog", "service.elderly", "service.mental_health",
    "security.public_order",
})
PUBLIC_ASSETS: Final = frozenset({"infra.streetlight", "infra.sign", "infra.road"})
HINTS: Final = {
    "safety.wall": "墙皮、瓷砖脱落，围墙或墙体开裂、倾斜",
    "safety.access": "小区或楼道门禁坏了、没有门禁",
    "safety.fire": "楼道堆放杂物、电动车进楼充电、消防通道被占",
    "infra.streetlight": "路灯不亮、闪烁或灯杆损坏",
    "infra.sign": "路牌、指示牌缺失或损坏",
    "infra.road": "路面坑洼、井盖缺失、道路破损",
    "infra.water": "停水、水压低、水管漏水",
    "infra.heating": "暖气不热、供暖管道漏水",
    "sanitation.toilet": "旱厕满溢、需要清掏或维修",
    "sanitation.cleaning": "垃圾没清运、乱堆乱放、环境脏乱",
    "dispute.neighbour": "和邻居之间的矛盾（噪音、漏水、占道等），需要调解",
    "dispute.family": "家庭矛盾，需要调解",
    "dispute.dog": "狗叫扰民、遛狗不牵绳、狗伤人",
    "service.elderly": "独居老人、残疾人需要帮助或看望",
    "service.mental_health": "需要心理疏导和关爱",
    "service.errand": "行动不便，需要上门代办事情",
    "security.public_order": "可疑人员、偷盗、打架等治安问题（紧急情况请拨打 110）",
    "other.other": "以上都不是的问题",
}
"""Each leaf in a resident's words (the report page shows them under the category's name)."""

_TREE: Final = [
    ("safety", "安全隐患", [
        ("safety.wall", "墙体脱落/倾斜", 24, False, ("维修", "车辆")),
        ("safety.access", "无门禁", 72, False, ("维修",)),
        ("safety.fire", "消防隐患", 12, True, ("志愿者",)),
    ]),
    ("infra", "基础设施", [
        ("infra.streetlight", "路灯", 48, False, ("照明", "维修")),
        ("infra.sign", "标志牌", 72, False, ("维修",)),
        ("infra.road", "道路", 72, False, ("维修", "车辆")),
        ("infra.water", "供水", 24, False, ("供水", "维修")),
        ("infra.heating", "供暖/大暖", 48, False, ("供暖", "维修")),
    ]),
    ("sanitation", "环境卫生", [
        ("sanitation.toilet", "旱厕", 72, False, ("志愿者", "车辆")),
        ("sanitation.cleaning", "卫生保洁", 24, False, ("志愿者",)),
    ]),
    ("dispute", "矛盾纠纷", [
        ("dispute.neighbour", "邻里", 72, True, ("法律咨询",)),
        ("dispute.family", "家庭", 72, True, ("法律咨询",)),
        ("dispute.dog", "文明养犬", 48, True, ()),
    ]),
    ("service", "民生服务", [
        ("service.elderly", "老年人/残疾人帮扶", 48, False, ("志愿者", "医疗")),
        ("service.errand", "上门代办", 72, False, ("志愿者",)),
        ("service.mental_health", "心理健康关爱", 48, False, ("心理疏导", "医疗")),
    ]),
    ("security", "治安", [
        ("security.public_order", "治安", 4, True, ()),
    ]),
    ("other", "其他", [
        ("other.other", "其他", 120, False, ()),
    ]),
]

CATEGORIES: Final[dict[str, Category]] = {
    code: Category(code, name, group, group_name, hours, police, resources, code in SENSITIVE, code in PUBLIC_ASSETS,
                   HINTS.get(code, ""))
    for group, group_name, leaves in _TREE
    for code, name, hours, police, resources in leaves
}


def get_category(code: str) -> Category:
    try:
        return CATEGORIES[code]
    except KeyError:
        raise InvalidInput(f"未知的事件类别 {code!r}；可用类别见 GET /v1/categories") from None


def expand_categories(codes: list[str] | tuple[str, ...] | None) -> list[str]:
    """Leaf codes for filter values that name leaves or whole groups; an unknown code is a 422."""
    leaves: list[str] = []
    for c in codes or ():
        if c in CATEGORIES:
            leaves.append(c)
        else:
            group = [code for code, cat in CATEGORIES.items() if cat.group == c]
            if not group:
                raise InvalidInput(f"未知类别 {c!r}")
            leaves += group
    return leaves


def category_tree() -> list[dict]:
    return [
        {
            "code": group,
            "name": group_name,
            "children": [
                {"code": c.code, "name": c.name, "hours": c.hours, "handlers": c.handlers,
                 "resources": list(c.resources), "sensitive": c.sensitive, "public_asset": c.public_asset, "hint": c.hint}
                for c in CATEGORIES.values() if c.group == group
            ],
        }
        for group, group_name, _ in _TREE
    ]
