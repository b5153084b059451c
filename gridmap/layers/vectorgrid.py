"""The tiled layers of a light map page: grids, buildings, stations and incidents drawn by Leaflet.VectorGrid
from ``/tiles/{layer}/{z}/{x}/{y}.pbf`` (what each tile holds: ``gridmap.layers.tiles``).

The page carries no features: only layer names, styles, legends and the filter panel. Each pan or zoom
fetches the tiles in view; the server simplifies, clusters, filters and shifts to GCJ-02.
"""

from __future__ import annotations

from typing import Any, Final

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin

from gridmap.incidents.categories import CATEGORIES
from gridmap.layers.base import Call, Overlay, Ref, legend_section
from gridmap.layers.grids import OPEN_COLOURS, OVERDUE_COLOURS, _items
from gridmap.layers.incidents import OPEN_STATUSES, STATUSES
from gridmap.layers.tiles import BUILDINGS_MIN_ZOOM, POINTS_MIN_ZOOM

OPEN_BREAKS: Final = [1, 3, 6, 10]
OVERDUE_BREAKS: Final = [1, 2, 4, 8]
"""Fixed class breaks: a light page never sees every grid's counts, so the classes cannot be quantiles."""
MAX_NATIVE_ZOOM: Final = 19
"""Tiles are asked for up to this zoom; beyond, the last tiles are scaled."""

NAMES: Final = {"grids": "网格", "buildings": f"楼栋（放大到 {BUILDINGS_MIN_ZOOM} 级显示）", "stations": "党群服务站",
                "incidents": "事件"}


class VectorGridAssets(JSCSSMixin, MacroElement):
    """Loads Leaflet.VectorGrid and gridmap's tiled-layer runtime (through the local asset table)."""

    default_js = [("vectorgrid_js", "vectorgrid"), ("gridmap_tiles_js", "gridmap:gridmap-tiles.js")]

    def __init__(self) -> None:
        super().__init__()
        self._name = "GMVectorGridAssets"


def _measures() -> dict[str, dict[str, Any]]:
    out = {}
    for key, field, label, colours, breaks in (("open", "open", "未办结事件数", OPEN_COLOURS, OPEN_BREAKS),
                                               ("overdue", "overdue", "超期事件数", OVERDUE_COLOURS, OVERDUE_BREAKS)):
        out[key] = {"field": field, "label": f"按{label}", "legend": f"网格：{label}", "breaks": breaks,
                    "colors": colours[: len(breaks) + 1], "items": [list(i) for i in _items(breaks, colours)]}
    return out


def tiled_layers(*, base: str = "/tiles", now: str | None = None, only_open: bool = True) -> list[Overlay]:
    """The four overlays (layer-control entries) and the one call that fills them with vector tiles."""
    groups = {layer: folium.FeatureGroup(name=name, show=True) for layer, name in NAMES.items()}
    groups["grids"].add_child(VectorGridAssets())
    measures = _measures()
    groups_of_categories = sorted({(c.group, c.group_name) for c in CATEGORIES.values()})
    options = {
        "base": base,
        "now": now,
        "max_native_zoom": MAX_NATIVE_ZOOM,
        "min_zoom": {"buildings": BUILDINGS_MIN_ZOOM},
        "points_min_zoom": POINTS_MIN_ZOOM,
        "choropleth": {"initial": "open", "measures": measures},
        "statuses": {k: {"label": label, "color": colour, "open": open_} for k, (label, colour, open_) in STATUSES.items()},
        "open_statuses": sorted(OPEN_STATUSES),
        "default_status": sorted(OPEN_STATUSES) if only_open else [],
        "default_status_choice": "@open" if only_open else "",
        "groups": [list(g) for g in groups_of_categories],
    }
    call = Call("tiles", Ref(groups["grids"]), Ref(groups["buildings"]), Ref(groups["stations"]),
                Ref(groups["incidents"]), options, assign="gm_tiles")
    first = measures["open"]
    status_items = [(colour, label, "dot") for label, colour, _ in STATUSES.values()]
    return [
        Overlay(groups["grids"], [legend_section("grids", first["legend"], first["items"])]),
        Overlay(groups["buildings"], [legend_section("buildings", NAMES["buildings"],
                                                     [("#8c6d46", "楼栋（点击查看户数）")])]),
        Overlay(groups["stations"], [legend_section("stations", "党群服务站", [("#c0392b", "党群服务站", "dot")])]),
        Overlay(groups["incidents"], [
            legend_section("incident-status", "事件状态（红圈：超期）", status_items),
            legend_section("incident-clusters", f"事件聚合（{POINTS_MIN_ZOOM} 级以下，圆越大件数越多）",
                           [("#c0392b", "含超期", "dot"), ("#e67e22", "含未办结", "dot"), ("#7f8c8d", "均已办结", "dot")]),
        ], [call]),
    ]
