"""Planning results as files a planner opens elsewhere: GeoJSON (QGIS, web maps) and CSV (Excel).

CSV is written with a UTF-8 BOM so Excel shows the Chinese names; nested values are flattened.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from gridmap.planning.service import SitingResult, _flat

FORMATS = ("json", "geojson", "csv")

_BEFORE_AFTER = ("households", "households_covered", "population", "population_covered", "share",
                 "mean_distance_m")


def check_format(fmt: str) -> str:
    from gridmap.errors import InvalidInput

    if fmt not in FORMATS:
        raise InvalidInput(f"不支持的格式 {fmt!r}：请用 json、geojson 或 csv")
    return fmt


def _csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return "\ufeff" + buffer.getvalue()


def proposals_geojson(result: SitingResult) -> dict[str, Any]:
    """Proposed sites as Point features; the run's summary in the collection's ``properties``."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": _flat(row),
        }
        for row in result.answer["proposals"]
    ]
    summary = {k: v for k, v in result.answer.items() if k not in ("proposals",)}
    return {"type": "FeatureCollection", "features": features, "properties": summary}


def proposals_csv(result: SitingResult) -> str:
    """One row per proposed site: coordinates, address, community, grid, households newly covered."""
    return _csv([_flat(r) for r in result.answer["proposals"]])


def communities_csv(result: SitingResult) -> str:
    """Before/after coverage per community, one row each (``before_share``, ``after_share`` …)."""
    rows = []
    for c in result.answer["communities"] + [{"code": "", "name": "合计", **{
            "before": result.answer["before"], "after": result.answer["after"]}}]:
        row = {"code": c["code"], "name": c["name"]}
        for side in ("before", "after"):
            for key in _BEFORE_AFTER:
                row[f"{side}_{key}"] = c[side][key]
        rows.append(row)
    return _csv(rows)


def coverage_csv(report: dict[str, Any]) -> str:
    """Coverage per community and per grid (``level`` column), then the total."""
    rows = [{"level": "community", **c} for c in report["communities"]]
    rows += [{"level": "grid", **g} for g in report["grids"]]
    rows.append({"level": "total", "code": "", "name": "合计", **report["total"]})
    columns = ["level", "code", "name", "community_code", "buildings", "buildings_covered", "households",
               "households_covered", "households_uncovered", "population", "population_covered",
               "population_uncovered", "share", "population_share", "mean_distance_m"]
    return _csv(rows, columns)


def coverage_geojson(report: dict[str, Any], grids_geometry: dict[str, Any]) -> dict[str, Any]:
    """Grids as polygons carrying their coverage counts (a choropleth of who is left out)."""
    features = [
        {"type": "Feature", "geometry": grids_geometry.get(g["code"]), "properties": g}
        for g in report["grids"]
    ]
    summary = {k: v for k, v in report.items() if k not in ("grids",)}
    return {"type": "FeatureCollection", "features": features, "properties": summary}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
