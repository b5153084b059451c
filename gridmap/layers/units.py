"""Co-building units (共建单位): schools, companies, clinics… with the resources they can offer."""

from __future__ import annotations

from html import escape

import folium
import geopandas as gpd

from gridmap.layers.base import Overlay, legend_section

COLOUR = "#16a085"


def units_layer(units: gpd.GeoDataFrame, *, name: str = "共建单位", show: bool = False) -> Overlay:
    """``units``: code, name, category, resources (``;``-separated), WGS84 points."""
    group = folium.FeatureGroup(name=f"{name}（{len(units)} 家）", show=show)
    for row, point in zip(units.drop(columns="geometry").to_dict("records"), units.geometry.values):
        resources = "、".join(r.strip() for r in str(row.get("resources") or "").split(";") if r.strip())
        popup = (f'<table class="gm-popup"><tr><th>单位</th><td>{escape(str(row["name"]))}</td></tr>'
                 f'<tr><th>类别</th><td>{escape(str(row.get("category") or ""))}</td></tr>'
                 f'<tr><th>可提供</th><td>{escape(resources) or "—"}</td></tr></table>')
        folium.Marker(
            [round(point.y, 6), round(point.x, 6)],
            icon=folium.DivIcon(html='<div class="gm-unit"><i class="fa-solid fa-handshake"></i></div>',
                                icon_size=(20, 20), icon_anchor=(10, 10), class_name="gm-inc"),
            tooltip=escape(str(row["name"])),
            popup=folium.Popup(popup, max_width=280),
        ).add_to(group)
    return Overlay(group, [legend_section("units", name, [(COLOUR, "共建单位（可提供资源）", "dot")])])
