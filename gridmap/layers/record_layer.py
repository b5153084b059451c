"""What the co-governance layers (needs, resources, projects, patrol coverage) share: a layer is described
once, as a ``RecordLayer`` (its colours per class, its popup fields, its legend), and drawn either
embedded in the page (folium, for the worker's map and exported files) or by viewport from vector tiles
(``gridmap-tiles.js`` styles and fills popups from the same description), so both show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Literal

import folium
import geopandas as gpd

from gridmap.layers.base import Call, Overlay, Ref, legend_section
from gridmap.layers.geometry import feature_collection, round_coords


@dataclass(frozen=True)
class RecordLayer:
    """One co-governance layer: its tile layer id, layer-control name, the property its colour follows and
    the colour and Chinese label of each value, and its popup fields [(label, property, unit)]."""

    id: str
    name: str
    by: str
    classes: dict[str, tuple[str, str]]
    """value → (colour, label), in legend order."""
    popup: tuple[tuple[str, str, str], ...]
    legend_title: str
    shape: Literal["point", "polygon"] = "point"
    min_zoom: int = 0
    default_colour: str = "#7f8c8d"
    tooltip: str = ""

    def legend(self, title: str | None = None) -> list[dict[str, Any]]:
        shape = "dot" if self.shape == "point" else "box"
        return [legend_section(self.id, title or self.legend_title,
                               [(colour, label, shape) for colour, label in self.classes.values()])]

    def tile_spec(self) -> dict[str, Any]:
        """What ``GM.tiles`` needs to draw the layer from ``/tiles/<id>``: style by class, popup fields."""
        style = {"by": self.by, "colors": {k: c for k, (c, _) in self.classes.items()}, "default": self.default_colour}
        return {"id": self.id, "min_zoom": self.min_zoom, self.shape: style,
                "popup": [list(field) for field in self.popup]}

    def colour(self, value: Any) -> str:
        found = self.classes.get(str(value))
        return found[0] if found else self.default_colour


def popup_html(layer: RecordLayer, row: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{escape(label)}</th><td>{escape(f'{row[key]}{unit}')}</td></tr>"
                    for label, key, unit in layer.popup if row.get(key) not in (None, ""))
    return f'<table class="gm-popup">{cells}</table>'


def embedded_overlay(layer: RecordLayer, frame: gpd.GeoDataFrame, *, name: str | None = None, show: bool = True,
                     legend_title: str | None = None) -> Overlay:
    """The layer with its features in the page: circle markers (points) or footprints (polygons)."""
    group = folium.FeatureGroup(name=name or f"{layer.name}（{len(frame)}）", show=show)
    rows = frame.drop(columns=frame.geometry.name).to_dict("records") if len(frame) else []
    scripts = []
    if layer.shape == "point":
        for row, point in zip(rows, frame.geometry.values):
            folium.CircleMarker(
                [round(point.y, 6), round(point.x, 6)], radius=7, color="#ffffff", weight=2, fill=True,
                fill_color=layer.colour(row.get(layer.by)), fill_opacity=0.95,
                tooltip=escape(str(row.get(layer.tooltip) or "")) if layer.tooltip else None,
                popup=folium.Popup(popup_html(layer, row), max_width=300),
            ).add_to(group)
    else:
        keys = list(layer.classes)
        columns = sorted({key for _, key, _ in layer.popup} | ({layer.tooltip} if layer.tooltip else set()))
        shown = gpd.GeoDataFrame({c: frame[c].to_numpy() for c in columns if c in frame},
                                 geometry=round_coords(frame.geometry.values), crs=frame.crs)
        shown["c"] = [keys.index(str(v)) if str(v) in keys else len(keys) for v in frame[layer.by]] if len(frame) else []
        options = {"palette": [c for c, _ in layer.classes.values()] + [layer.default_colour], "color_field": "c",
                   "style": {"color": "#4d4d4d", "weight": 0.8, "fillOpacity": 0.8},
                   "tooltip": layer.tooltip or None,
                   "popup": [[label, key, unit] for label, key, unit in layer.popup], "min_zoom": None}
        scripts.append(Call("features", Ref(group), feature_collection(shown, [c for c in shown.columns
                                                                               if c != "geometry"]), options))
    return Overlay(group, layer.legend(legend_title), scripts)
