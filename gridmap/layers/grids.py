"""Grids as a choropleth of open incidents or overdue incidents, with a switch between the two.

Clicking a grid shows its community, workers (names and phones), households and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import folium
import geopandas as gpd
import numpy as np

from gridmap.layers.base import Call, Overlay, Ref, legend_section
from gridmap.layers.geometry import feature_collection, simplify_coverage

OPEN_COLOURS = ["#f7f7f7", "#fee5d9", "#fcae91", "#fb6a4a", "#cb181d"]
OVERDUE_COLOURS = ["#f7f7f7", "#efedf5", "#bcbddc", "#9e9ac8", "#54278f"]
COLUMNS = ["code", "name", "community_name", "workers", "households", "building_count", "open_count", "overdue_count"]
Measure = Literal["open", "overdue"]


def class_breaks(values: np.ndarray, classes: int = 4) -> list[int]:
    """Integer lower bounds of the classes above zero (1 is always the first): quantiles of non-zero counts."""
    positive = np.asarray(values, dtype=float)
    positive = positive[positive > 0]
    if not len(positive):
        return [1]
    qs = np.quantile(positive, np.linspace(0, 1, classes + 1)[1:-1])
    return sorted({1, *(int(np.ceil(q)) for q in qs if q > 1)})


def _items(breaks: list[int], colours: list[str]) -> list[tuple[str, str]]:
    items = [(colours[0], "0 件")]
    for i, low in enumerate(breaks):
        high = breaks[i + 1] - 1 if i + 1 < len(breaks) else None
        label = f"{low} 件及以上" if high is None else (f"{low} 件" if high == low else f"{low}–{high} 件")
        items.append((colours[i + 1], label))
    return items


ALIASES = dict(zip(COLUMNS, ["编码", "网格", "社区", "网格员", "户数", "楼栋数", "未办结事件", "超期事件"]))


def grids_layer(grids: gpd.GeoDataFrame, *, name: str = "网格", initial: Measure = "open",
                measures: Sequence[Measure] = ("open", "overdue"), show: bool = True) -> Overlay:
    """``grids``: code, name, community_name, workers (text), households, building_count, open_count,
    overdue_count; WGS84 polygons that tile the area. ``measures``: the counts offered (the public
    map has no overdue figures, so neither the popup nor the switch shows them)."""
    display = simplify_coverage(grids)
    group = folium.FeatureGroup(name=name, show=show)
    columns = [c for c in COLUMNS if c != "overdue_count" or "overdue" in measures]
    tips = [c for c in ("name", "open_count", "overdue_count") if c in columns]
    geojson = folium.GeoJson(
        feature_collection(display, columns),
        name=name,
        style_function=lambda f: {"fillColor": "#f7f7f7", "fillOpacity": 0.55, "color": "#3b3b3b", "weight": 1.2},
        highlight_function=lambda f: {"weight": 3, "color": "#0b5394"},
        tooltip=folium.GeoJsonTooltip(tips, aliases=[{"name": "网格", "open_count": "未办结", "overdue_count": "超期"}[c]
                                                     for c in tips]),
        popup=folium.GeoJsonPopup(columns[1:], aliases=[ALIASES[c] for c in columns[1:]], max_width=320),
    )
    geojson.add_to(group)
    chosen = {}
    for key, field, label, colours in (
        ("open", "open_count", "未办结事件数", OPEN_COLOURS),
        ("overdue", "overdue_count", "超期事件数", OVERDUE_COLOURS),
    ):
        if key not in measures:
            continue
        breaks = class_breaks(grids[field].to_numpy())
        colours = colours[: len(breaks) + 1]
        chosen[key] = {"field": field, "label": f"按{label}", "legend": f"网格：{label}", "breaks": breaks,
                       "colors": colours, "items": [list(i) for i in _items(breaks, colours)]}
    first = chosen[initial]
    legend = legend_section("grids", first["legend"], first["items"])
    switch = Call("choropleth", Ref(geojson), {"initial": initial, "measures": chosen})
    return Overlay(group, [legend], [switch])
