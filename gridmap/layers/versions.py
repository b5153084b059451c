"""A boundary diff drawn: grids added, removed, reshaped (before and after) and the buildings that moved
to another grid, each its own layer with a Chinese legend, over the newer version's outlines."""

from __future__ import annotations

from typing import Any, Final

import folium

from gridmap.layers.base import Overlay, legend_section

CHANGES: Final = {
    "added": ("新增网格", "#1a9641"),
    "removed": ("撤销网格", "#d7191c"),
    "reshaped_before": ("调整前边界", "#fdae61"),
    "reshaped_after": ("调整后边界", "#2b83ba"),
    "building_moved": ("改变所属网格的楼栋", "#7b3294"),
}
FIELDS: Final = {"code": "编码", "name": "名称", "area_m2": "面积（平方米）", "area_change_m2": "面积变化（平方米）",
                 "from_grid": "原网格", "to_grid": "新网格", "households": "户数"}


def version_diff_layers(geojson: dict[str, Any]) -> list[Overlay]:
    """One overlay per kind of change in ``CHANGES``, empty ones included so the legend says what was
    looked for; popups give the figures of the diff."""
    overlays = []
    for change, (title, colour) in CHANGES.items():
        features = [f for f in geojson["features"] if f["properties"]["change"] == change]
        name = f"{title}（{len(features)}）"
        group = folium.FeatureGroup(name=name, show=True)
        if features:
            fields = [k for k in FIELDS if k in features[0]["properties"]]
            dashed = "6 4" if change == "reshaped_before" else None
            folium.GeoJson(
                {"type": "FeatureCollection", "features": features},
                style_function=lambda f, c=colour, d=dashed: {"color": c, "weight": 3, "fillColor": c,
                                                               "fillOpacity": 0.25, "dashArray": d},
                marker=folium.CircleMarker(radius=5, fill=True, color=colour, fill_opacity=0.9),
                tooltip=folium.GeoJsonTooltip(fields[:2], aliases=[FIELDS[k] for k in fields[:2]], sticky=True),
                popup=folium.GeoJsonPopup(fields, aliases=[FIELDS[k] for k in fields]),
            ).add_to(group)
        overlays.append(Overlay(group, [legend_section(f"versions-{change}", name, [(colour, title)])]))
    return overlays
