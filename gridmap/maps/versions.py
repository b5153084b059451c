"""The boundary diff page (``/maps/versions?a=&b=``): what a redraw changes, over the newer outlines."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from gridmap.layers import Basemap, add_controls, add_overlays, new_map, render
from gridmap.layers.regions import regions_layer
from gridmap.layers.topology import grid_outlines_layer
from gridmap.layers.versions import version_diff_layers


def versions_page(answer: dict[str, Any], geojson: dict[str, Any], grids_after: Any, regions: Any,
                  basemaps: Sequence[Basemap]) -> str:
    """Served HTML (scripts under /static): regions, the newer version's grid outlines, the changes."""
    bounds = (grids_after if len(grids_after) else regions).total_bounds
    m = new_map(bounds=bounds, basemaps=basemaps, title="网格化服务管理 · 网格版本对比")
    overlays = [regions_layer(regions), grid_outlines_layer(grids_after, name="新版本网格边界"),
                *version_diff_layers(geojson)]
    legend = add_overlays(m, overlays)
    a, b, counts = answer["from"], answer["to"], answer["counts"]
    card = (f"<h3>网格版本对比</h3>"
            f"<div>版本 {a['id']}（{escape(a['effective_from'])} 起）→ 版本 {b['id']}（{escape(b['effective_from'])} 起）</div>"
            f"<div>新增 <b>{counts['grids_added']}</b> · 撤销 <b>{counts['grids_removed']}</b> · "
            f"调整 <b>{counts['grids_reshaped']}</b> 个网格</div>"
            f"<div>改变所属网格的楼栋 <b>{counts['buildings_moved']}</b> 栋，"
            f"<b>{answer['households_moved']}</b> 户；涉及网格员 <b>{len(answer['workers_affected'])}</b> 人</div>")
    add_controls(m, legend=legend, card=card, locate=False, measure=True)
    return render(m)
