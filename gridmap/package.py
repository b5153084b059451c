"""Reading a data package (a GeoPackage, or a folder of GeoJSON/GeoPackage/CSV files) into frames.

Reading never raises for bad content: type problems are collected as ``Problem``s so that the
importer can report every problem at once. Only an unreadable package raises.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import shapely

from gridmap.errors import PackageUnreadable
from gridmap.geo import WGS84, check_crs, to_wgs84
from gridmap.problems import Problem
from gridmap.schema import LAYERS, Layer

FOLDER_SUFFIXES = (".geojson", ".json", ".gpkg", ".csv")

GDAL_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
"""The only GDAL drivers a package is opened with, by suffix (CSV is read by pandas, not GDAL).

GDAL otherwise picks a driver by content, and some drivers follow what a file names: an OGR VRT
(XML) saved as ``grids.geojson`` reads any file of the server, STAC or tile-index JSON fetch URLs.
So each file is first checked to be what its suffix says, then opened with its driver forced by
GDAL's ``DRIVER:path`` syntax, which never falls back to another driver.
"""
SQLITE_MAGIC = b"SQLite format 3\x00"
SAFE_CRS_NAME = re.compile(r"[A-Za-z0-9:._\- ]{1,200}")
"""A GeoJSON ``crs`` name such as ``urn:ogc:def:crs:EPSG::4490``; no ``/`` so never a path or URL."""

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
    source = _gdal_source(path, "GPKG")
    try:
        available = {str(row[0]) for row in pyogrio.list_layers(source)}
    except Exception as exc:  # GDAL reports many formats of failure; all mean "cannot open"
        raise PackageUnreadable(f"无法读取数据包 {path.name}：{exc}") from exc
    return {name: _read_file(path, layer=name, driver="GPKG") for name in LAYERS if name in available}


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


def _read_file(path: Path, layer: str | None = None, driver: str | None = None) -> Frame:
    source = _gdal_source(path, driver)
    try:
        frame = pyogrio.read_dataframe(source, layer=layer)
    except Exception as exc:
        raise PackageUnreadable(f"无法读取 {path.name}{'/' + layer if layer else ''}：{exc}") from exc
    return frame


def _gdal_source(path: Path, driver: str | None = None) -> str:
    """The name GDAL opens ``path`` by, its driver forced; refuses a file that is not what it should be.

    The driver is the one its suffix says in a folder; a package given as one file is a GeoPackage.
    """
    driver = driver or GDAL_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise PackageUnreadable(f"{path.name}：不支持的文件类型（只接受 GeoPackage、GeoJSON 与 CSV）")
    with path.open("rb") as file:
        head = file.read(4096)
    if driver == "GPKG" and not head.startswith(SQLITE_MAGIC):
        raise PackageUnreadable(f"{path.name} 不是 GeoPackage 文件（内容不是 SQLite 数据库）")
    if driver == "GeoJSON":
        _check_geojson(path, head)
    return f"{driver}:{path}"


def _check_geojson(path: Path, head: bytes) -> None:
    """A GeoJSON object whose ``crs``, if any, is a CRS name, never a link, a URL or a file path.

    GDAL fetches a ``"crs": {"type": "link"}`` href over HTTP while reading, so the file is parsed
    here first (the unpacked size of an upload is bounded, see the importer).
    """
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"<"):
        raise PackageUnreadable(f"{path.name} 不是 GeoJSON 文件：内容是 XML（如 OGR VRT），不予读取")
    if not start.startswith(b"{"):
        raise PackageUnreadable(f"{path.name} 不是 GeoJSON 文件：内容不是 JSON 对象")
    raw = path.read_bytes()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # GDAL accepts NaN and Infinity in properties; so does the standard parser
            document = json.loads(raw.decode("utf-8-sig"))
        except (ValueError, RecursionError) as exc:
            raise PackageUnreadable(f"{path.name} 不是有效的 JSON：{str(exc)[:200]}") from None
    crs = document.get("crs") if isinstance(document, dict) else None
    if crs is None:
        return
    kind = crs.get("type") if isinstance(crs, dict) else None
    properties = crs.get("properties") if isinstance(crs, dict) else None
    if not isinstance(properties, dict):
        properties = {}
    name = properties.get("name")
    if kind == "name" and isinstance(name, str) and SAFE_CRS_NAME.fullmatch(name):
        return
    if kind == "EPSG" and isinstance(properties.get("code"), int):
        return
    raise PackageUnreadable(f"{path.name} 的 crs 只能写坐标系名称（如 urn:ogc:def:crs:EPSG::4490），"
                            "不接受链接、网址或文件路径")


def _read_csv(path: Path) -> Frame:
    """CSV: attributes only, or point geometry from lon/lat columns, or WKT in a ``geometry`` column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except ValueError as exc:  # undecodable, unparsable or empty: pandas' errors all derive from it
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
