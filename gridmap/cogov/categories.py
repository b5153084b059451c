"""The vocabularies of the three lists (三清单): what residents need, what providers offer, which skills
help with what. Matching (``gridmap.cogov.matching``) reads its category fit and skills fit from here,
so the two cannot drift apart; the values are the Chinese words staff type in their lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class NeedCategory:
    name: str
    resources: tuple[str, ...]
    """Resource categories that can meet a need of this kind."""
    skills: tuple[str, ...]
    """Members' skills (and co-building units' offers in the ``units`` layer) that help."""


RESOURCE_CATEGORIES: Final = ("资金", "场地", "设备", "物资", "专业服务", "志愿服务")
"""资源清单: funds, venues, equipment, supplies, expertise, volunteers."""

NEED_CATEGORIES: Final = {c.name: c for c in (
    NeedCategory("道路亮化", ("资金", "设备"), ("电工", "维修", "照明")),
    NeedCategory("老旧小区改造", ("资金", "设备", "专业服务"), ("维修", "建筑", "技术服务")),
    NeedCategory("供暖", ("资金", "设备"), ("维修", "技术服务")),
    NeedCategory("隐患修复", ("资金", "设备", "专业服务"), ("维修", "建筑", "电工", "技术服务")),
    NeedCategory("环境美化", ("资金", "物资", "志愿服务"), ("园林", "志愿者")),
    NeedCategory("环境卫生", ("志愿服务", "设备", "物资"), ("志愿者",)),
    NeedCategory("法律服务", ("专业服务", "志愿服务"), ("法律咨询",)),
    NeedCategory("医疗健康", ("专业服务", "志愿服务", "物资"), ("医疗",)),
    NeedCategory("助老助残", ("志愿服务", "物资", "资金"), ("医疗", "心理疏导", "心理咨询", "志愿者")),
    NeedCategory("教育辅导", ("志愿服务", "场地", "专业服务"), ("教育", "培训")),
    NeedCategory("心理疏导", ("专业服务", "志愿服务"), ("心理疏导", "心理咨询")),
    NeedCategory("文体活动", ("场地", "志愿服务", "资金"), ("文艺", "体育", "文体活动")),
    NeedCategory("政策宣讲", ("场地", "志愿服务"), ("政策宣讲", "培训")),
    NeedCategory("其他", RESOURCE_CATEGORIES, ()),
)}
"""需求清单 categories: the kinds of practical matters (实事) the county's report names, and the services."""

NEED_SOURCES: Final = ("居民提出", "网格员走访", "议事协商", "事件转化", "单位发现", "其他")
"""How a need was collected; ``事件转化`` is set when an incident is promoted."""

PROMOTED_SOURCE: Final = "事件转化"

SKILLS_EXAMPLES: Final = ("法律咨询", "医疗", "维修", "教育", "心理疏导", "电工", "建筑", "文艺", "体育", "政策宣讲")
"""Skills members list most often (free text is accepted; these are what matching knows to look for)."""


def need_category(name: str) -> NeedCategory:
    from gridmap.errors import InvalidInput

    found = NEED_CATEGORIES.get(name)
    if found is None:
        raise InvalidInput(f"需求类别“{name}”不存在；可用：{'、'.join(NEED_CATEGORIES)}")
    return found
