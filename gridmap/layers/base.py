"""The map frame shared by every map: basemaps, controls, legend, the page runtime and rendering.

A layer module returns an ``Overlay`` (a folium ``FeatureGroup`` for the layer control, its
legend sections, and any page script it needs); ``add_overlays`` puts them on a map and registers
them with the runtime (``gridmap.js``) so the GCJ-02 switch, the legend and the tests find them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import folium
from branca.element import Element, MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen, LocateControl, MeasureControl
from folium.template import Template

from gridmap.layers import assets


@dataclass(frozen=True)
class Basemap:
    """A tile source. ``gcj02``: its tiles are in GCJ-02 (高德), so overlays shift while it is shown."""

    name: str
    url: str
    attribution: str
    subdomains: str | None = None
    max_zoom: int = 19
    gcj02: bool = False
    labels_url: str | None = None
    """A second tile layer drawn on top (天地图 注记)."""


class Ref:
    """A folium element passed to a runtime call: rendered as its JavaScript variable."""

    def __init__(self, element: Element) -> None:
        self.element = element

    def __str__(self) -> str:
        return self.element.get_name()


def _js(value: Any) -> str:
    if isinstance(value, Ref):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


class Call(MacroElement):
    """``GM.<fn>(map, args...)`` in the page script, after everything added before it."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        {{ this.assign }}GM.{{ this.fn }}({{ this._parent.get_name() }}{% for a in this.args %}, {{ a }}{% endfor %});
        {% endmacro %}"""
    )

    def __init__(self, fn: str, *args: Any, assign: str | None = None) -> None:
        super().__init__()
        self._name = "GMCall"
        self.fn = fn
        self.args = [_js(a) for a in args]
        self.assign = f"var {assign} = " if assign else ""


class Runtime(JSCSSMixin, MacroElement):
    """Loads gridmap.js/gridmap.css and starts the page state (first thing after the map)."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        GM.init({{ this._parent.get_name() }}, {{ this.options }});
        {% endmacro %}"""
    )
    default_js = [("gridmap_js", "gridmap:gridmap.js")]
    default_css = [("gridmap_css", "gridmap:gridmap.css"), ("awesome_markers_font_css", "fontawesome"),
                   ("fontawesome_solid", "fontawesome")]

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self._name = "GMRuntime"
        self.options = _js(options)


class Script(MacroElement):
    """Raw JavaScript that runs after the elements added before it (``{map}`` is the map's variable)."""

    _template = Template("""{% macro script(this, kwargs) %}{{ this.code.replace("{map}", this._parent.get_name()) }}
    {% endmacro %}""")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "GMScript"
        self.code = code


@dataclass
class Overlay:
    """One entry of the layer control with its legend and page scripts."""

    group: folium.FeatureGroup
    legend: list[dict[str, Any]] = field(default_factory=list)
    scripts: list[MacroElement] = field(default_factory=list)
    extra_groups: list[folium.FeatureGroup] = field(default_factory=list)
    """More layer-control entries that belong to this layer (the incidents heat map)."""

    @property
    def name(self) -> str:
        return self.group.layer_name


def legend_section(section_id: str, title: str, items: Iterable[tuple[str, str] | tuple[str, str, str]]) -> dict:
    return {"id": section_id, "title": title, "items": [list(i) for i in items]}


def new_map(
    *,
    bounds: Sequence[float],
    basemaps: Sequence[Basemap],
    title: str,
    api: str | None = None,
    max_zoom: int = 19,
) -> folium.Map:
    """An empty map over ``bounds`` (minx, miny, maxx, maxy) with the basemaps and the page runtime."""
    minx, miny, maxx, maxy = bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=14,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        max_zoom=max_zoom,
    )
    m.get_root().title = title
    m.get_root().header.add_child(Element('<meta name="google" content="notranslate">'), name="gm_meta")
    m.add_child(Runtime({"api": api}))
    for i, base in enumerate(basemaps):
        tiles = folium.TileLayer(
            tiles=base.url,
            attr=base.attribution,
            name=base.name,
            max_zoom=max_zoom,
            max_native_zoom=base.max_zoom,
            subdomains=base.subdomains or "abc",
            overlay=False,
            show=i == 0,
            gcj02=base.gcj02,
        )
        if base.labels_url:
            group = folium.FeatureGroup(name=base.name, overlay=False, show=i == 0)
            tiles.control = False
            tiles.add_to(group)
            folium.TileLayer(
                tiles=base.labels_url, attr=base.attribution, name=base.name + "注记", max_zoom=max_zoom,
                max_native_zoom=base.max_zoom, subdomains=base.subdomains or "abc", overlay=True, control=False,
            ).add_to(group)
            group.add_to(m)
            m.add_child(Call("basemap", base.name, Ref(group)))
        else:
            tiles.add_to(m)
            m.add_child(Call("basemap", base.name, Ref(tiles)))
    blank = folium.FeatureGroup(name="空白底图（无瓦片）", overlay=False, show=not basemaps)
    blank.add_to(m)
    m.add_child(Call("basemap", "空白底图", Ref(blank)))
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def add_overlays(m: folium.Map, overlays: Iterable[Overlay]) -> list[dict[str, Any]]:
    """Add layers (in drawing order) and register them; returns the legend sections they bring."""
    sections: list[dict[str, Any]] = []
    for overlay in overlays:
        for group in (overlay.group, *overlay.extra_groups):
            group.add_to(m)
            m.add_child(Call("overlay", group.layer_name, Ref(group)))
        for script in overlay.scripts:
            m.add_child(script)
        sections.extend(overlay.legend)
    return sections


def add_controls(
    m: folium.Map,
    *,
    legend: list[dict[str, Any]],
    legend_collapsed: bool = False,
    layers_collapsed: bool = False,
    fullscreen: bool = True,
    locate: bool = True,
    measure: bool = False,
    search: dict[str, Any] | None = None,
    card: str | None = None,
) -> None:
    """The controls, then the signal that the page is drawn."""
    if card:
        m.add_child(Call("card", card))
    if search is not None:
        m.add_child(Call("search", search))
    folium.LayerControl(collapsed=layers_collapsed, position="topright").add_to(m)
    if fullscreen:
        Fullscreen(position="topleft", title="全屏", title_cancel="退出全屏", force_separate_button=True).add_to(m)
    if locate:
        LocateControl(position="topleft", strings={"title": "显示我的位置", "popup": "我在这里（误差 {distance} 米）"},
                      flyTo=True, keepCurrentZoomLevel=False).add_to(m)
    if measure:
        MeasureControl(position="topleft", primary_length_unit="meters", secondary_length_unit="kilometers",
                       primary_area_unit="sqmeters", secondary_area_unit="hectares").add_to(m)
    if legend:
        m.add_child(Call("legend", legend, {"collapsed": legend_collapsed}))
    m.add_child(Call("ready"))


AssetMode = Literal["served", "inline", "beside"]


def render(m: folium.Map, *, mode: AssetMode = "served", assets_dir: Path | None = None, out: Path | None = None) -> str:
    """The page as HTML: scripts linked under /static (served), inlined, or shipped beside ``out``."""
    figure = m.get_root()
    assets.localise(figure)
    html = figure.render()
    if mode == "served":
        return html
    if assets_dir is None:
        raise ValueError("assets_dir is needed to export a map")
    assets.check_assets(assets_dir)
    if mode == "inline":
        return assets.inline(html, assets_dir)
    if out is None:
        raise ValueError("out is needed to ship assets beside the file")
    return assets.ship_beside(html, out, assets_dir)
