"""Proposed new service stations (规划新增服务站): numbered markers, Chinese popups, service rings.

Data in, folium out: ``proposals`` is the GeoDataFrame of a siting run
(``gridmap.planning.SitingResult.proposals``: WGS84 points with rank, name, address, community_name,
grid_name, households_new, population_new, nearest_station_name/_m, radius_m …); missing columns
are simply left out of the popup, so any point layer with a ``name`` draws.
"""

from __future__ import annotations

from html import escape
from typing import Any

import folium
import geopandas as gpd

from gridmap.layers.base import Overlay, legend_section

COLOUR = "#7d3c98"
RING_COLOUR = "#7d3c98"

POPUP_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("community_name", "所在社区", ""),
    ("grid_name", "所在网格", ""),
    ("address", "最近地址", ""),
    ("road", "道路", ""),
    ("households_new", "新覆盖户数", " 户"),
    ("population_new", "新覆盖人口", " 人"),
    ("buildings_new", "新覆盖楼栋", " 栋"),
    ("households_nearest", "就近服务户数", " 户"),
    ("demand_served", "容量内服务需求", ""),
    ("nearest_station_name", "最近的现有服务站", ""),
    ("nearest_station_m", "与现有服务站距离", " 米"),
    ("candidate", "候选点编码", ""),
)


def _value(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return escape(str(value))


def popup_html(row: dict[str, Any]) -> str:
    title = escape(str(row.get("name") or "规划站点"))
    rank = row.get("rank")
    head = f"<b>规划站点 {int(rank)}：{title}</b>" if rank not in (None, "") else f"<b>{title}</b>"
    cells = "".join(
        f"<tr><th>{label}</th><td>{text}{unit}</td></tr>"
        for key, label, unit in POPUP_FIELDS
        if (text := _value(row.get(key))) is not None
    )
    coords = ""
    if row.get("lon") is not None and row.get("lat") is not None:
        coords = f"<tr><th>坐标</th><td>{float(row['lon']):.6f}, {float(row['lat']):.6f}</td></tr>"
    return f'{head}<table class="gm-popup">{cells}{coords}</table>'


def proposals_layer(
    proposals: gpd.GeoDataFrame,
    *,
    radius_m: float | None = None,
    name: str = "规划新增服务站",
    rings: bool = True,
    show: bool = True,
) -> Overlay:
    """Markers numbered by rank and, in the same layer-control entry, a ring of the service radius.

    ``radius_m``: the ring; default the frame's ``radius_m`` column, else 500 m.
    """
    frame = proposals.to_crs("EPSG:4326") if proposals.crs else proposals
    if radius_m is None:
        radius_m = float(frame["radius_m"].iloc[0]) if "radius_m" in frame and len(frame) else 500.0
    total = int(frame["households_new"].sum()) if "households_new" in frame and len(frame) else None
    label = f"{name}（{len(frame)} 个" + (f"，新覆盖 {total} 户）" if total is not None else "）")
    group = folium.FeatureGroup(name=label, show=show)
    records = frame.drop(columns="geometry").to_dict("records")
    for n, (row, point) in enumerate(zip(records, frame.geometry.values), start=1):
        rank = row.get("rank") or n
        location = [round(point.y, 6), round(point.x, 6)]
        if rings:
            folium.Circle(location, radius=float(radius_m), color=RING_COLOUR, weight=1.5, dash_array="6 4",
                          fill=True, fill_color=RING_COLOUR, fill_opacity=0.06, interactive=False).add_to(group)
        folium.Marker(
            location,
            icon=folium.DivIcon(
                html=(f'<div class="gm-station gm-proposed" style="background:{COLOUR};color:#fff;'
                      f'border-radius:50%;width:24px;height:24px;line-height:24px;text-align:center;'
                      f'font-weight:bold">{int(rank)}</div>'),
                icon_size=(24, 24), icon_anchor=(12, 12), class_name="gm-inc"),
            tooltip=escape(f"规划站点 {int(rank)}：{row.get('name') or ''}"),
            popup=folium.Popup(popup_html(row), max_width=320),
        ).add_to(group)
    items = [(COLOUR, "规划新增服务站（数字为排序）", "box")]
    if rings:
        items.append((RING_COLOUR, f"服务半径 {radius_m:g} 米", "ring"))
    return Overlay(group, [legend_section("proposals", name, items)])
