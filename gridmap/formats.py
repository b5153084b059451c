"""Reading one layer file in the forms people have: Shapefile (zipped or not), CSV, ``.xlsx``, KML/KMZ,
FlatGeobuf, GeoJSON and GeoPackage. Each reader gives raw columns; ``gridmap/package.py`` maps them to fields.

Only these formats are read, each by its own reader (the allow-list of docs/security.md, "Inputs"):

- GeoJSON and GeoPackage through GDAL with the driver forced (``GeoJSON:``/``GPKG:`` prefixes), after a check
  of the content (see ``gridmap/package.py``).
- Shapefile and FlatGeobuf through GDAL, which has no prefix to force these drivers: the file's magic number is
  checked first, and nothing that starts with it is claimed by another driver (XML, JSON and SQLite cannot).
- KML is parsed here (ElementTree, a document type refused), never by GDAL: GDAL would hand an XML file to the
  first driver that claims it (GML fetches schemas, LIBKML follows network links), and its KML driver ignores
  the ``<Data>`` elements that web maps write.
- CSV and ``.xlsx`` are read as text by ``gridmap/coverage/tables.py`` (GBK detection, python-calamine with its
  zip bomb checks); geometry comes from a WKT column or a pair of coordinate columns.

Zips (a zipped Shapefile, a KMZ) are unpacked under the same limits as an uploaded package.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry import LinearRing, LineString, Point, Polygon

from gridmap.archives import UploadLimits, unzip
from gridmap.columns import find_geometry_columns
from gridmap.errors import GridmapError, PackageUnreadable, PayloadTooLarge

Frame = gpd.GeoDataFrame | pd.DataFrame

LAYER_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb", ".kml", ".kmz", ".csv", ".xlsx")
"""The forms a layer may take in a package folder, as ``<layer><suffix>``."""
INNER_SUFFIXES = tuple(s for s in LAYER_SUFFIXES if s not in (".zip", ".kmz"))
"""What a zipped layer (``grids.zip``) may hold: one layer file, not another zip."""

SHP_MAGIC = b"\x00\x00\x27\x0a"
FGB_MAGIC = re.compile(rb"fgb[\x00-\x09]fgb.", re.DOTALL)
"""``fgb``, the major version, ``fgb``, the patch version."""
MAX_TABLE_ROWS = 2_000_000
DBF_SAMPLE_BYTES = 4 << 20
"""How much of a DBF is looked at to tell UTF-8 from GBK when no ``.cpg`` says."""

CODEPAGES = {"utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8", "gbk": "gb18030", "gb2312": "gb18030",
             "gb18030": "gb18030", "cp936": "gb18030", "936": "gb18030", "ansi 936": "gb18030",
             "54936": "gb18030", "big5": "big5", "950": "big5", "1252": "cp1252", "iso-8859-1": "latin-1",
             "88591": "latin-1", "8859-1": "latin-1", "latin1": "latin-1"}
"""A ``.cpg`` or ``--encoding`` value and the codec it means. GBK and GB2312 are read as GB18030, their superset."""


def read_layer_file(path: Path, *, spatial: bool, encoding: str | None, work: Path,
                    limits: UploadLimits) -> Frame:
    """One layer from ``path`` (not a ``.zip``: see ``unzip_layer``); ``work`` is a private folder for a KMZ."""
    suffix = path.suffix.lower()
    if suffix == ".shp":
        return read_shapefile(path, encoding)
    if suffix == ".fgb":
        return _read_gdal(path, _check_magic(path, "FlatGeobuf"))
    if suffix == ".kml":
        return read_kml(path.read_bytes(), path.name)
    if suffix == ".kmz":
        return read_kmz(path, work, limits)
    if suffix in (".csv", ".xlsx"):
        return read_table_file(path, spatial=spatial, encoding=encoding)
    raise PackageUnreadable(f"{path.name}：不支持的文件类型")  # GeoJSON and GeoPackage are read by the caller


def unzip_layer(path: Path, work: Path, limits: UploadLimits) -> Path:
    """The one layer file inside a zipped layer (``grids.zip`` holding grids.shp, .shx, .dbf, .prj, .cpg)."""
    folder = work / f"{path.stem}-{len(list(work.iterdir()))}"
    unzip(path.read_bytes(), folder, _remaining(work, limits))
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in INNER_SUFFIXES
                   and not any(part.startswith(("__MACOSX", ".")) for part in p.relative_to(folder).parts))
    if len(found) != 1:
        listed = "、".join(str(p.relative_to(folder)) for p in found) or "无"
        raise PackageUnreadable(f"{path.name} 中应恰有一个图层文件（Shapefile、GeoJSON、CSV 等），实有：{listed}")
    return found[0]


def _remaining(work: Path, limits: UploadLimits) -> UploadLimits:
    """The limits for one more zip inside a package: what all zips of the package unpack to together stays
    within ``max_bytes`` (so ten zipped layers cannot unpack to ten times the limit)."""
    used = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    return dataclasses.replace(limits, max_bytes=max(limits.max_bytes - used, 0))


def _check_magic(path: Path, driver: str) -> str:
    with path.open("rb") as file:
        head = file.read(8)
    ok = head.startswith(SHP_MAGIC) if driver == "ESRI Shapefile" else bool(FGB_MAGIC.match(head))
    if not ok:
        kind = {"ESRI Shapefile": "Shapefile（.shp）", "FlatGeobuf": "FlatGeobuf"}[driver]
        raise PackageUnreadable(f"{path.name} 不是 {kind} 文件（文件头不符）")
    return driver


def _read_gdal(path: Path, driver: str, encoding: str | None = None) -> Frame:
    try:
        if driver != "ESRI Shapefile" and pyogrio.read_info(path).get("driver") != driver:
            # belt and braces: the magic number should already have settled which driver GDAL picks
            raise PackageUnreadable(f"{path.name} 不是 {driver} 文件")
        frame = pyogrio.read_dataframe(path, encoding=encoding)
    except UnicodeDecodeError as exc:
        raise PackageUnreadable(f"{path.name} 的文字无法按 {encoding or 'UTF-8'} 解码（{exc.reason}）："
                                "请用 --encoding 指定编码（如 gbk）；UTF-8 的 DBF 字段名超过 10 字节会被截断，"
                                "可改存为 GBK") from None
    except PackageUnreadable:
        raise
    except Exception as exc:  # GDAL reports many kinds of failure; all mean "cannot open"
        raise PackageUnreadable(f"无法读取 {path.name}：{exc}") from exc
    return frame


# ---------------------------------------------------------------- Shapefile


def read_shapefile(path: Path, encoding: str | None = None) -> Frame:
    """A Shapefile with its ``.dbf`` and ``.shx`` beside it; CRS from ``.prj``; text as ``dbf_encoding`` says."""
    _check_magic(path, "ESRI Shapefile")
    parts = {p.suffix.lower(): p for p in path.parent.glob(f"{glob_escape(path.stem)}.*")}
    for needed in (".dbf", ".shx"):
        if needed not in parts:
            raise PackageUnreadable(f"{path.name} 缺少同名的 {path.stem}{needed} 文件（Shapefile 至少需要 .shp、.shx、"
                                    ".dbf）")
    codec = dbf_encoding(parts[".dbf"], parts.get(".cpg"), encoding)
    return _read_gdal(path, "ESRI Shapefile", codec)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def codec_of(name: str, source: str) -> str:
    codec = CODEPAGES.get(name.strip().lower().replace("_", "-").removeprefix("cp").strip()) or CODEPAGES.get(
        name.strip().lower().replace("_", "-"))
    if codec is None:
        raise PackageUnreadable(f"{source}：不支持的编码 {name.strip()[:40]}，可用 UTF-8、GBK、GB18030")
    return codec


def dbf_encoding(dbf: Path, cpg: Path | None, override: str | None) -> str:
    """The DBF's text encoding: ``--encoding`` if given, else its ``.cpg``, else detected from its bytes.

    Detection: text that decodes as UTF-8 is UTF-8 (GBK text almost never does), anything else is GB18030.
    The DBF's language driver byte is not trusted: ArcGIS and GDAL leave it 0 or write the wrong one.
    """
    if override:
        return codec_of(override, "--encoding")
    if cpg is not None:
        text = cpg.read_bytes()[:64].decode("ascii", errors="replace").strip()
        if text:
            return codec_of(text, cpg.name)
    return "utf-8" if _looks_utf8(dbf) else "gb18030"


def _looks_utf8(dbf: Path) -> bool:
    with dbf.open("rb") as file:
        head = file.read(DBF_SAMPLE_BYTES)
    if len(head) < 32:
        return True
    header_length = int.from_bytes(head[8:10], "little")
    record_length = max(int.from_bytes(head[10:12], "little"), 1)
    names = [head[i:i + 11].split(b"\x00")[0] for i in range(32, min(header_length, len(head)) - 31, 32)
             if head[i] != 0x0D]
    widths = [head[i + 16] for i in range(32, min(header_length, len(head)) - 31, 32) if head[i] != 0x0D]
    values: list[bytes] = list(names)
    body = head[header_length:]
    for start in range(0, len(body) - record_length + 1, record_length):
        offset = start + 1  # the deletion flag
        for width in widths:
            values.append(body[offset:offset + width].rstrip(b" \x00"))
            offset += width
    return all(_utf8(value) for value in values)


def _utf8(value: bytes) -> bool:
    """Valid UTF-8, allowing a character cut at the end (a DBF field is cut to its width in bytes)."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(value)
    return True


# ---------------------------------------------------------------- CSV and .xlsx


def read_table_file(path: Path, *, spatial: bool, encoding: str | None = None) -> Frame:
    """A CSV (UTF-8 or GBK, detected) or the first visible sheet of an ``.xlsx``, every cell as text.

    For a spatial layer, point geometry comes from a coordinate pair (``lon``/``lat``, ``经度``/``纬度``,
    ``x``/``y`` …) or any geometry from a WKT column (``geometry``, ``wkt`` …); its CRS from a ``.prj``
    beside the file (``buildings.prj``), else WGS84 or ``--source-crs``. ``encoding`` is used for a CSV that
    is not UTF-8 (GBK is detected without it).
    """
    from gridmap.coverage.tables import read_table

    data = path.read_bytes()
    if path.suffix.lower() == ".xlsx" and not data.startswith(b"PK\x03\x04"):
        raise PackageUnreadable(f"{path.name} 不是 .xlsx 文件（内容不是 zip）")
    if path.suffix.lower() == ".csv" and data.startswith(b"PK\x03\x04"):
        raise PackageUnreadable(f"{path.name} 不是 CSV 文件（内容是 zip，可能是 .xlsx）")
    if encoding and _utf8(data[:1 << 20]) and _utf8(data):
        encoding = None  # --encoding names the legacy encoding of DBFs and CSVs; a UTF-8 file stays UTF-8
    try:
        table = read_table(data, encoding=encoding, max_rows=MAX_TABLE_ROWS)
    except PayloadTooLarge as exc:
        raise PayloadTooLarge(f"{path.name}：{exc.message.split('；')[0]}") from None
    except GridmapError as exc:
        raise PackageUnreadable(f"{path.name}：{exc.message}") from None
    header = [cell.strip() for cell in table.header]
    header = [name or f"列{_letter(i)}" for i, name in enumerate(header)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PackageUnreadable(f"{path.name}：列名重复：{'、'.join(repeated)}")
    width = len(header)
    rows = [(row + [""] * width)[:width] for row in table.rows]
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    if not spatial:
        return frame
    columns = find_geometry_columns(header)
    if not columns:
        return frame
    crs = _sidecar_crs(path)
    if len(columns) == 2:
        x = pd.to_numeric(frame.pop(columns[0]).str.strip(), errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(frame.pop(columns[1]).str.strip(), errors="coerce").to_numpy(dtype=float)
        points = shapely.points(x, y)
        points[np.isnan(x) | np.isnan(y)] = None
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points), crs=crs)
    wkt = frame.pop(columns[0]).str.strip().replace("", None)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries.from_wkt(wkt, on_invalid="ignore"), crs=crs)


def _letter(index: int) -> str:
    from gridmap.coverage.tables import column_letter

    return column_letter(index)


def _sidecar_crs(path: Path) -> pyproj.CRS | None:
    """The CRS in ``<name>.prj`` beside a table: WKT (ESRI's or OGC's) or ``EPSG:code``; never a file or URL."""
    prj = path.with_suffix(".prj")
    if not prj.exists():
        return None
    text = prj.read_bytes()[:65536].decode("utf-8-sig", errors="replace").strip()
    try:
        if re.fullmatch(r"(?i)epsg:\d{4,6}", text):
            return pyproj.CRS.from_epsg(int(text.split(":")[1]))
        return pyproj.CRS.from_wkt(text)
    except pyproj.exceptions.CRSError:
        raise PackageUnreadable(f"{prj.name}：无法识别的坐标系（应为 WKT 或 EPSG:代码）") from None


# ---------------------------------------------------------------- KML and KMZ


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def read_kmz(path: Path, work: Path, limits: UploadLimits) -> Frame:
    """A KMZ is a zip of ``doc.kml`` (and icons): the KML at its root is read."""
    folder = work / f"{path.stem}-{len(list(work.iterdir()))}"
    unzip(path.read_bytes(), folder, _remaining(work, limits))
    kmls = sorted(p for p in folder.rglob("*.kml") if not any(
        part.startswith(("__MACOSX", ".")) for part in p.relative_to(folder).parts))
    kml = next((p for p in kmls if p.name.lower() == "doc.kml"), kmls[0] if len(kmls) == 1 else None)
    if kml is None:
        raise PackageUnreadable(f"{path.name} 中没有唯一的 KML 文件（应有 doc.kml）")
    return read_kml(kml.read_bytes(), path.name)


def read_kml(data: bytes, name: str) -> gpd.GeoDataFrame:
    """Placemarks with ``<name>``, ``<description>``, ``<ExtendedData>`` (``Data`` and ``SimpleData``) and
    Point, LineString, Polygon or MultiGeometry; coordinates are WGS84, as KML says."""
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.startswith(b"<"):
        raise PackageUnreadable(f"{name} 不是 KML 文件（内容不是 XML）")
    if re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise PackageUnreadable(f"{name}：KML 中不允许 DOCTYPE 或实体声明，不予读取")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PackageUnreadable(f"{name} 不是有效的 XML：{exc}") from None
    if _local(root.tag) != "kml":
        raise PackageUnreadable(f"{name} 不是 KML 文件（根元素是 {_local(root.tag)[:40]}）")
    records: list[dict[str, str]] = []
    geometries: list[shapely.Geometry | None] = []
    for placemark in (e for e in root.iter() if _local(e.tag) == "Placemark"):
        record: dict[str, str] = {}
        geometry = None
        for child in placemark:
            tag = _local(child.tag)
            if tag in ("name", "description"):
                record[tag.capitalize()] = (child.text or "").strip()
            elif tag == "ExtendedData":
                for item in child.iter():
                    kind = _local(item.tag)
                    if kind == "Data" and item.get("name"):
                        value = next((v for v in item if _local(v.tag) == "value"), None)
                        record[item.get("name", "")] = ((value.text if value is not None else "") or "").strip()
                    elif kind == "SimpleData" and item.get("name"):
                        record[item.get("name", "")] = (item.text or "").strip()
            elif geometry is None and tag in ("Point", "LineString", "LinearRing", "Polygon", "MultiGeometry"):
                geometry = _kml_geometry(child, name)
        records.append(record)
        geometries.append(geometry)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object).where(frame.notna(), "")
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometries, dtype="geometry"), crs="EPSG:4326")
    gdf.attrs["weak_columns"] = ["Name", "Description"]
    return gdf


def _coordinates(element: ET.Element, name: str) -> list[tuple[float, float]]:
    node = next((e for e in element.iter() if _local(e.tag) == "coordinates"), None)
    points = []
    for token in ((node.text or "") if node is not None else "").split():
        parts = token.split(",")
        try:
            points.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            raise PackageUnreadable(f"{name}：坐标无法读取：{token[:60]}") from None
    return points


def _kml_geometry(element: ET.Element, name: str) -> shapely.Geometry | None:
    tag = _local(element.tag)
    try:
        if tag == "Point":
            coords = _coordinates(element, name)
            return Point(coords[0]) if coords else None
        if tag == "LineString":
            return LineString(_coordinates(element, name))
        if tag == "LinearRing":
            return Polygon(LinearRing(_coordinates(element, name)))
        if tag == "Polygon":
            outer = next((e for e in element if _local(e.tag) == "outerBoundaryIs"), None)
            if outer is None:
                return None
            holes = [_coordinates(e, name) for e in element if _local(e.tag) == "innerBoundaryIs"]
            return Polygon(_coordinates(outer, name), holes)
        if tag == "MultiGeometry":
            parts = [g for g in (_kml_geometry(e, name) for e in element) if g is not None]
            return shapely.multipolygons(parts) if parts and all(isinstance(g, Polygon) for g in parts) else (
                shapely.multilinestrings(parts) if parts and all(isinstance(g, LineString) for g in parts) else (
                    shapely.multipoints(parts) if parts and all(isinstance(g, Point) for g in parts) else
                    shapely.geometrycollections(parts)))
    except (ValueError, shapely.errors.GEOSException) as exc:
        raise PackageUnreadable(f"{name}：几何无法构造（{exc}）") from None
    return None
