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

DbOption = Annotated[str | None, typer.Option("--db", help="GeoPackage path or postgresql:// URL (default: $GRIDMAP_DB or ./gridmap.gpkg)")]
SourceCrs = Annotated[
    str | None, typer.Option("--source-crs", help="override the files' CRS, e.g. EPSG:4490 or gcj02")
]


def _settings(db: str | None) -> Settings:
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
    from gridmap.logs import log_config

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
        access_log=False,  # it prints query strings (receipts); gridmap.access logs each request instead
        log_config=log_config(),  # JSON lines on stderr (docs/security.md "Logs and metrics")
    )


Encoding = Annotated[str | None, typer.Option(
    "--encoding", help="text encoding of Shapefile DBFs and CSVs: utf-8, gbk, gb18030 (default: .cpg, else detected)")]
MappingOption = Annotated[Path | None, typer.Option(
    "--mapping", help="TOML file mapping column names to fields (docs/data-package.md, \"Column names\")")]


def _print_columns(report) -> None:
    """Which file each layer came from and which columns were read under another name."""
    for name, file in report.files.items():
        renamed = "，".join(f"{source}→{target}" for source, target in report.columns.get(name, {}).items())
        typer.echo(f"  {name} ← {file}" + (f"（{renamed}）" if renamed else ""))


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="data package: a .gpkg file, a folder of layer files, or its .zip")],
    db: DbOption = None,
    source_crs: SourceCrs = None,
    encoding: Encoding = None,
    mapping: MappingOption = None,
    check_only: Annotated[bool, typer.Option("--check", help="validate and report, write nothing")] = False,
    effective_from: Annotated[str | None, typer.Option(
        "--effective-from", help="date the grids take effect, YYYY-MM-DD (default today; a later date schedules "
                                 "them, docs/versions.md)")] = None,
    label: Annotated[str, typer.Option("--label", help="name of the boundary version, e.g. 2027年网格调整")] = "",
) -> None:
    """Validate a data package and import it atomically (nothing is written if any error is found)."""
    from gridmap.importer import import_package
    from gridmap.store import open_store
    from gridmap.versions.model import parse_day

    try:
        day = parse_day(effective_from, name="--effective-from")
        settings = _settings(db)
        store = None if check_only else open_store(settings.db)
        report = import_package(store, path, source_crs=source_crs, encoding=encoding, mapping=mapping,
                                dry_run=check_only, max_overlap_m2=settings.import_max_overlap_m2,
                                effective_from=day, label=label, actor="cli")
    except GridmapError as exc:
        if exc.details:
            _report_problems(exc.details)
        _fail(exc.message)
    for warning in report.warnings:
        typer.echo(str(warning), err=True)
    _print_columns(report)
    counts = "，".join(f"{k} {v}" for k, v in report.counts.items())
    if check_only:
        typer.echo(f"检查通过，未写入任何数据（{len(report.warnings)} 个警告）：{counts}（版本 {report.revision}）")
        return
    state = "内容未变化" if report.unchanged else "已导入"
    typer.echo(f"{state}：{counts}（版本 {report.revision}）")
    if report.version is not None:
        v = report.version
        when = "已计划，届时生效" if v["scheduled"] else ("现行" if v["live"] else "已存为历史版本")
        typer.echo(f"网格版本 {v['id']}：自 {v['effective_from']} 起（{when}）")


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="data package to validate")],
    source_crs: SourceCrs = None,
    encoding: Encoding = None,
    mapping: MappingOption = None,
) -> None:
    """Validate a data package without importing it; exit 1 if it has errors."""
    from gridmap.importer import check_package

    try:
        _, problems = check_package(path, source_crs=source_crs, encoding=encoding, mapping=mapping)
    except GridmapError as exc:
        _fail(exc.message)
    _report_problems([p.to_dict() for p in problems])
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        _fail(f"{errors} 个错误，{len(problems) - errors} 个警告")
    typer.echo(f"数据包有效（{len(problems)} 个警告）")


@app.command()
def lookup(
    address: Annotated[str | None, typer.Argument(help="an address, e.g. 丰林小区3号楼 (or use --lon/--lat)")] = None,
    lon: Annotated[float | None, typer.Option(help="longitude, WGS84")] = None,
    lat: Annotated[float | None, typer.Option(help="latitude, WGS84")] = None,
    csv_in: Annotated[Path | None, typer.Option(
        "--csv", help="a table with an address column: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or .xlsx")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="output CSV for --csv (UTF-8 with BOM)")] = None,
    xlsx_out: Annotated[Path | None, typer.Option("--xlsx", help="output .xlsx for --csv (instead of --out)")] = None,
    encoding: Annotated[str | None, typer.Option(help="encoding of the CSV: utf-8, gbk, gb18030 (default: detected)")
                        ] = None,
    column: Annotated[str | None, typer.Option(help="the address column, by name or Excel letter "
                                                    "(default: address, 地址, 详细地址, 事发地址 …)")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Which grid and grid workers cover an address, a point, or every address of a CSV or .xlsx table."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.coverage import addresses
    from gridmap.coverage.service import Coverage

    given = sum(x is not None for x in (address, csv_in)) + (lon is not None or lat is not None)
    if given != 1:
        _fail("请给出一个地址、--lon/--lat，或 --csv 文件（只能选一种）", code=2)
    if csv_in is not None and (out is None) == (xlsx_out is None):
        _fail("--csv 需要给出 --out（CSV）或 --xlsx（Excel）输出文件之一", code=2)
    if csv_in is None and (out or xlsx_out or encoding or column):
        _fail("--out、--xlsx、--encoding、--column 只能与 --csv 一起用", code=2)
    try:
        store = open_configured_store(_settings(db))
        coverage = Coverage.from_layers(store.read_layers(), revision=store.revision())
        if csv_in is not None:
            _lookup_table(coverage, csv_in, out=out, xlsx_out=xlsx_out, encoding=encoding, column=column)
            return
        if address is not None:
            answer = addresses.lookup_address(coverage, address)
        else:
            if lon is None or lat is None:
                _fail("需要同时给出 --lon 和 --lat", code=2)
            answer = coverage.lookup(lon, lat)
    except GridmapError as exc:
        _fail(exc.message)
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    typer.echo(_describe(answer))


def _lookup_table(coverage, source: Path, *, out: Path | None, xlsx_out: Path | None, encoding: str | None,
                  column: str | None) -> None:
    """A CSV or .xlsx table in, the same rows with the answer's columns out; a bad file is exit 2, nothing written."""
    import os
    import tempfile

    from rich.progress import Progress

    from gridmap.coverage.addresses import MAX_BATCH_ROWS, SUMMARY_ROWS, lookup_table, summary_rows
    from gridmap.coverage.tables import read_table, write_csv, write_xlsx

    try:
        table = read_table(source.read_bytes(), encoding=encoding, max_rows=MAX_BATCH_ROWS)
    except OSError as exc:
        _fail(f"无法读取 {source}：{exc.strerror or exc}", code=2)
    except GridmapError as exc:
        _fail(f"{source}：{exc.message}", code=2)
    total = len(table.rows)
    try:
        with Progress(transient=False) as progress:
            task = progress.add_task("地址匹配", total=total)
            header, rows, summary = lookup_table(coverage, table, column=column,
                                                 progress=lambda n: progress.advance(task, n))
    except GridmapError as exc:
        _fail(f"{source}：{exc.message}", code=2)
    target = xlsx_out if xlsx_out is not None else out
    if xlsx_out is not None or target.suffix.lower() == ".xlsx":
        data = write_xlsx(header, rows, summary=summary_rows(summary, total) if total > SUMMARY_ROWS else None)
    else:
        data = write_csv(header, rows)
    # Written next to the target and renamed over it: a failure leaves no half-written file.
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(partial, target)
    except OSError as exc:
        Path(partial).unlink(missing_ok=True)
        _fail(f"无法写入 {target}：{exc.strerror or exc}", code=2)
    levels = ("building", "compound", "road", "community", "town", "county", "none")
    counts = "，".join(f"{level} {summary.get(level, 0)}" for level in levels)
    typer.echo(f"共 {total} 行 → {target}：{counts}；有歧义 {summary.get('ambiguous', 0)}，"
               f"未匹配 {summary.get('none', 0)}，无效 {summary.get('invalid', 0)}")


def _describe(answer: dict) -> str:
    admin = " ".join(answer[k]["name"] for k in ("county", "town", "community") if answer.get(k))
    match = answer.get("match")
    lines = []
    if match:
        flag = "（有歧义，请核实）" if match["ambiguous"] else ""
        lines.append(f"匹配：{match['address'] or '无'}  级别 {match['level']}  得分 {match['score']:.2f}{flag}")
        for c in match["candidates"][1:] if match["ambiguous"] else []:
            lines.append(f"  备选：{c['address']}（{c['score']:.2f}，网格 {c.get('grid_code') or '-'}）")
    if answer.get("lon") is not None:
        lines.append(f"位置 {answer['lon']:.6f}, {answer['lat']:.6f}  {admin}".rstrip())
    elif admin:
        lines.append(f"区域：{admin}")
    if answer["grid"]:
        lines.append(f"网格：{answer['grid']['name']}（{answer['grid']['code']}）")
    elif answer.get("grids"):
        lines.append(f"下辖网格 {len(answer['grids'])} 个：{'、'.join(g['name'] for g in answer['grids'][:10])}"
                     + ("…" if len(answer["grids"]) > 10 else ""))
    elif answer.get("lon") is not None:
        near = answer["nearest_grid"]
        lines.append("不在任何网格内" + (f"；最近的网格：{near['name']}，{near['distance_m']:.0f} 米" if near else ""))
    for w in answer["workers"]:
        lines.append(f"  {w['role']}：{w['name']}  {w['phone']}")
    if answer["station"]:
        lines.append(f"最近的党群服务站：{answer['station']['name']}，{answer['station']['distance_m']:.0f} 米")
    if answer["precinct"]:
        lines.append(f"派出所：{answer['precinct']['name']}  {answer['precinct']['phone']}")
    return "\n".join(lines)


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="without --out: the .gpkg to write for GIS users; "
                                                "with --out: a layer name, e.g. grids")],
    out: Annotated[Path | None, typer.Option("--out", help="one layer's file: .geojson, .json, .gpkg or .csv")] = None,
    db: DbOption = None,
) -> None:
    """GIS export (every spatial layer, incidents anonymised): `export OUT.gpkg`; one layer: `export LAYER --out FILE`."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.cli_store import export_package_command
    from gridmap.schema import LAYERS

    if out is None:
        export_package_command(Path(target), db)
        return
    layer = target
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


token_app = typer.Typer(help="Bearer tokens: create and revoke (only hashes are stored)", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin | dispatcher | worker | planner")],
    worker: Annotated[str | None, typer.Option(help="worker code, for --role worker")] = None,
    label: Annotated[str | None, typer.Option(help="a note on whose token this is")] = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it once (it takes effect at once, also on running servers)."""
    from gridmap import auth
    from gridmap.bootstrap import open_configured_store

    try:
        store = open_configured_store(_settings(db))
        workers = set(store.read_layer("workers")["code"])
        token_id, token = auth.create_token(store, role=role, worker_code=worker, label=label,
                                            known_workers=workers)
    except GridmapError as exc:
        _fail(exc.message)
    typer.echo(token)
    typer.echo(f"令牌编号 {token_id}（撤销：gridmap token revoke {token_id}）", err=True)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="token id shown at creation")], db: DbOption = None) -> None:
    """Revoke a token by its id (takes effect at once)."""
    from gridmap import auth
    from gridmap.store import open_store

    try:
        auth.revoke_token(open_store(_settings(db).db), token_id)
    except GridmapError as exc:
        _fail(exc.message)
    typer.echo(f"已撤销令牌 {token_id}")


from gridmap.cli_maps import map_command
from gridmap.cli_planning import plan_app
from gridmap.cli_store import backup, migrate, restore
from gridmap.cli_topology import check_topology_command

app.command("map")(map_command)
app.command("backup")(backup)
app.command("restore")(restore)
app.command("migrate")(migrate)
app.command("check-topology")(check_topology_command)

app.add_typer(plan_app, name="plan")


def main() -> None:  # pragma: no cover - console entry for `python -m gridmap`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
