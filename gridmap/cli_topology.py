"""``gridmap check-topology``: the topology report of a store or a package, and ``--fix`` (issue #14 §2).

Exit codes: 0 no errors (gaps and slivers are warnings, printed); 1 errors found (overlaps, parts outside
the parent, invalid geometries, split buildings), or any problem with ``--strict``; 2 bad arguments or
unreadable input. Problems go to stderr one a line, the summary (or ``--json``) to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from gridmap.errors import GridmapError
from gridmap.settings import Settings


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(code)


def _layers(package: Path | None, db: str | None) -> dict[str, Any]:
    if package is not None:
        from gridmap.package import read_package

        return read_package(package).layers
    from gridmap.bootstrap import open_configured_store

    store = open_configured_store(Settings(db=db) if db is not None else Settings())
    return {name: store.read_layer(name) for name in ("regions", "grids", "buildings")}


def _write_grids(grids, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in (".geojson", ".json", ".gpkg"):
        _fail(f"不支持的输出格式 {out.suffix or '（无扩展名）'}：请用 .geojson 或 .gpkg", code=2)
    grids.to_file(out, layer="grids", driver="GPKG" if suffix == ".gpkg" else "GeoJSON")


def check_topology_command(
    package: Annotated[Path | None, typer.Argument(help="a data package to check instead of the store")] = None,
    db: Annotated[str | None, typer.Option("--db", help="GeoPackage path or postgresql:// URL (default: $GRIDMAP_DB)")
                  ] = None,
    sliver_width: Annotated[float, typer.Option("--sliver-width", help="窄于此宽度（米）的部分视为狭长碎片")] = 2.0,
    tolerance: Annotated[float, typer.Option("--tolerance", help="小于此面积（平方米）视为坐标误差")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    geojson: Annotated[Path | None, typer.Option("--geojson", help="write the problem geometries to this GeoJSON file")
                       ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 on warnings (gaps, slivers) too")] = False,
    fix: Annotated[bool, typer.Option("--fix", help="snap grid vertices within --snap-tolerance and report what "
                                                    "moved (a dry run unless --out is given)")] = False,
    snap_tolerance: Annotated[float, typer.Option("--snap-tolerance", help="--fix: largest move of a vertex (米)")
                              ] = 0.5,
    out: Annotated[Path | None, typer.Option("--out", help="--fix: write the snapped grids layer here "
                                                           "(.geojson or .gpkg); the store is never changed")] = None,
) -> None:
    """Topology report: overlaps, gaps, slivers, grids outside their community, invalid geometries, split buildings."""
    from gridmap.topology.report import check_topology

    if out is not None and not fix:
        _fail("--out 只能与 --fix 一起用", code=2)
    if sliver_width <= 0 or tolerance < 0 or snap_tolerance <= 0:
        _fail("--sliver-width、--snap-tolerance 应大于 0，--tolerance 不能为负", code=2)
    try:
        layers = _layers(package, db)
    except GridmapError as exc:
        _fail(exc.message, code=2)
    report = check_topology(layers, sliver_width_m=sliver_width, tolerance_m2=tolerance)
    answer: dict[str, Any] = report.to_dict()
    if fix:
        from gridmap.topology.fix import snap_grids

        result = snap_grids(layers, snap_tolerance)
        after = check_topology(result.layers(layers), sliver_width_m=sliver_width, tolerance_m2=tolerance)
        answer = {**answer, "fix": {**result.to_dict(), "written": str(out) if out else None,
                                    "counts_after": after.counts()}}
        for change in result.changes:
            typer.echo(f"[吸附] grids/{change.code}: 移动 {change.vertices_moved} 个顶点，最大 {change.max_move_m:.2f} 米",
                       err=True)
        for skipped in result.skipped:
            typer.echo(f"[跳过] grids/{skipped['code']}: 吸附后几何无效（{skipped['reason']}），保持原样", err=True)
        if out is not None and result.changes:
            _write_grids(result.grids, out)
    for item in report.items:
        label = "错误" if item.severity == "error" else "警告"
        typer.echo(f"[{label}] {item.level}/{'、'.join(item.codes)}: {item.message}", err=True)
    if geojson is not None:
        geojson.write_text(json.dumps(report.to_geojson(), ensure_ascii=False), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        counts = "，".join(f"{name} {answer['counts'][kind]}" for kind, name in _names().items())
        typer.echo(("拓扑检查通过" if report.clean else f"错误 {report.errors} 处，警告 {len(report.items) - report.errors} 处")
                   + f"：{counts}")
        if fix:
            fixed = answer["fix"]
            where = f"已写出吸附后的网格 → {out}" if out and result.changes else "试运行，未写入任何文件（用 --out 写出）"
            after_text = "，".join(f"{name} {fixed['counts_after'][kind]}" for kind, name in _names().items())
            typer.echo(f"吸附（容差 {snap_tolerance:g} 米）：改动 {fixed['changed']} 个网格；{where}；吸附后：{after_text}")
    if report.errors or (strict and report.items):
        raise typer.Exit(1)


def _names() -> dict[str, str]:
    from gridmap.topology.report import KINDS

    return KINDS
