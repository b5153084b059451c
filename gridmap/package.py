"""Reading a data package (a GeoPackage, a folder of layer files, or a zip of that folder) into frames.

A folder holds each layer as ``<layer><suffix>`` in any of the formats of ``gridmap/formats.py`` (GeoJSON,
GeoPackage, Shapefile zipped or not, FlatGeobuf, KML/KMZ, CSV, ``.xlsx``). Columns are mapped to the layer's
fields by ``gridmap/columns.py`` (the alias table, or a mapping file); columns that map to nothing are reported.

Reading never raises for bad content: type problems are collected as ``Problem``s so that the
importer can report every problem at once. Only an unreadable package raises.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import shapely

from gridmap.archives import ZIP_MAGIC, UploadLimits, unzip
from gridmap.columns import LEVELS, Mapping, load_mapping, normal, plan
from gridmap.errors import PackageUnreadable
from gridmap.formats import LAYER_SUFFIXES, read_layer_file, unzip_layer
from gridmap.geo import WGS84, check_crs, to_wgs84
from gridmap.problems import Problem
from gridmap.schema import LAYERS, Layer

FOLDER_SUFFIXES = LAYER_SUFFIXES
MAPPING_FILE = "mapping.toml"
"""A mapping file inside a package folder is used when no other is given (so an upload can carry its own)."""

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
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per layer, the source columns read under another name (网格编码 → code), for the report."""
    files: dict[str, str] = field(default_factory=dict)
    """Per layer, the file it was read from."""


def read_package(path: Path | str, *, source_crs: str | None = None, encoding: str | None = None,
                 mapping: Mapping | Path | str | None = None, limits: UploadLimits | None = None) -> Package:
    """Read and conform every layer. ``encoding`` overrides the text encoding of DBF and CSV files;
    ``mapping`` (a mapping file) names columns the alias table does not know; ``limits`` bound what zips
    inside the package may unpack to."""
    path = Path(path)
    if source_crs is not None:
        try:
            source_crs = check_crs(source_crs)
        except ValueError as exc:
            raise PackageUnreadable(str(exc)) from exc
    if encoding is not None:
        from gridmap.formats import codec_of

        codec_of(encoding, "--encoding")  # a typo fails before any file is read
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if not path.exists():
        raise PackageUnreadable(f"数据包不存在：{path}")
    limits = limits or UploadLimits()
    with tempfile.TemporaryDirectory(prefix="gridmap-read-", dir=limits.tmp_dir) as tmp:
        work = Path(tmp)
        if path.is_file() and _starts_with(path, ZIP_MAGIC):
            path = _unzipped_package(path, work / "package", limits)
        if path.is_file() and path.suffix.lower() in FOLDER_SUFFIXES and path.suffix.lower() != ".gpkg":
            raise PackageUnreadable(f"{path.name} 是单个图层文件：数据包应为 .gpkg 文件、目录或其 zip；"
                                    "请把它放进目录，以图层命名（如 grids.shp），与其他图层一起导入")
        if path.is_dir():
            if mapping is None and (path / MAPPING_FILE).is_file():
                mapping = load_mapping(path / MAPPING_FILE)
            raw, files = _read_folder(path, encoding, work, limits)
        else:
            raw, files = _read_geopackage(path), {name: f"{path.name}/{name}" for name in LAYERS}
    problems: list[Problem] = []
    layers: dict[str, Frame] = {}
    columns: dict[str, dict[str, str]] = {}
    for name, layer in LAYERS.items():
        if name not in raw:
            if not layer.optional:
                problems.append(Problem.error(name, None, f"缺少必需图层 {name}"))
            continue
        frame, columns[name] = _map_columns(layer, raw[name], mapping, problems)
        layers[name] = _conform(layer, frame, source_crs, problems)
    _codes_from_names(layers, problems)
    return Package(layers=layers, problems=problems, source=str(path), columns=columns,
                   files={name: files[name] for name in layers})


REFERENCES = (("community_code", "regions", "community"), ("parent_code", "regions", None),
              ("grid_code", "grids", None))
"""Reference fields that files often fill with a name (所属社区: 双塔社区), the layer named, and its level."""


def _codes_from_names(layers: dict[str, Frame], problems: list[Problem]) -> None:
    """Chinese levels (社区, 街道) become the package's, and a reference written as a name becomes the code of
    the one feature of that name, reported as a warning; a name two features share is left for validation."""
    regions = layers.get("regions")
    if regions is not None:
        regions["level"] = [LEVELS.get(normal(v), v) for v in regions["level"]]
    for field_name, target, level in REFERENCES:
        frame = layers.get(target)
        if frame is None:
            continue
        chosen = frame if level is None else frame[frame["level"] == level]
        codes = set(frame["code"])
        names = chosen["name"].value_counts()
        by_name = dict(zip(chosen["name"], chosen["code"]))
        for name, layer in layers.items():
            if field_name not in LAYERS[name].field_names:
                continue
            values = layer[field_name].tolist()
            replaced = {v: by_name[v] for v in set(values)
                        if v and v not in codes and v in by_name and names[v] == 1}
            if replaced:
                layer[field_name] = [replaced.get(v, v) for v in values]
                shown = "，".join(f"{k}→{v}" for k, v in sorted(replaced.items())[:5])
                problems.append(Problem.warning(name, None, f"{field_name} 填的是名称，已按名称对应到编码：{shown}"
                                                + ("等" if len(replaced) > 5 else ""), field=field_name))


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as file:
        return file.read(len(magic)) == magic


def _unzipped_package(path: Path, folder: Path, limits: UploadLimits) -> Path:
    """A zip of a package folder (the folder itself, or its files at the top)."""
    unzip(path.read_bytes(), folder, limits)
    entries = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _map_columns(layer: Layer, frame: Frame, mapping: Mapping | None,
                 problems: list[Problem]) -> tuple[Frame, dict[str, str]]:
    """Rename the file's columns to the layer's fields; report unknown columns (those with any value) and
    columns that two names claim (a KML ``<name>`` gives way to a mapped column of its own)."""
    columns = [c for c in frame.columns if not (isinstance(frame, gpd.GeoDataFrame) and c == frame.geometry.name)]
    found = plan(layer, [str(c) for c in columns], mapping)
    weak = set(frame.attrs.get("weak_columns", ()))
    for target, sources in list(found.clashes.items()):
        strong = [s for s in sources if s not in weak]
        if len(strong) == 1:
            for source in sources:
                if source in weak:
                    del found.renames[source]
            continue
        problems.append(Problem.error(layer.name, None, f"列 {'、'.join(sources)} 都对应字段 {target}：请删去一列，"
                                                          "或在映射文件中指定", field=target))
    unknown = [c for c in found.unknown if any(_as_text(v) for v in frame[c])]
    if unknown:
        problems.append(Problem.warning(layer.name, None, f"未识别的列 {'、'.join(unknown)}：未导入（可在映射文件中"
                                                            "指定对应字段，见 docs/data-package.md）",
                                        extra={"columns": unknown}))
    renames = {source: target for source, target in found.renames.items()
               if target not in found.clashes or source not in weak}
    for target, sources in found.clashes.items():  # left in error: read the first, so the rest can be checked
        for source in [s for s in sources if s in renames][1:]:
            del renames[source]
    kept = [c for c in columns if c in renames]
    out = frame[kept + ([frame.geometry.name] if isinstance(frame, gpd.GeoDataFrame) else [])]
    out = out.rename(columns=renames)
    if isinstance(frame, gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry=frame.geometry.name, crs=frame.crs)
    return out, {source: target for source, target in renames.items() if normal(source) != target}


def _read_geopackage(path: Path) -> dict[str, Frame]:
    source = _gdal_source(path, "GPKG")
    try:
        available = {str(row[0]) for row in pyogrio.list_layers(source)}
    except Exception as exc:  # GDAL reports many formats of failure; all mean "cannot open"
        raise PackageUnreadable(f"无法读取数据包 {path.name}：{exc}") from exc
    return {name: _read_file(path, layer=name, driver="GPKG") for name in LAYERS if name in available}


def _read_folder(path: Path, encoding: str | None, work: Path,
                 limits: UploadLimits) -> tuple[dict[str, Frame], dict[str, str]]:
    """Each layer from ``<layer><suffix>`` (the suffix in any case: ``GRIDS.SHP`` from old tools too)."""
    by_name: dict[str, list[Path]] = {}
    for file in path.iterdir():
        if file.is_file() and file.suffix.lower() in FOLDER_SUFFIXES:
            by_name.setdefault(file.stem.lower(), []).append(file)
    out: dict[str, Frame] = {}
    files: dict[str, str] = {}
    for name, layer in LAYERS.items():
        found = sorted(by_name.get(name, []))
        if len(found) > 1:
            raise PackageUnreadable(f"图层 {name} 有多个文件：{', '.join(p.name for p in found)}")
        if found:
            file = found[0]
            if file.suffix.lower() == ".zip":  # a zipped layer: read the one layer file inside as it is
                file = unzip_layer(file, work, limits)
            suffix = file.suffix.lower()
            if suffix == ".gpkg":
                out[name] = _read_file(file, layer=_gpkg_layer(file, name), driver="GPKG")
            elif suffix in GDAL_DRIVERS:
                out[name] = _read_file(file, driver=GDAL_DRIVERS[suffix])
            else:
                out[name] = read_layer_file(file, spatial=layer.spatial, encoding=encoding, work=work,
                                            limits=limits)
            files[name] = found[0].name
    return out, files


def _gpkg_layer(path: Path, name: str) -> str | None:
    """The layer named after the package layer if the file has one (a GeoPackage of several), else its first."""
    source = _gdal_source(path, "GPKG")
    try:
        available = [str(row[0]) for row in pyogrio.list_layers(source)]
    except Exception as exc:  # GDAL reports many formats of failure; all mean "cannot open"
        raise PackageUnreadable(f"无法读取 {path.name}：{exc}") from exc
    return name if name in available else None


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
        problems.append(Problem.error(layer.name, None, "图层没有几何字段（表格需有 WKT 列，如 geometry、wkt，"
                                                          "或坐标列，如 lon/lat、经度/纬度、x/y）"))
        return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([None] * len(out)), crs=WGS84)
    gdf = gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs)
    gdf = to_wgs84(gdf, source_crs)
    gdf.geometry = shapely.force_2d(gdf.geometry.values)
    _check_lonlat(layer, gdf, problems)
    return gdf


def _check_lonlat(layer: Layer, gdf: gpd.GeoDataFrame, problems: list[Problem]) -> None:
    """Coordinates outside longitude/latitude mean a projected file read without its CRS (a Shapefile
    without ``.prj``, x/y columns in metres): one error for the layer, naming the way out."""
    present = gdf.geometry.values[~gdf.geometry.isna().to_numpy()]
    if not len(present):
        return
    west, south, east, north = shapely.total_bounds(present)
    if west < -180 or east > 180 or south < -90 or north > 90:
        problems.append(Problem.error(layer.name, None, f"坐标超出经纬度范围（{west:.0f}, {south:.0f} – {east:.0f}, "
                                                          f"{north:.0f}）：文件缺少坐标系（如 Shapefile 的 .prj），"
                                                          "请补上，或用 --source-crs 指定（如 EPSG:4546）"))


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
