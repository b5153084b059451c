"""资源清单: what co-building units, registered Party members and service teams offer, drawn where the
provider is (a unit at its site, a team at its station, else the community; a member at their
community, never at a home), coloured by the kind of resource.

Input contract (WGS84 points): id, provider_kind (Chinese), provider, category, description, quantity,
communities (names), available_until, place.
"""

from __future__ import annotations

from typing import Final

import geopandas as gpd

from gridmap.cogov.categories import RESOURCE_CATEGORIES
from gridmap.layers.base import Overlay
from gridmap.layers.record_layer import RecordLayer, embedded_overlay
from gridmap.layers.tiles import RECORD_MIN_ZOOM

PALETTE: Final = ("#16a085", "#8e44ad", "#2980b9", "#d35400", "#c0392b", "#27ae60", "#7f8c8d", "#f1c40f")
MIN_ZOOM: Final = RECORD_MIN_ZOOM["resources"]

RESOURCES: Final = RecordLayer(
    id="resources", name="共建资源（资源清单）", by="category",
    classes={c: (PALETTE[i % len(PALETTE)], c) for i, c in enumerate(RESOURCE_CATEGORIES)},
    popup=(("提供方", "provider", ""), ("类型", "provider_kind", ""), ("资源类别", "category", ""),
           ("可提供", "description", ""), ("数量", "quantity", ""), ("服务社区", "communities", ""),
           ("可用至", "available_until", ""), ("位置", "place", ""), ("编号", "id", "")),
    legend_title="共建资源：资源类别（位于提供方）", min_zoom=MIN_ZOOM, tooltip="provider",
)


def resources_layer(resources: gpd.GeoDataFrame, *, name: str | None = None, show: bool = False) -> Overlay:
    return embedded_overlay(RESOURCES, resources, name=name or f"{RESOURCES.name}（{len(resources)} 项）", show=show)
