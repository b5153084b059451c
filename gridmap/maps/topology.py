"""The topology map page (``/maps/topology``): the report's problem geometries over the boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gridmap.layers import Basemap, add_controls, add_overlays, new_map, render
from gridmap.layers.regions import regions_layer
from gridmap.layers.topology import grid_outlines_layer, topology_layers
from gridmap.topology.report import KINDS, TopologyReport


def topology_page(report: TopologyReport, layers: dict[str, Any], basemaps: Sequence[Basemap]) -> str:
    """The page as served HTML (scripts under /static): regions, grid outlines and one layer per kind."""
    grids, regions = layers["grids"], layers["regions"]
    bounds = (grids if len(grids) else regions).total_bounds
    m = new_map(bounds=bounds, basemaps=basemaps, title="网格化服务管理 · 边界拓扑检查")
    overlays = [regions_layer(regions), grid_outlines_layer(grids), *topology_layers(report.frame(), KINDS)]
    legend = add_overlays(m, overlays)
    counts = report.counts()
    summary = " · ".join(f"{name} <b>{counts[kind]}</b>" for kind, name in KINDS.items())
    state = "未发现问题" if report.clean else f"错误 {report.errors} 处，警告 {len(report.items) - report.errors} 处"
    card = (f"<h3>边界拓扑检查</h3><div>{state}</div><div>{summary}</div>"
            f"<div class='gm-muted'>面积小于 {report.tolerance_m2:g} 平方米视为坐标误差；"
            f"窄于 {report.sliver_width_m:g} 米的部分为狭长碎片</div>")
    add_controls(m, legend=legend, card=card, locate=False, measure=True)
    return render(m)
