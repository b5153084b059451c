"""项目清单 (为民办实事): projects at their needs' points (or their community's centre), coloured by status.

Input contract (WGS84 points): id, title, status, status_label, lead_unit_name, households,
households_benefited, planned_start, planned_end, community_name, needs_count, place.
"""

from __future__ import annotations

from typing import Final

import geopandas as gpd

from gridmap.cogov import kinds
from gridmap.cogov.projects import STATUS_LABELS
from gridmap.layers.base import Overlay
from gridmap.layers.record_layer import RecordLayer, embedded_overlay
from gridmap.layers.tiles import RECORD_MIN_ZOOM

COLOURS: Final = {kinds.PROJECT_PLANNED: "#f39c12", kinds.PROJECT_IN_PROGRESS: "#2e86c1",
                  kinds.PROJECT_COMPLETED: "#27ae60", kinds.PROJECT_EVALUATED: "#117a65"}
"""Cancelled projects are not drawn."""
MIN_ZOOM: Final = RECORD_MIN_ZOOM["projects"]

PROJECTS: Final = RecordLayer(
    id="projects", name="为民办实事项目（项目清单）", by="status",
    classes={s: (c, STATUS_LABELS[s]) for s, c in COLOURS.items()},
    popup=(("项目", "title", ""), ("状态", "status_label", ""), ("牵头单位", "lead_unit_name", ""),
           ("涉及户数", "households", " 户"), ("受益户数", "households_benefited", " 户"),
           ("计划开工", "planned_start", ""), ("计划完工", "planned_end", ""), ("居民评分", "rating", " 分"),
           ("需求数", "needs_count", " 项"), ("社区", "community_name", ""), ("位置", "place", ""), ("编号", "id", "")),
    legend_title="为民办实事项目：状态", min_zoom=MIN_ZOOM, tooltip="title",
)


def projects_layer(projects: gpd.GeoDataFrame, *, name: str | None = None, show: bool = False) -> Overlay:
    return embedded_overlay(PROJECTS, projects, name=name or f"{PROJECTS.name}（{len(projects)} 个）", show=show)
