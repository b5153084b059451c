"""The topology report drawn: one layer per kind of problem (overlaps, gaps, slivers, parts outside the
parent, invalid geometries, split buildings) over plain grid outlines, with a Chinese legend."""

from __future__ import annotations

import folium
import geopandas as gpd

from gridmap.layers.base import Overlay, legend_section
from gridmap.layers.geometry import feature_collection, round_coords

COLOURS = {
    "overlap": "#d7191c",
    "gap": "#2c7bb6",
    "sliver": "#ff7f00",
    "crossing": "#984ea3",
    "invalid": "#000000",
    "split_building": "#e7298a",
}
GRID_COLOUR = "#7f8c8d"


def grid_outlines_layer(grids: gpd.GeoDataFrame, *, name: str = "网格边界") -> Overlay:
    """Grids as thin outlines with their code and name: the frame the problems are read against."""
    group = folium.FeatureGroup(name=name, show=True)
    if len(grids):
        frame = grids[["code", "name", "community_code", "geometry"]].copy()
        frame.geometry = gpd.GeoSeries(round_coords(frame.geometry.values), index=frame.index, crs=grids.crs)
        folium.GeoJson(
            feature_collection(frame, ["code", "name", "community_code"]),
            style_function=lambda f: {"color": GRID_COLOUR, "weight": 1.2, "fillOpacity": 0},
            tooltip=folium.GeoJsonTooltip(["name", "code", "community_code"], aliases=["网格", "编码", "所属社区"],
                                          sticky=True),
        ).add_to(group)
    return Overlay(group, [legend_section("topology-grids", name, [(GRID_COLOUR, "网格边界", "line")])])


def topology_layers(problems: gpd.GeoDataFrame, kinds: dict[str, str]) -> list[Overlay]:
    """``problems``: kind, kind_name, level, codes, parent, area_m2, message (WGS84). One overlay per kind
    in ``kinds`` (kind → Chinese name), empty kinds included so the legend says what was looked for."""
    overlays = []
    for kind, title in kinds.items():
        part = problems[problems["kind"] == kind] if len(problems) else problems
        colour = COLOURS.get(kind, "#555555")
        name = f"{title}（{len(part)} 处）"
        group = folium.FeatureGroup(name=name, show=True)
        if len(part):
            frame = part.copy()
            frame.geometry = gpd.GeoSeries(round_coords(frame.geometry.values, 7), index=frame.index,
                                           crs=part.crs)
            folium.GeoJson(
                feature_collection(frame, ["kind_name", "level", "codes", "parent", "area_m2", "message"]),
                style_function=lambda f, c=colour: {"color": c, "weight": 3, "fillColor": c, "fillOpacity": 0.55},
                tooltip=folium.GeoJsonTooltip(["kind_name", "codes"], aliases=["问题", "涉及"], sticky=True),
                popup=folium.GeoJsonPopup(["kind_name", "level", "codes", "parent", "area_m2", "message"],
                                          aliases=["问题", "层级", "涉及", "上级", "面积（平方米）", "说明"]),
            ).add_to(group)
        overlays.append(Overlay(group, [legend_section(f"topology-{kind}", name, [(colour, title)])]))
    return overlays
