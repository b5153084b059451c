"""The ``gridmap`` command line: serve, import, check, lookup, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gridmap.errors import GridmapError
from gridmap.settings import Settings

app = typer.Typer(help="gridmap：网格化服务管理（grids, workers, coverage lookups）", no_args_is_help=True)

DbOption = Annotated[Path | None, typer.Option("--db", help="GeoPackage store (default: $GRIDMAP_DB or ./gridmap.gpkg)")]
SourceCrs = Annotated[
    str | None, typer.Option("--source-crs", help="override the files' CRS, e.g. EPSG:4490 or gcj02")
]


def _settings(db: Path | None) -> Settings:
    return Settings(db=db) if db is not None else Settings()


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(code)


def _report_problems(details: list[dict]) -> None:
    for p in details:
        where = f"{p['layer']}/{p['code']}" if p.get("code") else p["layer"]
        label = "错误" if p["severity"] == "error" else "警告"
        typer.echo(f"[{label}] {where}: {p['message']}", err=True)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    empty: Annotated[bool, typer.Option("--empty", help="do not load the sample county into an empty store")] = False,
) -> None:
    """Serve the API (loads the sample county 临猗县 into an empty store first, unless --empty)."""
    import os

    import uvicorn

    from gridmap.bootstrap import open_configured_store

    settings = _settings(db)
    if empty:
        settings.load_sample_if_empty = False
    try:
        open_configured_store(settings)
    except GridmapError as exc:
        _fail(exc.message)
    os.environ["GRIDMAP_DB"] = str(settings.db)
    os.environ["GRIDMAP_LOAD_SAMPLE_IF_EMPTY"] = "false"
    uvicorn.run(
        "gridmap.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
    )


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="data package: a .gpkg file or a folder of layer files")],
    db: DbOption = None,
    source_crs: SourceCrs = None,
) -> None:
    """Validate a data package and import it atomically (nothing is written if any error is found)."""
    from gridmap.importer import import_package
    from gridmap.store import open_store

    settings = _settings(db)
    try:
        report = import_package(open_store(settings.db), path, source_crs=source_crs)
    except GridmapError as exc:
        if exc.details:
            _report_problems(exc.details)
        _fail(exc.message)
    for warning in report.warnings:
        typer.echo(str(warning), err=True)
    state = "内容未变化" if report.unchanged else "已导入"
    counts = "，".join(f"{k} {v}" for k, v in report.counts.items())
    typer.echo(f"{state}：{counts}（版本 {report.revision}）")


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="data package to validate")],
    source_crs: SourceCrs = None,
) -> None:
    """Validate a data package without importing it; exit 1 if it has errors."""
    from gridmap.importer import check_package

    try:
        _, problems = check_package(path, source_crs=source_crs)
    except GridmapError as exc:
        _fail(exc.message)
    _report_problems([p.to_dict() for p in problems])
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        _fail(f"{errors} 个错误，{len(problems) - errors} 个警告")
    typer.echo(f"数据包有效（{len(problems)} 个警告）")


@app.command()
def lookup(
    lon: Annotated[float, typer.Option(help="longitude, WGS84")],
    lat: Annotated[float, typer.Option(help="latitude, WGS84")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Which grid and grid workers cover a point."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.coverage.service import Coverage

    try:
        store = open_configured_store(_settings(db))
        answer = Coverage.from_layers(store.read_layers(), revision=store.revision()).lookup(lon, lat)
    except GridmapError as exc:
        _fail(exc.message)
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    typer.echo(_describe(answer))


def _describe(answer: dict) -> str:
    admin = " ".join(answer[k]["name"] for k in ("county", "town", "community") if answer.get(k))
    lines = [f"位置 {answer['lon']:.6f}, {answer['lat']:.6f}  {admin}".rstrip()]
    if answer["covered"]:
        lines.append(f"网格：{answer['grid']['name']}（{answer['grid']['code']}）")
        for w in answer["workers"]:
            lines.append(f"  {w['role']}：{w['name']}  {w['phone']}")
    else:
        near = answer["nearest_grid"]
        lines.append("不在任何网格内" + (f"；最近的网格：{near['name']}，{near['distance_m']:.0f} 米" if near else ""))
    if answer["station"]:
        lines.append(f"最近的党群服务站：{answer['station']['name']}，{answer['station']['distance_m']:.0f} 米")
    if answer["precinct"]:
        lines.append(f"派出所：{answer['precinct']['name']}  {answer['precinct']['phone']}")
    return "\n".join(lines)


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help="layer name, e.g. grids")],
    out: Annotated[Path, typer.Option("--out", help="output file: .geojson, .json, .gpkg or .csv")],
    db: DbOption = None,
) -> None:
    """Write one stored layer to a file (format by extension)."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.schema import LAYERS

    if layer not in LAYERS:
        _fail(f"未知图层 {layer}（可选：{', '.join(LAYERS)}）", code=2)
    suffix = out.suffix.lower()
    if suffix not in (".geojson", ".json", ".gpkg", ".csv"):
        _fail(f"不支持的输出格式 {out.suffix or '（无扩展名）'}：请用 .geojson、.gpkg 或 .csv", code=2)
    try:
        frame = open_configured_store(_settings(db)).read_layer(layer)
    except GridmapError as exc:
        _fail(exc.message)
    if suffix == ".csv" or not LAYERS[layer].spatial:
        if suffix != ".csv":
            _fail(f"图层 {layer} 没有几何，只能导出为 .csv", code=2)
        frame = frame.copy()
        if LAYERS[layer].spatial:
            frame["geometry"] = frame.geometry.to_wkt()
        frame.to_csv(out, index=False)
    else:
        frame.to_file(out, layer=layer, driver="GPKG" if suffix == ".gpkg" else "GeoJSON")
    typer.echo(f"已导出 {layer}：{len(frame)} 条 → {out}")


def main() -> None:  # pragma: no cover - console entry for `python -m gridmap`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
