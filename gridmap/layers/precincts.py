"""Police precincts (派出所辖区): dashed outlines, name and phone in the popup (警格联动)."""

from __future__ import annotations

import folium
import geopandas as gpd

from gridmap.layers.base import Overlay, legend_section
from gridmap.layers.geometry import feature_collection, simplify_coverage

COLOUR = "#1a5276"


def precincts_layer(precincts: gpd.GeoDataFrame, *, name: str = "派出所辖区", show: bool = False) -> Overlay:
    """``precincts``: code, name, phone (WGS84 polygons)."""
    group = folium.FeatureGroup(name=name, show=show)
    if len(precincts):
        folium.GeoJson(
            feature_collection(simplify_coverage(precincts), ["code", "name", "phone"]),
            style_function=lambda f: {"color": COLOUR, "weight": 2.5, "dashArray": "10 6", "fillColor": COLOUR,
                                      "fillOpacity": 0.04},
            tooltip=folium.GeoJsonTooltip(["name"], aliases=["派出所"]),
            popup=folium.GeoJsonPopup(["name", "phone"], aliases=["派出所", "电话"]),
        ).add_to(group)
    return Overlay(group, [legend_section("precincts", name, [(COLOUR, "派出所辖区界", "line")])])
