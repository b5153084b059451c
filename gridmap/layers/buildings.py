"""Buildings: footprints with households, drawn only from a high zoom (their own layer-control entry).

Properties travel with short keys and the popup is built in the page, so the whole sample
county's 4,775 footprints cost about 1 MB of HTML.
"""

from __future__ import annotations

from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np

from gridmap.layers.base import Call, Overlay, Ref, legend_section
from gridmap.layers.geometry import feature_collection, round_coords

DEFAULT_COLOUR = "#8c6d46"
MIN_ZOOM = 16

# (column, short key, label, unit)
FIELDS = [
    ("name", "n", "楼栋", ""),
    ("households", "h", "户数", " 户"),
    ("population", "p", "人口", " 人"),
    ("grid_name", "g", "网格", ""),
    ("distance_m", "d", "最近服务站距离", " 米"),
    ("station_name", "s", "最近服务站", ""),
]


def buildings_layer(
    buildings: gpd.GeoDataFrame,
    *,
    name: str = "楼栋（放大到 16 级显示）",
    min_zoom: int | None = MIN_ZOOM,
    classes: Sequence[tuple[str, str]] | None = None,
    class_column: str = "class",
    legend_title: str = "楼栋",
    show: bool = True,
) -> Overlay:
    """``buildings``: name, households, population and optionally grid_name, distance_m, station_name;
    ``classes`` [(colour, label)] with ``class_column`` the class index of each building."""
    present = [f for f in FIELDS if f[0] in buildings.columns]
    frame = gpd.GeoDataFrame(
        {key: buildings[col].to_numpy() for col, key, _, _ in present},
        geometry=round_coords(buildings.geometry.values),
        crs=buildings.crs,
    )
    if "d" in frame:
        frame["d"] = np.round(frame["d"].astype(float)).astype("Int64")
    palette = [DEFAULT_COLOUR]
    if classes:
        frame["c"] = buildings[class_column].to_numpy().astype(int)
        palette = [c for c, _ in classes]
    group = folium.FeatureGroup(name=name, show=show)
    options = {
        "palette": palette,
        "color_field": "c",
        "style": {"color": "#4d3b26", "weight": 0.6, "fillOpacity": 0.75},
        "tooltip": "n",
        "popup": [[label, key, unit] for _, key, label, unit in present],
        "min_zoom": min_zoom,
    }
    script = Call("features", Ref(group), feature_collection(frame, [k for k in frame.columns if k != "geometry"]),
                  options)
    items = classes or [(DEFAULT_COLOUR, "楼栋（点击查看户数）")]
    hint = f"（{min_zoom} 级以上显示）" if min_zoom else ""
    return Overlay(group, [legend_section("buildings", legend_title + hint, items)], [script])


def uncovered_layer(buildings: gpd.GeoDataFrame, *, radius_m: float, name: str | None = None,
                    show: bool = True) -> Overlay:
    """Households farther than ``radius_m`` from every station: a circle per building, sized by households.

    ``buildings``: name, households, distance_m, station_name (WGS84 footprints or points)."""
    total = int(buildings["households"].sum()) if len(buildings) else 0
    name = name or f"未覆盖住户（距服务站 > {radius_m:g} 米，{len(buildings)} 栋 {total} 户）"
    group = folium.FeatureGroup(name=name, show=show)
    anchors = buildings.geometry.representative_point() if len(buildings) else []
    for row, point in zip(buildings.drop(columns="geometry").to_dict("records"), anchors):
        households = int(row.get("households") or 0)
        folium.CircleMarker(
            [round(point.y, 6), round(point.x, 6)],
            radius=float(3 + np.sqrt(households) * 0.9),
            color="#922b21", weight=1, fill=True, fill_color="#e74c3c", fill_opacity=0.55,
            tooltip=f"{row.get('name', '')}：{households} 户，距最近服务站 {row.get('distance_m', 0):.0f} 米",
        ).add_to(group)
    legend = legend_section("uncovered", "未覆盖住户", [("#e74c3c", f"> {radius_m:g} 米（圆大小 = 户数）", "dot")])
    return Overlay(group, [legend])
