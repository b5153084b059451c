"""Reading a data package (a GeoPackage, or a folder of GeoJSON/GeoPackage/CSV files) into frames.

Reading never raises for bad content: type problems are collected as ``Problem``s so that the
importer can report every problem at once. Only an unreadable package raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridmap.errors import PackageUnreadable
from gridmap.geo import WGS84, check_crs, to_wgs84
from gridmap.problems import Problem
from gridmap.schema import LAYERS, Layer

FOLDER_SUFFIXES = (".geojson", ".json", ".gpkg", ".csv")

Frame = gpd.GeoDataFrame | pd.DataFrame


@dataclass
class Package:
    layers: dict[str, Frame]
    problems: list[Problem]
    source: str


def read_package(path: Path | str, *, source_crs: str | None = None) -> Package:
    path = Path(path)
    if source_crs is not None:
        try:
            source_crs = check_crs(source_crs)
        except ValueError as exc:
            raise PackageUnreadable(str(exc)) from exc
    if not path.exists():
        raise PackageUnreadable(f"数据包不存在：{path}")
    raw = _read_folder(path) if path.is_dir() else _read_geopackage(path)
    problems: list[Problem] = []
    layers: dict[str, Frame] = {}
    for name, layer in LAYERS.items():
        if name not in raw:
            if not layer.optional:
                problems.append(Problem.error(name, None, f"缺少必需图层 {name}"))
            continue
        layers[name] = _conform(layer, raw[name], source_crs, problems)
    return Package(layers=layers, problems=problems, source=str(path))


def _read_geopackage(path: Path) -> dict[str, Frame]:
    try:
        available = {str(row[0]) for row in pyogrio.list_layers(path)}
    except Exception as exc:  # GDAL reports many formats of failure; all mean "cannot open"
        raise PackageUnreadable(f"无法读取数据包 {path.name}：{exc}") from exc
    return {name: _read_file(path, layer=name) for name in LAYERS if name in available}


def _read_folder(path: Path) -> dict[str, Frame]:
    out: dict[str, Frame] = {}
    for name in LAYERS:
        found = [path / f"{name}{suffix}" for suffix in FOLDER_SUFFIXES if (path / f"{name}{suffix}").exists()]
        if len(found) > 1:
            raise PackageUnreadable(f"图层 {name} 有多个文件：{', '.join(p.name for p in found)}")
        if found:
            file = found[0]
            out[name] = _read_csv(file) if file.suffix == ".csv" else _read_file(file)
    return out


def _read_file(path: Path, layer: str | None = None) -> Frame:
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        raise PackageUnreadable(f"无法读取 {path.name}{'/' + layer if layer else ''}：{exc}") from exc
    return frame


def _read_csv(path: Path) -> Frame:
    """CSV: attributes only, or point geometry from lon/lat columns, or WKT in a ``geometry`` column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PackageUnreadable(f"无法读取 {path.name}：{exc}") from exc
    if {"lon", "lat"} <= set(frame.columns):
        lon = pd.to_numeric(frame.pop("lon"), errors="coerce")
        lat = pd.to_numeric(frame.pop("lat"), errors="coerce")
        return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=None)
    if "geometry" in frame.columns:
        wkt = frame.pop("geometry").replace("", None)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries.from_wkt(wkt, on_invalid="ignore"), crs=None)
    return frame


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _conform(layer: Layer, frame: Frame, source_crs: str | None, problems: list[Problem]) -> Frame:
    """Bring a raw layer to the contract: columns in order, text/int types, WGS84 geometry."""
    columns = set(frame.columns)
    out = pd.DataFrame(index=range(len(frame)))
    codes = [_as_text(v) for v in frame["code"]] if "code" in columns else [""] * len(frame)
    for f in layer.fields:
        if f.name not in columns:
            if f.required and len(frame):  # an empty GeoJSON layer carries no field definitions
                problems.append(Problem.error(layer.name, None, f"缺少必需字段 {f.name}", field=f.name))
            out[f.name] = 0 if f.type == "int" else ""
            continue
        values = [_as_text(v) for v in frame[f.name]]
        if f.type == "int":
            out[f.name] = _ints(layer, f.name, values, codes, problems)
        else:
            out[f.name] = values
    if not layer.spatial:
        return out
    if not isinstance(frame, gpd.GeoDataFrame):
        problems.append(Problem.error(layer.name, None, "图层没有几何字段"))
        return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([None] * len(out)), crs=WGS84)
    gdf = gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs)
    gdf = to_wgs84(gdf, source_crs)
    gdf.geometry = shapely.force_2d(gdf.geometry.values)
    return gdf


def _ints(layer: Layer, field: str, values: list[str], codes: list[str], problems: list[Problem]) -> np.ndarray:
    parsed = np.zeros(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        try:
            number = float(value) if value else math.nan
        except ValueError:
            number = math.nan
        if math.isnan(number) or not number.is_integer() or number < 0:
            problems.append(
                Problem.error(layer.name, codes[i] or None, f"字段 {field} 应为非负整数，实为 {value!r}", field=field)
            )
            continue
        parsed[i] = int(number)
    return parsed
