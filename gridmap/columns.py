"""Column names as people write them, mapped to the package's fields.

Files from a surveying company, the 城市运行管理 platform or an Excel sheet name their columns in Chinese
(网格编码, 网格名称, 所属社区) or in other English (GRID_ID, Lon). The alias table below maps the usual names to
the fields of ``gridmap/schema.py``; a mapping file (``--mapping map.toml``, or ``mapping.toml`` in the package
folder) names the rest. A column that maps to nothing is reported, never dropped without a word, and two columns
that map to one field are an error, since either could be the one meant.

The table is documented in docs/data-package.md ("Column names"); a test keeps the two equal.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gridmap.errors import PackageUnreadable
from gridmap.schema import LAYERS, Layer


@dataclass(frozen=True)
class Alias:
    field: str
    names: tuple[str, ...]
    layers: tuple[str, ...] = ()
    """The layers where these names mean ``field``; empty: every layer that has ``field``."""


ALIASES: tuple[Alias, ...] = (
    Alias("code", ("网格编码", "网格编号", "网格代码", "网格ID"), ("grids",)),
    Alias("name", ("网格名称", "网格名"), ("grids",)),
    Alias("grid_code", ("网格编码", "网格编号", "网格代码", "所属网格", "所属网格编码")),
    Alias("code", ("区划代码", "行政区划代码", "区划编码"), ("regions",)),
    Alias("name", ("区划名称", "行政区划名称"), ("regions",)),
    Alias("code", ("建筑编码", "楼栋编码", "房屋编码"), ("buildings",)),
    Alias("code", ("地址编码", "标准地址编码", "门牌编码"), ("addresses",)),
    Alias("code", ("人员编码", "网格员编码", "工号"), ("workers",)),
    Alias("name", ("姓名",), ("workers",)),
    Alias("code", ("站点编码",), ("stations",)),
    Alias("code", ("单位编码",), ("units",)),
    Alias("name", ("单位名称",), ("units",)),
    Alias("code", ("道路编码",), ("roads",)),
    Alias("name", ("道路名称", "路名"), ("roads",)),
    Alias("code", ("派出所编码",), ("precincts",)),
    Alias("name", ("派出所名称", "派出所"), ("precincts",)),
    Alias("code", ("编码", "编号", "代码", "id")),
    Alias("name", ("名称", "名字")),
    Alias("level", ("级别", "层级", "行政级别")),
    Alias("parent_code", ("上级编码", "上级代码", "上级区划代码", "父级编码")),
    Alias("community_code", ("所属社区", "社区编码", "社区代码", "所属社区编码", "社区")),
    Alias("address", ("地址", "详细地址", "标准地址", "完整地址")),
    Alias("road", ("道路", "街路巷", "街路巷名称", "路名")),
    Alias("doorplate", ("门牌号", "门牌", "门牌号码")),
    Alias("compound", ("小区", "小区名称", "院落")),
    Alias("building_no", ("楼号", "楼栋号", "幢号", "栋号")),
    Alias("unit", ("单元", "单元号")),
    Alias("households", ("户数", "住户数", "总户数")),
    Alias("population", ("人口", "人口数", "人数", "常住人口", "总人口")),
    Alias("phone", ("电话", "联系电话", "手机", "手机号", "手机号码")),
    Alias("role", ("角色", "职务", "岗位")),
    Alias("kind", ("类型", "站点类型", "类别")),
    Alias("category", ("类别", "单位类别", "类型")),
    Alias("resources", ("资源", "可提供资源", "共建资源")),
    Alias("building_code", ("所属建筑", "建筑编码", "楼栋编码")),
    Alias("alias", ("别名", "俗称", "其他名称")),
    Alias("target_code", ("目标编码", "指向编码", "对应编码")),
    Alias("note", ("备注", "说明", "来源")),
    Alias("community_code", ("community_", "communityc")),
    Alias("parent_code", ("parent_cod",)),
    Alias("building_no", ("building_n",)),
    Alias("building_code", ("building_c",)),
)
"""Checked in order: a layer-specific entry comes before a general one with the same name. The last four are
the package's own field names as a Shapefile cuts them (a DBF column name has at most 10 bytes)."""

GEOMETRY_COLUMNS = ("geometry", "geom", "wkt", "the_geom", "shape", "几何", "空间信息")
"""Names of a WKT column in a CSV or ``.xlsx`` (compared without spaces and case)."""

COORDINATE_PAIRS = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"), ("东经", "北纬"),
                    ("x", "y"), ("x坐标", "y坐标"))
"""Pairs of point coordinate columns in a CSV or ``.xlsx``, in order of preference."""

IGNORED = {"fid", "ogc_fid", "objectid", "objectid_1", "shape_leng", "shape_length", "shape_area", "shape_le_1"}
"""Columns GIS tools add on their own (a row id, lengths and areas ArcGIS computes): left out without a report."""


LEVELS = {"县": "county", "区": "county", "县级": "county", "县区": "county", "county": "county",
          "镇": "town", "乡": "town", "乡镇": "town", "街道": "town", "镇街": "town", "town": "town",
          "社区": "community", "村": "community", "居委会": "community", "村委会": "community", "社区居委会": "community",
          "community": "community"}
"""``regions.level`` as Chinese files write it (县, 乡镇, 街道, 社区, 村) and the package's value."""


def normal(name: object) -> str:
    """A column name compared as people mean it: no spaces or BOM, full-width letters folded, any case."""
    text = re.sub(r"[\s\ufeff]+", "", str(name))
    text = text.translate({code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)})
    return text.lower()


@dataclass
class Mapping:
    """A mapping file: ``[columns]`` for every layer, ``[<layer>]`` for one; a value ``""`` ignores a column."""

    common: dict[str, str] = field(default_factory=dict)
    layers: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = ""

    def for_layer(self, layer: str) -> dict[str, str]:
        return {**self.common, **self.layers.get(layer, {})}


def load_mapping(path: Path | str) -> Mapping:
    """Read and check a mapping file, so that a mistyped field fails before any data is read."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise PackageUnreadable(f"映射文件不存在：{path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PackageUnreadable(f"映射文件 {path.name} 格式错误：{exc}") from None
    mapping = Mapping(source=path.name)
    for section, entries in document.items():
        if section != "columns" and section not in LAYERS:
            raise PackageUnreadable(f"映射文件 {path.name}：未知的节 [{section}]，应为 [columns] 或图层名"
                                    f"（{'、'.join(LAYERS)}）")
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise PackageUnreadable(f"映射文件 {path.name}：[{section}] 中应写 \"原列名\" = \"字段名\"")
        fields = ({f.name for layer in LAYERS.values() for f in layer.fields} if section == "columns"
                  else set(LAYERS[section].field_names))
        for source, target in entries.items():
            if target and target not in fields:
                raise PackageUnreadable(f"映射文件 {path.name}：[{section}] 中「{source}」指向的字段 {target} 不存在")
        cleaned = {normal(k): v for k, v in entries.items()}
        if section == "columns":
            mapping.common.update(cleaned)
        else:
            mapping.layers[section] = cleaned
    return mapping


@dataclass
class ColumnPlan:
    """How one file's columns become a layer's fields."""

    renames: dict[str, str]
    """Source column → field, for every column that maps to a field (an exact field name included)."""
    unknown: list[str]
    clashes: dict[str, list[str]]
    """Field → the several source columns that map to it."""

    @property
    def translated(self) -> dict[str, str]:
        """Only the columns whose name is not already the field's (worth showing in a report)."""
        return {source: target for source, target in self.renames.items() if source != target}


def plan(layer: Layer, columns: list[str], mapping: Mapping | None = None) -> ColumnPlan:
    """Map ``columns`` to ``layer``'s fields: mapping file first, then the field's own name, then the aliases."""
    fields = set(layer.field_names)
    chosen = (mapping or Mapping()).for_layer(layer.name)
    renames: dict[str, str] = {}
    unknown: list[str] = []
    for column in columns:
        key = normal(column)
        if key in chosen:
            if chosen[key] in fields:
                renames[column] = chosen[key]
            continue  # mapped to "" (ignored on purpose), or to a field of another layer
        if key in fields:
            renames[column] = key
            continue
        target = _alias(layer, key, fields)
        if target is not None:
            renames[column] = target
        elif key not in IGNORED:
            unknown.append(column)
    targets: dict[str, list[str]] = {}
    for source, target in renames.items():
        targets.setdefault(target, []).append(source)
    clashes = {target: sources for target, sources in targets.items() if len(sources) > 1}
    return ColumnPlan(renames, unknown, clashes)


def _alias(layer: Layer, key: str, fields: set[str]) -> str | None:
    for alias in ALIASES:
        if alias.field in fields and (not alias.layers or layer.name in alias.layers) and key in map(normal,
                                                                                                      alias.names):
            return alias.field
    return None


def find_geometry_columns(columns: list[str]) -> tuple[str, ...]:
    """The WKT column ``(name,)`` or the coordinate pair ``(x, y)`` of a table, or ``()`` if it has none."""
    keys = {normal(c): c for c in columns}
    for x, y in COORDINATE_PAIRS:
        if x in keys and y in keys:
            return keys[x], keys[y]
    for name in GEOMETRY_COLUMNS:
        if name in keys:
            return (keys[name],)
    return ()
