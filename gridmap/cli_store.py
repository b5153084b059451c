"""``gridmap backup``, ``gridmap restore`` and the GIS export (``gridmap export OUT.gpkg``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.errors import GridmapError

DbOption = Annotated[str | None, typer.Option("--db", help="GeoPackage path or postgresql:// URL (default: $GRIDMAP_DB or ./gridmap.gpkg)")]


def _db(db: str | None) -> Path:
    """The GeoPackage file of ``backup``/``restore``; a PostGIS store is backed up by PostgreSQL's tools."""
    from gridmap.settings import Settings

    settings = Settings(db=db) if db is not None else Settings()
    if settings.server_mode:
        _fail("PostGIS 存储请用 PostgreSQL 的工具备份和恢复（pg_dump / pg_restore，或基础备份加 WAL 归档），"
              "见 docs/deploy.md")
    return Path(settings.db)


def _fail(message: str) -> None:
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(1)


def export_package_command(out: Path, db: str | None) -> None:
    """Every spatial layer and anonymised incident points, for GIS users (never the live store)."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.exporting import export_package
    from gridmap.settings import Settings

    if out.suffix.lower() != ".gpkg":
        typer.echo(f"错误：{out} 不是 .gpkg 文件名。导出供 GIS 使用的数据包：gridmap export OUT.gpkg；"
                   "导出单个图层：gridmap export LAYER --out FILE", err=True)
        raise typer.Exit(2)
    try:
        store = open_configured_store(Settings(db=db) if db is not None else Settings())
        report = export_package(store, out)
    except GridmapError as exc:
        _fail(exc.message)
    counts = "，".join(f"{name} {n}" for name, n in report.counts.items())
    typer.echo(f"已导出 {out}：{counts}")
    typer.echo("事件只含匿名字段（类别、状态、时间、网格、社区、优先级；敏感类别位置约 100 米精度），"
               "不含描述、地址、上报人姓名和电话；不含网格员名册。")


def backup(
    out: Annotated[Path, typer.Argument(help="backup file to write (.gpkg); its key file goes to OUT.key")],
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="replace OUT if it exists")] = False,
) -> None:
    """Consistent copy of the store while the server runs (SQLite online backup, WAL included), mode 0600."""
    from gridmap.store.backup import backup as run_backup

    try:
        done = run_backup(_db(db), out, overwrite=force)
    except GridmapError as exc:
        _fail(exc.message)
    typer.echo(f"已备份到 {done.path}：事件 {done.incidents} 条，数据版本 {done.revision or '（未导入）'}，权限 0600")
    if done.key:
        typer.echo(f"回执密钥已复制到 {done.key}（权限 0600）：它与备份一起才能验证已发出的回执，请同样妥善保管")
    else:
        typer.echo("注意：数据库旁没有密钥文件（回执密钥来自 GRIDMAP_SECRET，或尚未生成），备份中不含密钥；"
                   "恢复后请继续使用同一 GRIDMAP_SECRET")
    typer.echo(f"恢复：gridmap restore {done.path} --db 数据库路径")


def restore(
    source: Annotated[Path, typer.Argument(help="a backup written by gridmap backup (IN.key is restored too)")],
    db: DbOption = None,
) -> None:
    """Replace the store with a backup, in one transaction; anything but a gridmap GeoPackage is refused."""
    from gridmap.store.backup import restore as run_restore

    try:
        done = run_restore(source, _db(db))
    except GridmapError as exc:
        _fail(f"{exc.message}；数据库未作任何改动")
    typer.echo(f"已从 {source} 恢复到 {done.path}：事件 {done.incidents} 条，数据版本 {done.revision or '（未导入）'}")
    if done.key:
        typer.echo(f"回执密钥已恢复到 {done.key}")
    else:
        typer.echo("备份旁没有密钥文件：沿用现有密钥（或 GRIDMAP_SECRET）；若与备份时不同，已发出的回执将无法验证")
    typer.echo("正在运行的服务请重启，以重新读取密钥和索引")


def migrate(db: DbOption = None) -> None:
    """Upgrade a store written by an earlier release in place (GeoPackage or PostGIS); safe to repeat."""
    from gridmap.settings import Settings
    from gridmap.store import open_store

    settings = Settings(db=db) if db is not None else Settings()
    if not settings.server_mode and not Path(settings.db).exists():
        _fail(f"数据库 {settings.db} 不存在")
    store = open_store(settings.db, secret=settings.secret)
    try:
        before = store.schema_version()
        store.migrate()
        after = store.schema_version()
    except GridmapError as exc:
        _fail(f"{exc.message}；数据库未作任何改动")
    finally:
        store.close()
    typer.echo(f"数据库结构版本 {before} → {after}" if after != before else f"数据库结构已是最新（版本 {after}）")
