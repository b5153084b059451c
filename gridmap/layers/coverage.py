"""A worker's patch: their grid(s) outlined boldly, with the grid name as a label."""

from __future__ import annotations

import folium
import geopandas as gpd
import shapely

from gridmap.layers.base import Overlay, legend_section
from gridmap.layers.geometry import feature_collection, simplify_coverage

COLOUR = "#0b5394"


def coverage_layer(grids: gpd.GeoDataFrame, *, name: str = "我负责的网格", show: bool = True) -> Overlay:
    """``grids``: code, name, community_name, workers (text), households, building_count (WGS84 polygons)."""
    display = simplify_coverage(grids)
    group = folium.FeatureGroup(name=name, show=show)
    columns = [c for c in ("code", "name", "community_name", "workers", "households", "building_count")
               if c in display.columns]
    aliases = {"code": "编码", "name": "网格", "community_name": "社区", "workers": "网格员", "households": "户数",
               "building_count": "楼栋数"}
    folium.GeoJson(
        feature_collection(display, columns),
        style_function=lambda f: {"color": COLOUR, "weight": 4, "fillColor": COLOUR, "fillOpacity": 0.06},
        tooltip=folium.GeoJsonTooltip(["name"], aliases=["网格"]),
        popup=folium.GeoJsonPopup(columns, aliases=[aliases[c] for c in columns], max_width=300),
    ).add_to(group)
    for label, geom in display[["name", "geometry"]].itertuples(index=False):
        point = shapely.point_on_surface(geom)
        folium.Marker([round(point.y, 6), round(point.x, 6)],
                      icon=folium.DivIcon(html=f"<span>{label}</span>", class_name="gm-label", icon_size=(0, 0)),
                      interactive=False).add_to(group)
    return Overlay(group, [legend_section("coverage", "网格范围", [(COLOUR, name, "line")])])
