"""County, town and community outlines with community name labels."""

from __future__ import annotations

import folium
import geopandas as gpd
import shapely

from gridmap.layers.base import Overlay, legend_section
from gridmap.layers.geometry import feature_collection, simplify_coverage, simplify_each

LEVELS = {"county": "县（区）", "town": "乡镇（街道）", "community": "社区（村）"}
STYLE = {
    "county": {"color": "#5b2c6f", "weight": 3.5, "dashArray": "8 4"},
    "town": {"color": "#7d3c98", "weight": 2.5, "dashArray": "4 3"},
    "community": {"color": "#1f618d", "weight": 1.8},
}


def regions_layer(regions: gpd.GeoDataFrame, *, name: str = "行政区划", labels: bool = True,
                  show: bool = True) -> Overlay:
    """``regions``: code, name, level (county/town/community), WGS84 polygons."""
    group = folium.FeatureGroup(name=name, show=show)
    communities = simplify_coverage(regions[regions["level"] == "community"])
    others = simplify_each(regions[regions["level"] != "community"])
    for part in (others, communities):
        if not len(part):
            continue
        part = part.assign(level_name=part["level"].map(LEVELS))
        folium.GeoJson(
            feature_collection(part, ["code", "name", "level", "level_name"]),
            style_function=lambda f: {**STYLE.get(f["properties"]["level"], STYLE["community"]),
                                      "fill": False, "fillOpacity": 0},
            tooltip=folium.GeoJsonTooltip(["name", "level_name"], aliases=["名称", "级别"], sticky=True),
            interactive=False,
        ).add_to(group)
    if labels:
        for code, label, geom in communities[["code", "name", "geometry"]].itertuples(index=False):
            point = shapely.point_on_surface(geom)
            folium.Marker(
                [round(point.y, 6), round(point.x, 6)],
                icon=folium.DivIcon(html=f"<span>{label}</span>", class_name="gm-label", icon_size=(0, 0)),
                interactive=False,
            ).add_to(group)
    legend = legend_section("regions", "行政区划", [
        (STYLE["county"]["color"], "县界", "line"),
        (STYLE["town"]["color"], "乡镇界", "line"),
        (STYLE["community"]["color"], "社区界", "line"),
    ])
    return Overlay(group, [legend])
