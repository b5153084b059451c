"""Incidents: clustered markers coloured by status with an icon per category group, a popup with
category, time, status and assignee, filters (status, category, period) and a heat-map toggle.

Input contract (WGS84 points): id, category, category_name, category_group, status, status_label,
priority, grid_code, community_code, assignee_name, reported_at (tz-aware UTC), due_at, overdue,
supervised. Rows travel as compact arrays; markers and popups are made in the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.elements import JSCSSMixin

from gridmap.layers.base import Call, Overlay, Script, legend_section

STATUSES: dict[str, tuple[str, str, bool]] = {
    # code: (label, colour, still open)
    "reported": ("上报", "#e74c3c", True),
    "accepted": ("受理", "#e67e22", True),
    "dispatched": ("派遣", "#d4ac0d", True),
    "in_progress": ("处置中", "#2e86c1", True),
    "returned": ("退回", "#8e44ad", True),
    "resolved": ("已处置", "#27ae60", False),
    "verified": ("核查", "#148f77", False),
    "closed": ("结案", "#7f8c8d", False),
    "cancelled": ("作废", "#b3b6b7", False),
}
OPEN_STATUSES = frozenset(k for k, (_, _, open_) in STATUSES.items() if open_)

GROUP_ICONS: dict[str, str] = {
    "安全隐患": "fa-triangle-exclamation",
    "基础设施": "fa-lightbulb",
    "环境卫生": "fa-broom",
    "矛盾纠纷": "fa-people-arrows",
    "民生服务": "fa-hand-holding-heart",
    "治安": "fa-shield-halved",
    "其他": "fa-circle-info",
    "": "fa-circle-exclamation",
}

COLUMNS = ["id", "lat", "lon", "status", "group", "category_name", "reported_at", "due_at", "assignee_name",
           "overdue", "supervised", "grid_code"]


class ClusterAssets(JSCSSMixin, MacroElement):
    """Loads Leaflet.markercluster and Leaflet.heat (through the local asset table)."""

    default_js = [("markerclusterjs", "markercluster"), ("leaflet-heat.js", "heat")]
    default_css = [("markerclustercss", "markercluster"), ("markerclusterdefaultcss", "markercluster")]

    def __init__(self) -> None:
        super().__init__()
        self._name = "GMClusterAssets"


def _iso(values: pd.Series) -> list[str | None]:
    times = pd.to_datetime(values, utc=True, errors="coerce")
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") if not pd.isna(t) else None for t in times]


OPTIONAL = frozenset({"assignee_name", "due_at"})
"""Row columns sent only when the frame has them: a view without assignees (the public map) sends none."""


def incident_columns(incidents: gpd.GeoDataFrame) -> list[str]:
    return [c for c in COLUMNS if c not in OPTIONAL or c in incidents]


def incident_rows(incidents: gpd.GeoDataFrame) -> list[list]:
    n = len(incidents)
    if not n:
        return []

    def text(column: str) -> list:
        if column not in incidents:
            return [""] * n
        return incidents[column].fillna("").astype(str).tolist()

    def flag(column: str) -> list:
        if column not in incidents:
            return [0] * n
        return incidents[column].fillna(False).astype(bool).astype(int).tolist()

    geoms = incidents.geometry.values
    lat = np.round(geoms.y, 6).tolist()
    lon = np.round(geoms.x, 6).tolist()
    values = {"id": text("id"), "lat": lat, "lon": lon, "status": text("status"), "group": text("category_group"),
              "category_name": text("category_name"),
              "reported_at": _iso(incidents["reported_at"]) if "reported_at" in incidents else [None] * n,
              "due_at": _iso(incidents["due_at"]) if "due_at" in incidents else [None] * n,
              "assignee_name": text("assignee_name"), "overdue": flag("overdue"), "supervised": flag("supervised"),
              "grid_code": text("grid_code")}
    return [list(row) for row in zip(*(values[c] for c in incident_columns(incidents)))]


def incidents_layer(
    incidents: gpd.GeoDataFrame,
    *,
    now: datetime | None = None,
    grid_names: Mapping[str, str] | None = None,
    name: str = "事件",
    heat: bool = True,
    filters: bool = True,
    only_open: bool = False,
    show: bool = True,
) -> Overlay:
    """``only_open``: the status filter starts at 未办结 (the dispatcher's usual view; 全部 shows the rest)."""
    group = folium.FeatureGroup(name=f"{name}（{len(incidents)} 件）", show=show)
    group.add_child(ClusterAssets())
    heat_group = folium.FeatureGroup(name=f"{name}热力图", show=False) if heat else None
    var = f"{group.get_name()}_incidents"
    options = {
        "columns": incident_columns(incidents),
        "rows": incident_rows(incidents),
        "statuses": {k: {"label": label, "color": colour, "open": open_} for k, (label, colour, open_) in STATUSES.items()},
        "groups": {g: {"icon": icon} for g, icon in GROUP_ICONS.items()},
        "grid_names": dict(grid_names or {}),
        "heat": heat,
        "filters": filters,
        "default_status": "@open" if only_open else "",
        "now": (now or datetime.now().astimezone()).isoformat(),
    }
    scripts = [Call("incidents", options, assign=var),
               Script(f"{var}.cluster.addTo({group.get_name()});" +
                      (f" {var}.heat.addTo({heat_group.get_name()});" if heat_group else ""))]
    status_legend = legend_section("incident-status", "事件状态（红圈：超期）",
                                   [(colour, label, "dot") for label, colour, _ in STATUSES.values()])
    group_legend = legend_section("incident-groups", "事件类别",
                                  [(icon, g, "icon") for g, icon in GROUP_ICONS.items() if g])
    return Overlay(group, [status_legend, group_legend], scripts, [heat_group] if heat_group else [])
