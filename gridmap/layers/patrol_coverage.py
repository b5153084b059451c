"""未呼先应 patrol coverage: the buildings workers look after (包楼院), coloured by whether one of them
visited it in the last 30 days, not since, or never; the popup names the responsible workers (their
names are public service contacts) and the last day of a visit.

Input contract (WGS84 footprints): code, name, households, grid_name, workers, state (``visited``,
``stale``, ``never``), state_label, last_visited, days_since.
"""

from __future__ import annotations

from typing import Final

import geopandas as gpd

from gridmap.cogov.patrols import NOT_VISITED_DAYS
from gridmap.layers.base import Overlay
from gridmap.layers.record_layer import RecordLayer, embedded_overlay
from gridmap.layers.tiles import RECORD_MIN_ZOOM

MIN_ZOOM: Final = RECORD_MIN_ZOOM["patrol_coverage"]
"""A town's worth of footprints per tile, as the planner's distance layer."""
STATES: Final = {"visited": ("#27ae60", f"近 {NOT_VISITED_DAYS} 天内走访过"),
                 "stale": ("#e67e22", f"超过 {NOT_VISITED_DAYS} 天未走访"),
                 "never": ("#c0392b", "从未走访")}

PATROL_COVERAGE: Final = RecordLayer(
    id="patrol_coverage", name=f"包楼院走访（近 {NOT_VISITED_DAYS} 天）", by="state",
    classes=dict(STATES),
    popup=(("楼栋", "name", ""), ("户数", "households", " 户"), ("网格", "grid_name", ""), ("包楼院网格员", "workers", ""),
           ("走访情况", "state_label", ""), ("最近走访", "last_visited", ""), ("距今", "days_since", " 天")),
    legend_title=f"包楼院走访：近 {NOT_VISITED_DAYS} 天", shape="polygon", min_zoom=MIN_ZOOM, tooltip="name",
)


def patrol_coverage_layer(buildings: gpd.GeoDataFrame, *, name: str | None = None, show: bool = True) -> Overlay:
    """``name`` defaults to the count of buildings not visited in the window: the ones to walk to next."""
    due = int((buildings["state"] != "visited").sum()) if len(buildings) else 0
    return embedded_overlay(PATROL_COVERAGE, buildings, show=show,
                            name=name or f"{PATROL_COVERAGE.name}：{len(buildings)} 栋，{due} 栋超过 "
                                         f"{NOT_VISITED_DAYS} 天未走访")
