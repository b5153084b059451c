"""Build the sample county's standard address library layers: ``aliases.csv`` and ``addresses.geojson``.

Usage: ``python geodata/build_address_library.py`` (after ``build_linyi.py``; reads and writes
``geodata/linyi/``). Deterministic: the same package gives byte-identical files.

* ``aliases.csv``: other names people use, written by hand as residents and the 12345 hotline say
  them: 简称 of institutions (二中, 县医院, 电业局), 旧称 of streets (东大街 for 红旗街), villages that
  became communities (神后堡村), 俗称 of courtyards (实小家属院). Every target is checked to exist.
* ``addresses.geojson``: back gates. A compound of four or more buildings near a second road gets a
  standard doorplate on that road (后门), numbered on the right side of the road between the
  doorplates already there, at the point of the road nearest to the compound.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import geopandas as gpd
import shapely

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "linyi"
sys.path.insert(0, str(ROOT.parent))

from gridmap.address.library import _doorplate_number  # noqa: E402
from gridmap.geo import metric_crs  # noqa: E402

ALIASES: list[tuple[str, str, str]] = [
    # (alias, target: unit/road/region code or compound name, note)
    ("县二中", "U026", "简称"),
    ("人民医院", "U001", "简称"),
    ("中医院", "U030", "简称"),
    ("妇幼保健院", "U033", "简称"),
    ("电业局", "U029", "旧称"),
    ("供电局", "U029", "俗称"),
    ("自来水厂", "U052", "俗称"),
    ("暖气公司", "U053", "俗称"),
    ("县法院", "U048", "简称"),
    ("检察院", "U051", "简称"),
    ("实验初中", "U063", "简称"),
    ("职中", "U059", "简称"),
    ("农商行", "U043", "简称"),
    ("东大街", "R015", "旧称"),
    ("西大街", "R023", "旧称"),
    ("南大街", "R009", "旧称"),
    ("北大街", "R010", "旧称"),
    ("老县府街", "R005", "旧称"),
    ("神后堡村", "140821100013", "旧称（村改居）"),
    ("郇阳村", "140821100021", "旧称（村改居）"),
    ("临化村", "140821100019", "旧称（村改居）"),
    ("涑水村", "140821100022", "旧称（村改居）"),
    ("实小家属院", "实验小学家属院", "俗称"),
    ("法院家属院", "法院小区", "俗称"),
]
GATE_MIN_BUILDINGS = 4
GATE_MAX_DISTANCE_M = 120.0
GATE_EVERY = 2
"""Every second eligible compound (in code order) gets a back gate: not every compound has one."""


def build_aliases(units, roads, regions, buildings) -> str:
    targets = (set(units["code"]) | set(roads["code"]) | set(regions["code"])
               | set(buildings["compound"].dropna()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["alias", "target_code", "note"])
    for alias, target, note in ALIASES:
        if target not in targets:
            raise SystemExit(f"alias {alias}: target {target} is not in the package")
        writer.writerow([alias, target, note])
    return out.getvalue()


def build_gates(buildings: gpd.GeoDataFrame, roads: gpd.GeoDataFrame) -> dict:
    crs = metric_crs(110.77, 35.14)  # the county seat: a local metric projection
    b = buildings.to_crs(crs)
    r = roads.to_crs(crs)
    doors: dict[str, set[int]] = {}
    for road, plate in zip(buildings["road"], buildings["doorplate"]):
        number = _doorplate_number(plate)
        if number is not None:
            doors.setdefault(road, set()).add(number)
    compounds = b[b["compound"].fillna("") != ""].groupby("compound", sort=True)
    eligible = [(name, group.sort_values("code")) for name, group in compounds if len(group) >= GATE_MIN_BUILDINGS]
    features = []
    for name, group in eligible[::GATE_EVERY]:
        first = group.iloc[0]
        centre = shapely.centroid(shapely.union_all(group.geometry.values))
        others = r[r["name"] != first["road"]]
        distances = others.geometry.distance(centre)
        if not len(distances) or distances.min() > GATE_MAX_DISTANCE_M:
            continue
        road = others.loc[distances.idxmin()]
        number = _free_number(road, centre, b, doors.setdefault(road["name"], set()))
        if number is None:
            continue
        gate = road.geometry.interpolate(road.geometry.project(centre))
        lon, lat = gpd.GeoSeries([gate], crs=crs).to_crs(4326).iloc[0].coords[0]
        doors[road["name"]].add(number)
        features.append({"type": "Feature", "properties": {
            "code": f"A{len(features) + 1:04d}", "road": road["name"], "doorplate": f"{number}号", "compound": name,
            "building_no": "", "unit": "", "building_code": first["code"]},
            "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}})
    return {"type": "FeatureCollection", "name": "addresses", "features": features}


def _free_number(road, centre, buildings, taken: set[int]) -> int | None:
    """A number between the doorplates of this road nearest to the gate, on the side of the compound."""
    line = road.geometry
    on_road = buildings[buildings["road"] == road["name"]]
    if len(on_road) < 2:
        return None
    where = line.project(centre)
    side = _side(line, centre)
    same = [(abs(line.project(g.centroid) - where), _doorplate_number(p)) for g, p in
            zip(on_road.geometry, on_road["doorplate"]) if _side(line, g.centroid) == side]
    same = sorted((d, n) for d, n in same if n is not None)[:2]
    if len(same) < 2:
        return None
    low, high = sorted(n for _, n in same)
    parity = low % 2
    for number in range(low + 2, high, 2):
        if number % 2 == parity and number not in taken:
            return number
    return None


def _side(line, point) -> int:
    """+1 left of the road's direction, −1 right (the side decides odd or even numbers)."""
    at = line.project(point)
    a, b = line.interpolate(max(at - 1, 0)), line.interpolate(min(at + 1, line.length))
    cross = (b.x - a.x) * (point.y - a.y) - (b.y - a.y) * (point.x - a.x)
    return 1 if cross >= 0 else -1


def main() -> None:
    buildings = gpd.read_file(OUT / "buildings.geojson")
    roads = gpd.read_file(OUT / "roads.geojson")
    units = gpd.read_file(OUT / "units.geojson")
    regions = gpd.read_file(OUT / "regions.geojson")
    (OUT / "aliases.csv").write_text(build_aliases(units, roads, regions, buildings), encoding="utf-8")
    gates = build_gates(buildings, roads)
    text = json.dumps(gates, ensure_ascii=False, separators=(",", ":"))
    (OUT / "addresses.geojson").write_text(text.replace('{"type":"Feature"', '\n{"type":"Feature"') + "\n",
                                           encoding="utf-8")
    print(f"aliases.csv: {len(ALIASES)} aliases; addresses.geojson: {len(gates['features'])} back gates")


if __name__ == "__main__":
    main()
