"""The tiled layers of the light map pages (dispatcher, planner) drawn by Leaflet.VectorGrid from
``/tiles/{layer}/{z}/{x}/{y}.pbf`` (what each tile holds: ``gridmap.layers.tiles``).

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
from gridmap.layers.needs import NEEDS
from gridmap.layers.patrol_coverage import PATROL_COVERAGE
from gridmap.layers.projects import PROJECTS
from gridmap.layers.record_layer import RecordLayer
from gridmap.layers.resources import RESOURCES
from gridmap.layers.tiles import BUILDINGS_MIN_ZOOM, COVERAGE_MIN_ZOOM, MIN_ZOOM, POINTS_MIN_ZOOM

OPEN_BREAKS: Final = [1, 3, 6, 10]
OVERDUE_BREAKS: Final = [1, 2, 4, 8]
"""Fixed class breaks: a light page never sees every grid's counts, so the classes cannot be quantiles."""
MAX_NATIVE_ZOOM: Final = 19
"""Tiles are asked for up to this zoom; beyond, the last tiles are scaled."""

NAMES: Final = {"regions": "行政区划", "grids": "网格", "precincts": "派出所辖区",
                "buildings": f"楼栋（放大到 {BUILDINGS_MIN_ZOOM} 级显示）", "stations": "党群服务站",
                "units": "共建单位（驻区单位）", "incidents": "事件", "heat": "事件热力图"}
"""Layer-control names: the sample's and existing tests' names; a layer's own minimum zoom is in its legend."""
DISTANCE_CLASSES: Final = [("#1a9850", "≤ 300 米"), ("#a6d96a", "300–500 米"), ("#fdae61", "500–1000 米"),
                           ("#d73027", "> 1000 米")]
REGION_ITEMS: Final = [("#5b2c6f", "县界", "line"), ("#7d3c98", "乡镇界", "line"), ("#1f618d", "社区界", "line")]


class VectorGridAssets(JSCSSMixin, MacroElement):
    """Loads Leaflet.VectorGrid and gridmap's tiled-layer runtime (through the local asset table)."""

    default_js = [("vectorgrid_js", "vectorgrid"), ("leaflet-heat.js", "heat"),
                  ("gridmap_tiles_js", "gridmap:gridmap-tiles.js")]

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


def _options(base: str, now: str | None, layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"base": base, "now": now, "max_native_zoom": MAX_NATIVE_ZOOM, "points_min_zoom": POINTS_MIN_ZOOM,
            "layers": layers, **extra}


def _call(groups: list[folium.FeatureGroup], options: dict[str, Any]) -> Call:
    groups[0].add_child(VectorGridAssets())
    return Call("tiles", options, *[Ref(g) for g in groups], assign="gm_tiles")


DISPATCHER_RECORDS: Final = (PATROL_COVERAGE, RESOURCES, PROJECTS, NEEDS)
"""The co-governance layers of the dispatcher's light page, in drawing order (footprints under points)."""
PLANNER_RECORDS: Final = (RESOURCES, PROJECTS, NEEDS)
RECORDS_SHOWN: Final = frozenset({"needs"})
"""Shown when the page opens; the others are a click away in the layer control."""


def _record_names(layer: RecordLayer) -> str:
    return f"{layer.name}（放大到 {layer.min_zoom} 级显示）" if layer.min_zoom > 11 else layer.name


def _record_overlays(records: tuple[RecordLayer, ...], groups: dict[str, folium.FeatureGroup]) -> list[Overlay]:
    return [Overlay(groups[r.id], r.legend(f"{r.legend_title}（{r.min_zoom} 级以上）")) for r in records]


def tiled_layers(*, base: str = "/tiles", now: str | None = None, only_open: bool = True,
                 records: tuple[RecordLayer, ...] = DISPATCHER_RECORDS) -> list[Overlay]:
    """The dispatcher's overlays (layer-control entries) and the one call that fills them with vector tiles:
    region outlines, grids, precincts, buildings, stations, co-building units, the co-governance layers
    (``records``: patrol coverage of the 包楼院 buildings, resources, projects, needs by status), incidents
    (clusters with their numbers below the points zoom, overdue rings) and a heat map of the incidents in view."""
    order = ["regions", "grids", "precincts", "buildings", "stations", "units", *(r.id for r in records), "incidents"]
    shown = {"precincts": False, "units": False, **{r.id: r.id in RECORDS_SHOWN for r in records}}
    names = {**NAMES, **{r.id: _record_names(r) for r in records}}
    groups = {layer: folium.FeatureGroup(name=names[layer], show=shown.get(layer, True)) for layer in order}
    heat = folium.FeatureGroup(name=NAMES["heat"], show=False)
    measures = _measures()
    groups_of_categories = sorted({(c.group, c.group_name) for c in CATEGORIES.values()})
    specs = [{"id": layer} for layer in order]
    by_id = {r.id: r for r in records}
    specs = [by_id[layer].tile_spec() if layer in by_id else spec for layer, spec in zip(order, specs)]
    specs[0]["interactive"] = False  # outlines: clicks go to the grids under them
    for spec in specs:
        if spec["id"] in MIN_ZOOM:
            spec["min_zoom"] = MIN_ZOOM[spec["id"]]
    options = _options(
        base, now, specs,
        derived={"heat": len(order)},
        choropleth={"initial": "open", "measures": measures},
        filters=True,
        statuses={k: {"label": label, "color": colour, "open": open_} for k, (label, colour, open_) in STATUSES.items()},
        open_statuses=sorted(OPEN_STATUSES),
        default_status=sorted(OPEN_STATUSES) if only_open else [],
        default_status_choice="@open" if only_open else "",
        groups=[list(g) for g in groups_of_categories],
    )
    call = _call([*(groups[k] for k in order), heat], options)
    first = measures["open"]
    status_items = [(colour, label, "dot") for label, colour, _ in STATUSES.values()]
    return [
        Overlay(groups["regions"], [legend_section("regions", "行政区划", REGION_ITEMS)]),
        Overlay(groups["grids"], [legend_section("grids", first["legend"], first["items"])]),  # from MIN_ZOOM
        Overlay(groups["precincts"], [legend_section("precincts", "派出所辖区", [("#1a5276", "派出所辖区界", "line")])]),
        Overlay(groups["buildings"], [legend_section("buildings", NAMES["buildings"],
                                                     [("#8c6d46", "楼栋（点击查看户数）")])]),
        Overlay(groups["stations"], [legend_section("stations", "党群服务站", [("#c0392b", "党群服务站", "dot")])]),
        Overlay(groups["units"], [legend_section("units", "共建单位", [("#16a085", "共建单位（可提供资源）", "dot")])]),
        *_record_overlays(records, groups),
        Overlay(groups["incidents"], [
            legend_section("incident-status", "事件状态（红圈：超期）", status_items),
            legend_section("incident-clusters", f"事件聚合（{POINTS_MIN_ZOOM} 级以下，数字为件数）",
                           [("#c0392b", "含超期", "dot"), ("#e67e22", "含未办结", "dot"), ("#7f8c8d", "均已办结", "dot")]),
        ], [call], [heat]),
    ]


def console_tiles(*, base: str = "/tiles", incident_link: str = "/console/incidents/{id}") -> dict[str, Any]:
    """The options of ``GM.tiles`` for the console pages (issue #15): region outlines, grids coloured by the
    caller's open or overdue incidents, and the incidents as the dispatcher's light page draws them (clusters
    below the points zoom, status colours, overdue rings). The page sets the incidents' filters itself (the
    queue's, as ``/v1/incidents`` takes them) and its popups link to the incident's page."""
    order = ["regions", "grids", "incidents"]
    specs: list[dict[str, Any]] = [{"id": layer} for layer in order]
    specs[0]["interactive"] = False
    for spec in specs:
        if spec["id"] in MIN_ZOOM:
            spec["min_zoom"] = MIN_ZOOM[spec["id"]]
    return _options(
        base, None, specs, choropleth={"initial": "open", "measures": _measures()}, filters=False,
        statuses={k: {"label": label, "color": colour, "open": open_} for k, (label, colour, open_) in STATUSES.items()},
        open_statuses=sorted(OPEN_STATUSES), default_status=[], incident_link=incident_link,
        names={"regions": NAMES["regions"], "grids": NAMES["grids"], "incidents": NAMES["incidents"]},
    )


def planner_layers(*, base: str = "/tiles", radius_m: float, rings: tuple[int, ...], ring_colours: dict[int, str],
                   scenario: int | None = None, after: str = "", uncovered_name: str,
                   records: tuple[RecordLayer, ...] = PLANNER_RECORDS) -> list[Overlay]:
    """The planner's overlays, all by viewport: region outlines, buildings coloured by the straight-line distance
    to the nearest station (with the scenario's sites when one is named), the buildings beyond ``radius_m``,
    the co-governance layers (``records``: resources, projects, needs by status: where demand is asking),
    stations and their service rings."""
    names = {"regions": "行政区划", "coverage": f"楼栋：到最近服务站的直线距离{after}",
             "uncovered": uncovered_name, "stations": "党群服务站", **{r.id: _record_names(r) for r in records}}
    order = ["regions", "coverage", "uncovered", *(r.id for r in records), "stations"]
    groups = {k: folium.FeatureGroup(name=names[k], show=k not in {r.id for r in records} or k in RECORDS_SHOWN)
              for k in order}
    ring_group = folium.FeatureGroup(name=f"党群服务站服务半径 {'/'.join(map(str, rings))} 米", show=True)
    specs = [{"id": "regions", "interactive": False}, {"id": "coverage", "min_zoom": COVERAGE_MIN_ZOOM},
             {"id": "uncovered", "source": "coverage", "min_zoom": COVERAGE_MIN_ZOOM},
             *(r.tile_spec() for r in records),
             {"id": "stations", "min_zoom": MIN_ZOOM["stations"]}]
    options = _options(base, None, specs, derived={"rings": len(order)}, radius_m=radius_m, scenario=scenario,
                       rings=[[r, ring_colours.get(r, "#555")] for r in rings])
    call = _call([*(groups[k] for k in order), ring_group], options)
    return [
        Overlay(groups["regions"], [legend_section("regions", "行政区划", REGION_ITEMS)]),
        Overlay(groups["coverage"], [legend_section(
            "coverage", f"楼栋到最近服务站距离{after}（放大到 {COVERAGE_MIN_ZOOM} 级显示）", DISTANCE_CLASSES)]),
        Overlay(groups["uncovered"], [legend_section("uncovered", f"服务半径 {radius_m:g} 米外的楼栋",
                                                     [("#c0392b", "未覆盖楼栋")])]),
        *_record_overlays(records, groups),
        Overlay(groups["stations"], [legend_section(
            "stations", "党群服务站", [("#c0392b", "党群服务站", "dot"),
                                   *[(ring_colours.get(r, "#555"), f"服务半径 {r} 米", "ring") for r in rings]])],
                [call], [ring_group]),
    ]
