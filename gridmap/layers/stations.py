"""Party-mass service stations (党群服务站): icons, popups, optional 300/500/1000 m service rings."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import folium
import geopandas as gpd

from gridmap.layers.base import Overlay, legend_section

RING_COLOURS = {300: "#1e8449", 500: "#d68910", 1000: "#a93226"}
RINGS = (300, 500, 1000)


def _popup(row: dict, fields: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{label}</th><td>{escape(str(row[col]))}</td></tr>"
                    for col, label in fields if row.get(col) not in (None, ""))
    return f'<table class="gm-popup">{cells}</table>'


def stations_layer(
    stations: gpd.GeoDataFrame,
    *,
    name: str = "党群服务站",
    rings: Sequence[int] = RINGS,
    rings_shown: bool = False,
    proposed: bool = False,
    show: bool = True,
) -> Overlay:
    """``stations``: code, name and optionally kind, address, community_name, distance_m (WGS84 points)."""
    group = folium.FeatureGroup(name=f"{name}（{len(stations)} 个）", show=show)
    css = "gm-station gm-proposed" if proposed else "gm-station"
    icon = "fa-flag" if proposed else "fa-house-flag"
    fields = [("name", "名称"), ("kind", "类型"), ("community_name", "社区"), ("address", "地址"),
              ("distance_m", "距离（米）"), ("note", "说明")]
    records = stations.drop(columns="geometry").to_dict("records")
    for row, point in zip(records, stations.geometry.values):
        folium.Marker(
            [round(point.y, 6), round(point.x, 6)],
            icon=folium.DivIcon(html=f'<div class="{css}"><i class="fa-solid {icon}"></i></div>',
                                icon_size=(24, 24), icon_anchor=(12, 12), class_name="gm-inc"),
            tooltip=escape(str(row["name"])),
            popup=folium.Popup(_popup(row, fields), max_width=300),
        ).add_to(group)
    legend_items = [("#8e44ad" if proposed else "#c0392b", name, "box")]
    extra = []
    if rings:
        ring_group = folium.FeatureGroup(name=f"{name}服务半径 {'/'.join(map(str, rings))} 米", show=rings_shown)
        for point in stations.geometry.values:
            for radius in sorted(rings, reverse=True):
                folium.Circle(
                    [round(point.y, 6), round(point.x, 6)], radius=radius,
                    color=RING_COLOURS.get(radius, "#555"), weight=1.2, dash_array="5 4", fill=False, interactive=False,
                ).add_to(ring_group)
        extra.append(ring_group)
        legend_items += [(RING_COLOURS.get(r, "#555"), f"服务半径 {r} 米", "ring") for r in rings]
    section_id = "proposals" if proposed else "stations"
    return Overlay(group, [legend_section(section_id, name, legend_items)], [], extra)
