"""Assemble the dispatcher, worker, planner and public maps from the coverage index and the incidents."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.access import incidents_for_map
from gridmap.auth import ANONYMOUS
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput, NotFound
from gridmap.geo import WGS84
from gridmap.layers import Basemap, add_controls, add_overlays, new_map, render
from gridmap.layers.base import AssetMode
from gridmap.layers.buildings import buildings_layer, uncovered_layer
from gridmap.layers.coverage import coverage_layer
from gridmap.layers.geometry import bounds_of
from gridmap.layers.grids import grids_layer
from gridmap.layers.incidents import incidents_layer
from gridmap.layers.needs import needs_layer
from gridmap.layers.patrol_coverage import patrol_coverage_layer
from gridmap.layers.precincts import precincts_layer
from gridmap.layers.projects import projects_layer
from gridmap.layers.regions import regions_layer
from gridmap.layers.resources import resources_layer
from gridmap.layers.stations import RING_COLOURS, RINGS, stations_layer
from gridmap.layers.tiles import COVERAGE_MIN_ZOOM, MIN_ZOOM, distance_targets
from gridmap.layers.units import units_layer
from gridmap.layers.vectorgrid import planner_layers, tiled_layers
from gridmap.maps.incidents import OPEN_STATUSES, empty_incidents

MapKind = Literal["dispatcher", "worker", "planner", "public"]
KINDS: tuple[str, ...] = ("dispatcher", "worker", "planner", "public")

DISTANCE_CLASSES = [(300, "#1a9850", "≤ 300 米"), (500, "#a6d96a", "300–500 米"), (1000, "#fdae61", "500–1000 米"),
                    (None, "#d73027", "> 1000 米")]


@dataclass
class MapContext:
    """What every map is drawn from."""

    coverage: Coverage
    basemaps: list[Basemap]
    incidents: gpd.GeoDataFrame = field(default_factory=empty_incidents)
    units: gpd.GeoDataFrame | None = None
    api: str | None = "/v1/lookup"
    """Address search endpoint (None in exported files: only grid and community names are searched)."""
    now: datetime | None = None
    cogov: dict[str, gpd.GeoDataFrame] | None = None
    """The co-governance layers already cut for the viewer (``gridmap.maps.cogov``): needs, resources,
    projects, patrol_coverage; absent ones are not drawn (exported files carry none)."""

    def __post_init__(self) -> None:
        if self.units is None:
            self.units = getattr(self.coverage, "units", None)
        self.now = self.now or datetime.now(timezone.utc)


def _workers_text(coverage: Coverage, code: str) -> str:
    return "、".join(f"{w['name']}（{w['role']} {w['phone']}）" for w in coverage.grid_workers(code))


def _open(incidents: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return incidents[incidents["status"].isin(OPEN_STATUSES)] if len(incidents) else incidents


def grid_frame(ctx: MapContext) -> gpd.GeoDataFrame:
    """Grids with names, workers, households and incident counts: what the grids layer draws."""
    cov = ctx.coverage
    grids = cov.grids
    totals = pd.DataFrame({"grid_code": cov.building_grid, "households": cov.buildings["households"].to_numpy()})
    totals = totals.groupby("grid_code").agg(households=("households", "sum"), building_count=("households", "size"))
    totals = totals.reindex(grids["code"]).fillna(0).astype(int)
    open_ = _open(ctx.incidents)
    open_counts = open_.groupby("grid_code").size() if len(open_) else pd.Series(dtype=int)
    overdue = open_[open_["overdue"].astype(bool)] if len(open_) and "overdue" in open_ else open_.iloc[:0]
    overdue_counts = overdue.groupby("grid_code").size() if len(overdue) else pd.Series(dtype=int)
    codes = grids["code"]
    return grids.assign(
        community_name=grids["community_code"].map(cov.region_name),
        workers=[_workers_text(cov, c) for c in codes],
        households=totals["households"].to_numpy(),
        building_count=totals["building_count"].to_numpy(),
        open_count=codes.map(open_counts).fillna(0).astype(int).to_numpy(),
        overdue_count=codes.map(overdue_counts).fillna(0).astype(int).to_numpy(),
    )


def _grid_names(cov: Coverage) -> dict[str, str]:
    return dict(zip(cov.grids["code"], cov.grids["name"]))


def _places(cov: Coverage) -> list[dict[str, Any]]:
    """Grid and community names the search box finds without asking the server."""
    places = [{"kind": "网格", "code": c, "name": n, "bounds": bounds_of(g)}
              for c, n, g in cov.grids[["code", "name", "geometry"]].itertuples(index=False)]
    communities = cov.regions[cov.regions["level"] == "community"]
    places += [{"kind": "社区", "code": c, "name": n, "bounds": bounds_of(g)}
               for c, n, g in communities[["code", "name", "geometry"]].itertuples(index=False)]
    return places


def _buildings(cov: Coverage, mask: np.ndarray | None = None) -> gpd.GeoDataFrame:
    names = _grid_names(cov)
    frame = cov.buildings.assign(grid_name=[names.get(g, "") for g in cov.building_grid])
    return frame[mask] if mask is not None else frame


def _metric(cov: Coverage) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(WGS84, cov.crs, always_xy=True)


def _nearest(points_xy: np.ndarray, targets_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and straight-line distance (metres) to the nearest target, in chunks to bound memory."""
    if not len(targets_xy):
        return np.full(len(points_xy), -1), np.full(len(points_xy), np.inf)
    index = np.empty(len(points_xy), dtype=int)
    dist = np.empty(len(points_xy))
    for start in range(0, len(points_xy), 4096):
        chunk = points_xy[start:start + 4096]
        d2 = ((chunk[:, None, :] - targets_xy[None, :, :]) ** 2).sum(axis=2)
        index[start:start + 4096] = d2.argmin(axis=1)
        dist[start:start + 4096] = np.sqrt(d2.min(axis=1))
    return index, dist


def _xy(transformer: pyproj.Transformer, frame: gpd.GeoDataFrame) -> np.ndarray:
    if not len(frame):
        return np.empty((0, 2))
    points = frame.geometry.representative_point() if frame.geom_type.iloc[0] != "Point" else frame.geometry
    x, y = transformer.transform(points.x.to_numpy(), points.y.to_numpy())
    return np.column_stack([x, y])


def _stations(cov: Coverage) -> gpd.GeoDataFrame:
    return cov.stations.assign(community_name=cov.stations["community_code"].map(cov.region_name))


def _cogov_overlays(ctx: MapContext, layers: tuple[str, ...]) -> list:
    """The embedded co-governance layers the context holds, in drawing order (footprints under points)."""
    draw = {"patrol_coverage": patrol_coverage_layer, "resources": resources_layer, "projects": projects_layer,
            "needs": needs_layer}
    frames = ctx.cogov or {}
    # a county's footprints once more would double what the page draws on opening: a click away instead
    return [draw[layer](frames[layer], **({"show": False} if layer == "patrol_coverage" else {}))
            for layer in layers if frames.get(layer) is not None]


def dispatcher_map(ctx: MapContext):
    cov = ctx.coverage
    m = new_map(bounds=cov.grids.total_bounds, basemaps=ctx.basemaps, title="网格化服务管理 · 调度地图", api=ctx.api)
    open_ = _open(ctx.incidents)
    overlays = [
        regions_layer(cov.regions),
        grids_layer(grid_frame(ctx)),
        precincts_layer(cov.precincts),
        buildings_layer(_buildings(cov)),
        stations_layer(_stations(cov)),
    ]
    if ctx.units is not None and len(ctx.units):
        overlays.append(units_layer(ctx.units))
    overlays += _cogov_overlays(ctx, ("patrol_coverage", "resources", "projects", "needs"))
    overlays.append(incidents_layer(ctx.incidents, now=ctx.now, grid_names=_grid_names(cov), only_open=True))
    legend = add_overlays(m, overlays)
    overdue = int(open_["overdue"].astype(bool).sum()) if len(open_) else 0
    card = (f"<h3>调度地图</h3><div>{len(cov.grids)} 个网格 · 未办结 <b>{len(open_)}</b> 件 · "
            f"超期 <b style='color:#c0392b'>{overdue}</b> 件</div>")
    add_controls(m, legend=legend, search={"api": ctx.api, "places": _places(cov)}, card=card)
    return m


def _community_places(cov: Coverage) -> list[dict[str, Any]]:
    """Community names for the search box of a light page (a city's ten thousand grids would weigh a megabyte;
    grids are found through the address matcher or by panning)."""
    communities = cov.regions[cov.regions["level"] == "community"]
    return [{"kind": "社区", "code": c, "name": n, "bounds": bounds_of(g)}
            for c, n, g in communities[["code", "name", "geometry"]].itertuples(index=False)]


def dispatcher_tiles_map(ctx: MapContext, *, tiles: str = "/tiles"):
    """The dispatcher map as a light page (what ``/maps/dispatcher`` serves): no features in the HTML, every
    layer fetched by viewport as vector tiles from ``tiles`` (a server is needed: exported files keep the
    embedded ``dispatcher_map``)."""
    cov = ctx.coverage
    m = new_map(bounds=cov.grids.total_bounds, basemaps=ctx.basemaps, title="网格化服务管理 · 调度地图", api=ctx.api)
    legend = add_overlays(m, tiled_layers(base=tiles, now=ctx.now.isoformat()))
    card = (f"<h3>调度地图</h3><div>{len(cov.grids)} 个网格 · 图层按视野加载</div>"
            "<div class='gm-muted'>事件在低缩放级别为聚合数，筛选在服务端执行；"
            f"网格与服务站放大到 {MIN_ZOOM['grids']} 级显示</div>")
    add_controls(m, legend=legend, search={"api": ctx.api, "places": _community_places(cov)}, card=card)
    return m


_BY_GRID: dict[int, tuple[Coverage, dict[str, np.ndarray]]] = {}


def buildings_by_grid(cov: Coverage) -> dict[str, np.ndarray]:
    """Positions of each grid's buildings in ``cov.buildings``: built once per coverage (one pass), so a
    worker's map reads its own grid's buildings without scanning a city's."""
    found = _BY_GRID.get(id(cov))
    if found is None or found[0] is not cov:
        order = np.argsort(cov.building_grid.astype(str), kind="stable")
        codes = cov.building_grid.astype(str)[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.empty(0, dtype=int)
        ends = np.r_[starts[1:], len(codes)]
        found = (cov, {codes[a]: order[a:b] for a, b in zip(starts, ends)})
        _BY_GRID.clear()  # one coverage at a time: the live one
        _BY_GRID[id(cov)] = found
    return found[1]


def worker_grids(cov: Coverage, code: str) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """The worker's record and the grids they cover (their grid, or a community worker's community's)."""
    match = cov.workers[cov.workers["code"] == code]
    if not len(match):
        raise NotFound(f"网格员 {code} 不存在")
    worker = match.iloc[0]
    if worker["grid_code"]:
        try:
            grids = cov.grids.iloc[[cov.grid_position(worker["grid_code"])]]
        except NotFound:  # a grid no longer in the store: an empty map rather than an error
            grids = cov.grids.iloc[:0]
    else:
        grids = cov.grids[cov.grids["community_code"] == worker["community_code"]]
    return worker, grids


def _worker_cogov(ctx: MapContext) -> list:
    """The worker's own buildings by their last visit (those not visited for 30 days are the ones to walk to
    next) and their community's needs."""
    frames = ctx.cogov or {}
    out = []
    if frames.get("patrol_coverage") is not None:
        out.append(patrol_coverage_layer(frames["patrol_coverage"]))
    if frames.get("needs") is not None:
        needs = frames["needs"]
        open_ = int(needs["status"].isin(("collected", "accepted", "in_project")).sum()) if len(needs) else 0
        out.append(needs_layer(needs, name=f"本社区居民需求（{len(needs)} 项，未办结 {open_} 项）"))
    return out


def _patrol_card(ctx: MapContext) -> str:
    coverage = (ctx.cogov or {}).get("patrol_coverage")
    if coverage is None:
        return ""
    due = int((coverage["state"] != "visited").sum()) if len(coverage) else 0
    return (f"<div>包楼院 {len(coverage)} 栋 · 超过 30 天未走访 "
            f"<b style='color:#c0392b'>{due}</b> 栋</div>")


def worker_map(ctx: MapContext, code: str):
    """A worker's own grids, buildings, open incidents and the nearest stations. It costs the same whatever the
    size of the city: ``ctx.incidents`` need only hold the worker's grids' incidents (the page asks the store
    for those alone), buildings come from a per-grid index, stations from the coverage's k-d tree."""
    cov = ctx.coverage
    worker, grids = worker_grids(cov, code)
    codes = grids["code"].to_numpy()
    index = buildings_by_grid(cov)
    rows = np.sort(np.concatenate([index.get(str(c), np.empty(0, dtype=int)) for c in codes])) if len(codes) \
        else np.empty(0, dtype=int)
    names = dict(zip(grids["code"], grids["name"]))
    buildings = cov.buildings.iloc[rows].assign(grid_name=[names.get(g, "") for g in cov.building_grid[rows]])
    incidents = _open(ctx.incidents)
    incidents = incidents[incidents["grid_code"].isin(codes)] if len(incidents) else incidents
    totals = pd.DataFrame({"grid_code": cov.building_grid[rows], "households": buildings["households"].to_numpy()})
    totals = totals.groupby("grid_code").agg(households=("households", "sum"), building_count=("households", "size"))
    totals = totals.reindex(codes).fillna(0).astype(int)
    open_counts = incidents.groupby("grid_code").size() if len(incidents) else pd.Series(dtype=int)
    overdue = incidents[incidents["overdue"].astype(bool)] if len(incidents) and "overdue" in incidents else incidents.iloc[:0]
    overdue_counts = overdue.groupby("grid_code").size() if len(overdue) else pd.Series(dtype=int)
    frame = grids.assign(
        community_name=grids["community_code"].map(cov.region_name),
        workers=[_workers_text(cov, c) for c in codes],
        households=totals["households"].to_numpy(), building_count=totals["building_count"].to_numpy(),
        open_count=grids["code"].map(open_counts).fillna(0).astype(int).to_numpy(),
        overdue_count=grids["code"].map(overdue_counts).fillna(0).astype(int).to_numpy(),
    )
    # nearest stations: the three closest to the patch's centre, and any inside it (a box query first)
    stations = cov.stations
    patch = grids.geometry.union_all()
    cx, cy = cov.to_metric(np.array([patch.centroid.x]), np.array([patch.centroid.y]))
    sx, sy = cov.to_metric(shapely.get_x(stations.geometry.values), shapely.get_y(stations.geometry.values)) \
        if len(stations) else (np.empty(0), np.empty(0))
    dist = np.hypot(sx - cx[0], sy - cy[0])
    chosen = np.zeros(len(stations), dtype=bool)
    chosen[np.argsort(dist, kind="stable")[:3]] = True
    if len(stations):
        candidates = np.flatnonzero(~chosen)
        candidates = candidates[shapely.intersects(shapely.box(*patch.bounds), stations.geometry.values[candidates])]
        chosen[candidates[shapely.covered_by(stations.geometry.values[candidates], patch)]] = True
    near = stations[chosen].assign(community_name=lambda f: f["community_code"].map(cov.region_name),
                                   distance_m=np.round(dist[chosen]).astype(int))
    minx, miny, maxx, maxy = patch.bounds
    if len(near):  # the nearest stations are in view too
        sminx, sminy, smaxx, smaxy = near.total_bounds
        minx, miny, maxx, maxy = min(minx, sminx), min(miny, sminy), max(maxx, smaxx), max(maxy, smaxy)
    m = new_map(bounds=(minx, miny, maxx, maxy), basemaps=ctx.basemaps,
                title=f"{worker['name']}的网格 · 网格化服务管理", api=ctx.api)
    overlays = [
        coverage_layer(frame),
        buildings_layer(buildings, name="楼栋与住户", min_zoom=None),
        *_worker_cogov(ctx),
        stations_layer(near, name="附近的党群服务站", rings=(300, 500), rings_shown=False),
        incidents_layer(incidents, now=ctx.now, grid_names=names, name="未办结事件", heat=False, filters=False),
    ]
    legend = add_overlays(m, overlays)
    totals_text = (f"{len(buildings)} 栋 · {int(buildings['households'].sum())} 户 · "
                   f"{int(buildings['population'].sum())} 人")
    grid_names = "、".join(escape(n) for n in grids["name"])
    card = (f"<h3>{escape(worker['name'])} <span class='gm-muted'>{escape(worker['role'])}</span></h3>"
            f"<div>{grid_names}</div><div class='gm-muted'>{totals_text}</div>"
            f"<div>未办结事件 <b>{len(incidents)}</b> 件</div>" + _patrol_card(ctx))
    add_controls(m, legend=legend, legend_collapsed=True, layers_collapsed=True, card=card)
    return m


def _proposals_overlay(proposals: gpd.GeoDataFrame):
    """The planning module's own layer when it exists, else stations drawn as proposed."""
    try:
        module = importlib.import_module("gridmap.layers.proposals")
        return module.proposals_layer(proposals)
    except (ImportError, AttributeError):
        frame = proposals.copy()
        if "name" not in frame:
            frame["name"] = [f"规划站点 {i + 1}" for i in range(len(frame))]
        return stations_layer(frame, name="规划新增站点", proposed=True, rings=(500,), rings_shown=True)


def planner_map(ctx: MapContext, *, proposals: gpd.GeoDataFrame | None = None, radius_m: float = 500):
    if not 50 <= radius_m <= 5000:
        raise InvalidInput("服务半径应在 50 到 5000 米之间")
    cov = ctx.coverage
    transformer = _metric(cov)
    stations = _stations(cov)
    targets = stations[["name", "geometry"]]
    if proposals is not None and len(proposals):
        extra = proposals.to_crs(WGS84) if proposals.crs else proposals.set_crs(WGS84)
        names = extra["name"] if "name" in extra else pd.Series([f"规划站点 {i + 1}" for i in range(len(extra))])
        targets = pd.concat([targets, gpd.GeoDataFrame({"name": names.to_numpy()}, geometry=extra.geometry.values,
                                                        crs=WGS84)], ignore_index=True)
    building_xy = np.column_stack(transformer.transform(cov.building_xy[:, 0], cov.building_xy[:, 1]))
    nearest, dist = _nearest(building_xy, _xy(transformer, targets))
    classes = np.digitize(dist, [300, 500, 1000], right=True)
    buildings = _buildings(cov).assign(
        distance_m=dist, station_name=targets["name"].to_numpy()[nearest] if len(targets) else "", dclass=classes)
    uncovered = buildings[buildings["distance_m"] > radius_m]
    m = new_map(bounds=cov.grids.total_bounds, basemaps=ctx.basemaps, title="网格化服务管理 · 服务站规划", api=ctx.api)
    after = "（含规划站点）" if proposals is not None and len(proposals) else ""
    overlays = [
        regions_layer(cov.regions),
        buildings_layer(buildings, name=f"楼栋：到最近服务站的直线距离{after}", min_zoom=None,
                        classes=[(c, label) for _, c, label in DISTANCE_CLASSES], class_column="dclass",
                        legend_title=f"楼栋到最近服务站距离{after}"),
        uncovered_layer(uncovered, radius_m=radius_m),
        *_cogov_overlays(ctx, ("resources", "projects", "needs")),
        stations_layer(stations, rings=RINGS, rings_shown=True),
    ]
    if proposals is not None and len(proposals):
        overlays.append(_proposals_overlay(proposals))
    legend = add_overlays(m, overlays)
    households = int(cov.buildings["households"].sum())
    lost = int(uncovered["households"].sum())
    card = (f"<h3>服务站规划{after}</h3><div>{len(stations)} 个服务站"
            + (f" + {len(proposals)} 个规划站点" if after else "")
            + f"</div><div>服务半径 {radius_m:g} 米外：<b style='color:#c0392b'>{len(uncovered)}</b> 栋 "
            f"<b style='color:#c0392b'>{lost}</b> 户（占 {lost / max(households, 1):.1%}）</div>")
    add_controls(m, legend=legend, measure=True, locate=False, card=card,
                 search={"api": ctx.api, "places": _places(cov)})
    return m


def planner_tiles_map(ctx: MapContext, *, proposals: gpd.GeoDataFrame | None = None, radius_m: float = 500,
                      scenario: int | None = None, tiles: str = "/tiles"):
    """The planner map as a light page (what ``/maps/planner`` serves): buildings by their distance to the
    nearest station, those beyond ``radius_m``, stations and their rings all come by viewport from ``tiles``;
    the page holds only the totals (one k-d tree query over the buildings, cached with the page) and the
    scenario's proposed sites (a few dozen points)."""
    if not 50 <= radius_m <= 5000:
        raise InvalidInput("服务半径应在 50 到 5000 米之间")
    cov = ctx.coverage
    has_proposals = proposals is not None and len(proposals)
    extra = None
    if has_proposals:
        extra = proposals.to_crs(WGS84) if proposals.crs else proposals.set_crs(WGS84)
    distance, _ = distance_targets(cov, extra)
    beyond = distance > radius_m
    households = cov.buildings["households"].to_numpy()
    lost = int(households[beyond].sum())
    after = "（含规划站点）" if has_proposals else ""
    m = new_map(bounds=cov.grids.total_bounds, basemaps=ctx.basemaps, title="网格化服务管理 · 服务站规划", api=ctx.api)
    overlays = planner_layers(radius_m=radius_m, rings=RINGS, ring_colours=RING_COLOURS,
                              scenario=scenario if has_proposals else None, after=after,
                              uncovered_name=f"未覆盖住户（{int(beyond.sum())} 栋 {lost} 户）",
                              base=tiles)
    if has_proposals:
        overlays.append(_proposals_overlay(proposals))
    legend = add_overlays(m, overlays)
    total = int(households.sum())
    card = (f"<h3>服务站规划{after}</h3><div>{len(cov.stations)} 个服务站"
            + (f" + {len(proposals)} 个规划站点" if after else "")
            + f"</div><div>服务半径 {radius_m:g} 米外：<b style='color:#c0392b'>{int(beyond.sum())}</b> 栋 "
            f"<b style='color:#c0392b'>{lost}</b> 户（占 {lost / max(total, 1):.1%}）</div>"
            f"<div class='gm-muted'>图层按视野加载，楼栋放大到 {COVERAGE_MIN_ZOOM} 级显示</div>")
    add_controls(m, legend=legend, measure=True, locate=False, card=card,
                 search={"api": ctx.api, "places": _community_places(cov)})
    return m


def public_map(ctx: MapContext):
    """For anyone, without sign-in: grids with their workers' public service contacts, stations,
    and public-category incidents as rounded points. No buildings, precincts or co-building units.

    The incidents are cut to the public view here as well, whatever the caller passed in.
    """
    cov = ctx.coverage
    incidents = incidents_for_map(ctx.incidents, actor=ANONYMOUS, coverage=cov)
    public = MapContext(cov, ctx.basemaps, incidents, units=ctx.units, api=ctx.api, now=ctx.now)
    m = new_map(bounds=cov.grids.total_bounds, basemaps=ctx.basemaps, title="网格化服务管理 · 公共地图", api=ctx.api)
    overlays = [
        regions_layer(cov.regions),
        grids_layer(grid_frame(public), measures=("open",)),
        stations_layer(_stations(cov), rings=(300, 500, 1000), rings_shown=False),
        incidents_layer(incidents, now=ctx.now, grid_names=_grid_names(cov), name="公开事件", heat=False,
                        only_open=True),
    ]
    legend = add_overlays(m, overlays)
    card = ("<h3>网格化服务管理 · 公共地图</h3><div>点击网格查看网格员和联系电话，或搜索地址找到负责的网格员。</div>"
            "<div class='gm-muted'>事件位置约为 100 米范围，不含个人信息；矛盾纠纷、特殊人群关爱等类别不公开。</div>")
    add_controls(m, legend=legend, search={"api": ctx.api, "places": _places(cov)}, card=card)
    return m


def build_map(kind: str, ctx: MapContext, *, code: str | None = None,
              proposals: gpd.GeoDataFrame | None = None, radius_m: float = 500, scenario: int | None = None):
    if kind == "dispatcher":
        return dispatcher_map(ctx)
    if kind == "dispatcher-tiles":
        return dispatcher_tiles_map(ctx)
    if kind == "planner-tiles":
        return planner_tiles_map(ctx, proposals=proposals, radius_m=radius_m, scenario=scenario)
    if kind == "worker":
        if not code:
            raise InvalidInput("网格员地图需要网格员编码，例如 gridmap map worker W0002")
        return worker_map(ctx, code)
    if kind == "planner":
        return planner_map(ctx, proposals=proposals, radius_m=radius_m)
    if kind == "public":
        return public_map(ctx)
    raise InvalidInput(f"未知的地图 {kind!r}（可选：{'、'.join(KINDS)}）")


def map_page(kind: str, ctx: MapContext, *, code: str | None = None, proposals: gpd.GeoDataFrame | None = None,
             radius_m: float = 500, mode: AssetMode = "served", assets_dir: Path | None = None,
             out: Path | None = None, scenario: int | None = None) -> str:
    """The map as an HTML page (served with /static links, or self-contained for a file)."""
    m = build_map(kind, ctx, code=code, proposals=proposals, radius_m=radius_m, scenario=scenario)
    return render(m, mode=mode, assets_dir=assets_dir, out=out)
