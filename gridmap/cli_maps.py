"""``gridmap map dispatcher|worker CODE|planner --out FILE.html``: the served maps as standalone files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.errors import GridmapError
from gridmap.settings import Settings


def map_command(
    kind: Annotated[str, typer.Argument(help="dispatcher | worker | planner")],
    code: Annotated[str | None, typer.Argument(help="worker code, for the worker map (e.g. W0002)")] = None,
    out: Annotated[Path, typer.Option("--out", help="output HTML file")] = Path("map.html"),
    db: Annotated[str | None, typer.Option("--db", help="GeoPackage path or postgresql:// URL (default: $GRIDMAP_DB)")] = None,
    assets: Annotated[str, typer.Option(help="inline: one self-contained file; beside: FILE_files/ next to it")
                      ] = "inline",
    radius: Annotated[float, typer.Option(help="planner: service radius in metres")] = 500,
    api: Annotated[str | None, typer.Option(help="address search endpoint the file may call, "
                                                 "e.g. http://gridmap.local/v1/lookup")] = None,
    demo_incidents: Annotated[int, typer.Option(help="draw N synthetic incidents instead of the stored ones "
                                                     "(demonstrations, benchmarks)")] = 0,
) -> None:
    """Write a map as a standalone HTML file that needs no internet except for basemap tiles."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.coverage.service import Coverage
    from gridmap.maps import MapContext
    from gridmap.maps.basemaps import basemaps
    from gridmap.maps.build import KINDS, map_page
    from gridmap.maps.incidents import load_incidents, synthetic_incidents

    if kind not in KINDS:
        typer.echo(f"错误：未知的地图 {kind}（可选：{'、'.join(KINDS)}）", err=True)
        raise typer.Exit(2)
    if assets not in ("inline", "beside"):
        typer.echo("错误：--assets 只能是 inline 或 beside", err=True)
        raise typer.Exit(2)
    settings = Settings(db=db) if db is not None else Settings()
    try:
        store = open_configured_store(settings)
        coverage = Coverage.from_layers(store.read_layers(), revision=store.revision())
        incidents = (synthetic_incidents(coverage, demo_incidents) if demo_incidents
                     else load_incidents(store, coverage))
        ctx = MapContext(coverage, basemaps(settings), incidents, api=api)
        html = map_page(kind, ctx, code=code, radius_m=radius, mode=assets, assets_dir=settings.map_assets,
                        out=out)
    except GridmapError as exc:
        typer.echo(f"错误：{exc.message}", err=True)
        raise typer.Exit(1) from None
    out.write_text(html, encoding="utf-8")
    size = out.stat().st_size / 1024 / 1024
    beside = f"（资源在 {out.stem}_files/）" if assets == "beside" else ""
    typer.echo(f"已导出{kind}地图 → {out}（{size:.1f} MB）{beside}")
