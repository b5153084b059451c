"""The data package contract: which layers exist, their fields, and what each must hold.

One table drives reading, validation, the store's column order and docs/data-package.md,
so the contract cannot drift between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

FieldType = Literal["str", "int", "float"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "str"
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Layer:
    name: str
    fields: tuple[Field, ...]
    geometry_types: tuple[str, ...] = ()
    """Allowed shapely geometry type names; empty for a table without geometry."""
    optional: bool = False
    description: str = ""
    key: str = "code"

    @property
    def spatial(self) -> bool:
        return bool(self.geometry_types)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


POLYGONAL: Final = ("Polygon", "MultiPolygon")
REGION_LEVELS: Final = ("county", "town", "community")

LAYERS: Final[dict[str, Layer]] = {
    layer.name: layer
    for layer in (
        Layer(
            "regions",
            (
                Field("code", description="administrative division code, unique (e.g. 140821100014)"),
                Field("name", description="e.g. 双塔社区"),
                Field("level", description="county | town | community"),
                Field("parent_code", required=False, description="code of the enclosing region; empty for the top"),
            ),
            POLYGONAL,
            description="administrative areas: county, towns, communities",
        ),
        Layer(
            "grids",
            (
                Field("code", description="unique grid code"),
                Field("name", description="e.g. 双塔社区第3网格"),
                Field("community_code", description="code of the community (regions, level=community)"),
            ),
            POLYGONAL,
            description="grids (网格): the unit a grid worker covers; holes and several parts are allowed",
        ),
        Layer(
            "buildings",
            (
                Field("code"),
                Field("name", description="e.g. 丰林小区3号楼"),
                Field("address", description="full standard address"),
                Field("road", description="road of the doorplate, e.g. 双塔北路"),
                Field("doorplate", description="门牌, e.g. 12号"),
                Field("compound", required=False, description="小区, may be empty"),
                Field("building_no", required=False, description="building number inside the compound"),
                Field("households", "int", description="number of households, ≥ 0"),
                Field("population", "int", description="number of residents, ≥ 0"),
            ),
            ("Polygon", "MultiPolygon", "Point"),
            description="buildings and courtyards with their households",
        ),
        Layer(
            "workers",
            (
                Field("code"),
                Field("name"),
                Field("phone"),
                Field("role", description="网格长 | 专职网格员 | 兼职网格员 | 社区民警 …"),
                Field("grid_code", required=False, description="empty for community-level roles"),
                Field("community_code"),
            ),
            description="grid workers and community staff (no geometry)",
        ),
        Layer(
            "stations",
            (
                Field("code"),
                Field("name"),
                Field("kind", description="党群服务中心 | 党群服务站"),
                Field("community_code"),
                Field("address"),
            ),
            ("Point",),
            description="Party-mass service stations (党群服务站)",
        ),
        Layer(
            "precincts",
            (Field("code"), Field("name"), Field("phone")),
            POLYGONAL,
            description="police precincts (派出所辖区)",
        ),
        Layer(
            "units",
            (
                Field("code"),
                Field("name"),
                Field("category", description="e.g. 学校, 机关, 企业, 医院"),
                Field("resources", required=False, description="what the unit can offer, ';'-separated"),
                Field("community_code"),
            ),
            ("Point",),
            description="co-building units (驻区单位)",
        ),
        Layer(
            "roads",
            (Field("code"), Field("name")),
            ("LineString", "MultiLineString"),
            optional=True,
            description="named roads (optional)",
        ),
        Layer(
            "addresses",
            (
                Field("code", description="unique code of the standard address"),
                Field("road", description="road of the doorplate, e.g. 府前街"),
                Field("doorplate", description="门牌 number, e.g. 224号 or 224-1号"),
                Field("compound", required=False, description="小区 the doorplate leads into, may be empty"),
                Field("building_no", required=False, description="building number inside the compound"),
                Field("unit", required=False, description="单元, e.g. 2单元"),
                Field("building_code", description="the building (buildings.code) the address belongs to"),
            ),
            ("Point",),
            optional=True,
            description="standard addresses (标准地址/门牌), e.g. a shop's or a back gate's doorplate (optional)",
        ),
        Layer(
            "aliases",
            (
                Field("alias", description="the other name, e.g. 电业局 or 二中"),
                Field("target_code", description="what it names: a building, unit, station, road or region code, "
                      "or a compound's standard name"),
                Field("note", required=False, description="where the name comes from, e.g. 俗称, 旧称"),
            ),
            optional=True,
            description="other names of known places (俗称, 旧称, 简称) (optional, no geometry)",
            key="alias",
        ),
        Layer(
            "candidates",
            (Field("code"), Field("name")),
            ("Point",),
            optional=True,
            description="candidate sites for new service stations (optional; station planning)",
        ),
    )
}

REQUIRED_LAYERS: Final = tuple(name for name, layer in LAYERS.items() if not layer.optional)
