"""``gridmap plan …``: station coverage and new station sites from the command line (issue #6)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gridmap.errors import GridmapError
from gridmap.settings import Settings

plan_app = typer.Typer(help="服务站规划：覆盖分析与新站选址", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--db", help="GeoPackage path or postgresql:// URL (default: $GRIDMAP_DB or ./gridmap.gpkg)")]
RadiusOption = Annotated[float, typer.Option("--radius-m", "-r", help="服务半径（米）：300 / 500 / 1000 或任意值")]
MetricOption = Annotated[str, typer.Option("--metric", help="network（步行路网）或 euclidean（直线）")]
OutOption = Annotated[Path | None, typer.Option("--out", help="写出结果：.geojson 或 .csv")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the full answer as JSON")]
RegionOption = Annotated[str | None, typer.Option("--region", help="只看一个社区、乡镇或县（区域代码）")]
BBoxOption = Annotated[str | None, typer.Option("--bbox", help="只看一个范围：最小经度,最小纬度,最大经度,最大纬度")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(code)


def _open(db: str | None):
    from gridmap.bootstrap import open_configured_store
    from gridmap.coverage.service import Coverage

    store = open_configured_store(Settings(db=db) if db is not None else Settings())
    return store, Coverage.from_layers(store.read_layers(), revision=store.revision())


def _area_fields(cov, region: str | None, bbox: str | None) -> dict:
    """``--region CODE`` as the request field of its level (``town=CODE``), plus ``--bbox``."""
    from gridmap.planning.scope import parse_bbox, region_fields

    fields: dict = region_fields(cov, region) if region else {}
    box = parse_bbox(bbox)
    return {**fields, "bbox": list(box)} if box else fields


def _check_out(out: Path | None) -> str | None:
    if out is None:
        return None
    suffix = out.suffix.lower()
    if suffix not in (".geojson", ".json", ".csv"):
        _fail(f"不支持的输出格式 {out.suffix or '（无扩展名）'}：请用 .geojson 或 .csv", code=2)
    return "csv" if suffix == ".csv" else "geojson"


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A spinner with the current step and the elapsed time on stderr (stdout stays clean for --json)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("开始", total=None)
        yield lambda step: progress.update(task, description=step)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


@plan_app.command("coverage")
def coverage(
    radius_m: RadiusOption = 500,
    metric: MetricOption = "network",
    region: RegionOption = None,
    bbox: BBoxOption = None,
    db: DbOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is within reach of a station today: households and residents per community, grid and overall."""
    from gridmap.planning import export
    from gridmap.planning.scope import Area
    from gridmap.planning.service import plan_coverage, planner_for

    fmt = _check_out(out)
    try:
        store, cov = _open(db)
        area = Area.of(**_area_fields(cov, region, bbox))
        with _progress() as step:
            report = plan_coverage(coverage=cov, store=store, radius_m=radius_m, metric=metric, area=area,
                                   progress=step)
    except GridmapError as exc:
        _fail(exc.message)
    if fmt == "csv":
        out.write_text(export.coverage_csv(report), encoding="utf-8")
    elif fmt == "geojson":
        out.write_text(export.dumps(export.coverage_geojson(report, planner_for(cov, store).grid_geometries())),
                       encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        typer.echo(_describe_coverage(report))
    if out is not None:
        typer.echo(f"已写出 → {out}", err=True)


def _describe_coverage(report: dict) -> str:
    label = "步行" if report["metric"] == "network" else "直线"
    t = report["total"]
    lines = [
        f"{_scope_text(report.get('scope'))}服务站 {report['stations']} 个；{label} {report['radius_m']:g} 米内：户数 {t['households_covered']}/{t['households']}"
        f"（{_pct(t['share'])}），人口 {t['population_covered']}/{t['population']}（{_pct(t['population_share'])}），"
        f"平均距离 {t['mean_distance_m']} 米",
        "生活圈：" + "，".join(f"{p['radius_m']} 米 {_pct(p['share'])}" for p in report["presets"]),
        f"{'社区':<10}{'户数':>8}{'已覆盖':>8}{'未覆盖':>8}{'覆盖率':>8}",
    ]
    for c in report["communities"]:
        lines.append(f"{c['name']:<10}{c['households']:>8}{c['households_covered']:>8}"
                     f"{c['households_uncovered']:>8}{_pct(c['share']):>8}")
    return "\n".join(lines)


def _scope_text(scope: dict | None) -> str:
    """``范围：闻喜县（140823），楼栋 47750 栋，范围外服务站 2 个；`` or nothing for the whole store."""
    if not scope:
        return ""
    where = [f"{scope['region']['name']}（{scope['region']['code']}）"] if scope.get("region") else []
    if scope.get("bbox"):
        where.append("bbox " + ",".join(f"{v:g}" for v in scope["bbox"]))
    return (f"范围：{' ∩ '.join(where)}，楼栋 {scope['buildings']} 栋，"
            f"范围外计入覆盖的服务站 {scope.get('stations_outside', 0)} 个\n")


def _parse_demand(text: str) -> str | dict[str, float]:
    """``households`` or ``households=1,incidents=2``."""
    if "=" not in text:
        return text
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            _fail(f"需求权重 {part!r} 写法不对：例如 households=1,incidents=2", code=2)
    return weights


@plan_app.command("stations")
def stations(
    k: Annotated[int, typer.Option("--k", "-k", help="新站点数（max_coverage、p_median）")] = 5,
    radius_m: RadiusOption = 500,
    objective: Annotated[str, typer.Option(help="max_coverage | set_cover | p_median")] = "max_coverage",
    target_share: Annotated[float, typer.Option(help="set_cover 的目标覆盖率（0–1）")] = 0.95,
    demand: Annotated[str, typer.Option(help="households | population | incidents | households=1,incidents=2")] = "households",
    metric: MetricOption = "network",
    capacity: Annotated[float | None, typer.Option(help="每个新站点可服务的户数上限")] = None,
    candidates: Annotated[str, typer.Option(help="auto | layer | generated")] = "auto",
    spacing: Annotated[float, typer.Option("--spacing", help="沿街候选点间距（米）")] = 100.0,
    time_limit: Annotated[float, typer.Option("--time-limit", help="求解时限（秒）")] = 30.0,
    region: RegionOption = None,
    bbox: BBoxOption = None,
    db: DbOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sites for new stations: maximal covering, set covering or p-median, solved exactly with HiGHS."""
    from gridmap.planning import export
    from gridmap.planning.service import SitingRequest, plan_stations

    fmt = _check_out(out)
    try:
        store, cov = _open(db)
        request = SitingRequest(k=k, radius_m=radius_m, objective=objective, target_share=target_share,
                                demand=_parse_demand(demand), metric=metric, capacity=capacity,
                                candidates=candidates, candidate_spacing_m=spacing, time_limit_s=time_limit,
                                **_area_fields(cov, region, bbox))
        with _progress() as step:
            result = plan_stations(coverage=cov, store=store, request=request, progress=step)
    except GridmapError as exc:
        _fail(exc.message)
    if fmt == "csv":
        out.write_text(export.proposals_csv(result), encoding="utf-8")
    elif fmt == "geojson":
        out.write_text(export.dumps(export.proposals_geojson(result)), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.answer, ensure_ascii=False, indent=2))
    else:
        typer.echo(_describe_sites(result.answer))
    if out is not None:
        typer.echo(f"已写出 {len(result.answer['proposals'])} 个建议站点 → {out}", err=True)


def _describe_sites(a: dict) -> str:
    label = "步行" if a["metric"] == "network" else "直线"
    b, f = a["before"], a["after"]
    proof = "已证明最优" if a["optimal"] else f"未证明最优，差距 {a['gap']:.2%}" if a["gap"] is not None else "无可行解"
    lines = [
        f"{_scope_text(a.get('scope'))}{a['objective']}：{len(a['proposals'])} 个新站点（{label} {a['radius_m']:g} 米，候选 {a['candidates']['count']} 个，"
        f"{proof}，{a['seconds']:.1f} 秒）",
        f"覆盖户数 {b['households_covered']} → {f['households_covered']}（{_pct(b['share'])} → {_pct(f['share'])}），"
        f"平均距离 {b['mean_distance_m']} → {f['mean_distance_m']} 米",
    ]
    for p in a["proposals"]:
        where = "，".join(x for x in ((p["community"] or {}).get("name"), (p["grid"] or {}).get("name")) if x)
        lines.append(f"{p['rank']:>3}. {p['name']}（{p['lon']:.6f}, {p['lat']:.6f}）{where}；"
                     f"新覆盖 {p['households_new']} 户；附近：{p['address'] or '-'}")
    changed = [c for c in a["communities"] if c["after"]["households_covered"] != c["before"]["households_covered"]]
    for c in changed:
        lines.append(f"     {c['name']}：{_pct(c['before']['share'])} → {_pct(c['after']['share'])}")
    return "\n".join(lines)
