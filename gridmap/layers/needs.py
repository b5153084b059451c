"""居民需求 (需求清单): needs as points coloured by status; the popup says what is needed, of what kind,
for how many households and where it stands, never who asked (no description, no address detail).

Input contract (WGS84 points): id, title, category, households, status, status_label, community_name, place
(``需求地点`` or ``社区大致位置``: a need recorded without a point is drawn near its community's centre).
"""

from __future__ import annotations

from typing import Final

import geopandas as gpd

from gridmap.cogov import kinds
from gridmap.cogov.needs import STATUS_LABELS
from gridmap.layers.base import Overlay
from gridmap.layers.record_layer import RecordLayer, embedded_overlay
from gridmap.layers.tiles import RECORD_MIN_ZOOM

COLOURS: Final = {kinds.NEED_COLLECTED: "#e74c3c", kinds.NEED_ACCEPTED: "#e67e22", kinds.NEED_IN_PROJECT: "#2e86c1",
                  kinds.NEED_DONE: "#27ae60", kinds.NEED_REJECTED: "#95a5a6"}
MIN_ZOOM: Final = RECORD_MIN_ZOOM["needs"]

NEEDS: Final = RecordLayer(
    id="needs", name="居民需求（需求清单）", by="status",
    classes={s: (COLOURS[s], STATUS_LABELS[s]) for s in kinds.NEED_STATUSES},
    popup=(("需求", "title", ""), ("类别", "category", ""), ("涉及户数", "households", " 户"), ("状态", "status_label", ""),
           ("社区", "community_name", ""), ("位置", "place", ""), ("编号", "id", "")),
    legend_title="居民需求：办理状态", min_zoom=MIN_ZOOM, tooltip="title",
)


def needs_layer(needs: gpd.GeoDataFrame, *, name: str | None = None, show: bool = True) -> Overlay:
    open_ = int(needs["status"].isin(kinds.NEED_OPEN_STATUSES).sum()) if len(needs) else 0
    return embedded_overlay(NEEDS, needs, name=name or f"{NEEDS.name}（{len(needs)} 项，未办结 {open_} 项）", show=show)
