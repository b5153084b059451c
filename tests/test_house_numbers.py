"""House numbers (issue #12 §5): road + number finds the building with that doorplate; a number the library does
not hold is placed between the known numbers of its side of the road, answered at road level, never as a building.

Every case is found in the sample county at test time, and every expected position is computed here again,
independently, in a metric projection (UTM 49N) with shapely: the matcher works in degrees."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from incident_fixtures import ADMIN, api, incident_db  # noqa: F401
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import substring

from gridmap.address import AddressMatcher
from gridmap.address.house_numbers import MAX_BRACKET_GAP

METRIC = "EPSG:32649"
"""UTM zone 49N: metres around the sample county (110.7°E)."""
ALONG_TOLERANCE_M = 3.0
"""The matcher works in a local frame in degrees, the test in UTM: the two agree to well under this."""


@dataclass
class Case:
    """A missing odd-or-even number between two known numbers of its side, with a known number of the other
    side nearer to it than either neighbour (so that the nearest doorplate is on the wrong side)."""

    road: str
    road_code: str
    line: LineString  # metric
    number: int
    below: pd.Series  # the first building with the known number just below, on the same side
    above: pd.Series
    other: pd.Series  # the nearest known number of the other side

    @property
    def text(self) -> str:
        return f"{self.road}{self.number}号"

    @property
    def fraction(self) -> float:
        return (self.number - number_of(self.below)) / (number_of(self.above) - number_of(self.below))


def number_of(row: pd.Series) -> int:
    return int(re.match(r"\d+", str(row["doorplate"])).group())


def numbered(sample_layers) -> pd.DataFrame:
    """Buildings with a road and a numeric doorplate, their number and their point (as the library takes it)."""
    b = sample_layers["buildings"]
    b = b[b["road"].fillna("").astype(str).ne("") & b["doorplate"].fillna("").astype(str).str.match(r"\d")].copy()
    b["number"] = b["doorplate"].astype(str).str.extract(r"^(\d+)", expand=False).astype(int)
    b["point"] = shapely.point_on_surface(b.geometry.values)
    return b


def metric(geom, crs) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=crs).to_crs(METRIC).iloc[0]


def first_with(b: pd.DataFrame, road: str, number: int) -> pd.Series:
    """The building the library keeps for a doorplate: the first one in the layer's order."""
    return b[(b["road"] == road) & (b["number"] == number)].iloc[0]


def side(line: LineString, p: Point) -> float:
    """Signed distance of ``p`` from ``line``: positive on the left of its direction (metric)."""
    d = line.project(p)
    a, c = line.interpolate(max(0.0, d - 0.5)), line.interpolate(min(line.length, d + 0.5))
    foot = line.interpolate(d)
    cross = (c.x - a.x) * (p.y - foot.y) - (c.y - a.y) * (p.x - foot.x)
    return (1 if cross > 0 else -1) * p.distance(foot)


def find_case(sample_layers) -> Case:
    b = numbered(sample_layers)
    roads = sample_layers["roads"]
    crs = sample_layers["buildings"].crs
    for road, code, geom in sorted(zip(roads["name"], roads["code"], roads.geometry), key=lambda t: t[1]):
        if geom.geom_type != "LineString" or (roads["name"] == road).sum() != 1:
            continue
        line = metric(geom, crs)
        known = sorted(set(b.loc[b["road"] == road, "number"]))
        for parity in (1, 0):
            side_numbers = [n for n in known if n % 2 == parity]
            for low, high in pairwise(side_numbers):
                if not 4 <= high - low <= MAX_BRACKET_GAP:
                    continue
                for n in range(low + 2, high, 2):
                    others = [m for m in known if m % 2 != parity and abs(m - n) < min(n - low, high - n)]
                    if not others:
                        continue
                    below, above = first_with(b, road, low), first_with(b, road, high)
                    other = first_with(b, road, min(others, key=lambda m: abs(m - n)))
                    pb, pa, po = (metric(r["point"], crs) for r in (below, above, other))
                    apart = abs(line.project(pa) - line.project(pb)) > 20
                    same_side = side(line, pb) * side(line, pa) > 0 and side(line, pb) * side(line, po) < 0
                    if apart and same_side:
                        return Case(road, str(code), line, n, below, above, other)
    pytest.fail("the sample county has no road with a missing number between two known numbers of its side")


@pytest.fixture(scope="module")
def matcher(sample_layers) -> AddressMatcher:
    return AddressMatcher.from_layers(sample_layers)


@pytest.fixture(scope="module")
def case(sample_layers) -> Case:
    return find_case(sample_layers)


def covering(layer: gpd.GeoDataFrame, lon: float, lat: float) -> str | None:
    hits = sorted(c for c, g in zip(layer["code"], layer.geometry) if g.covers(Point(lon, lat)))
    return hits[0] if hits else None


def beyond(sample_layers) -> tuple[str, int, str]:
    """(road, number, road code): a number above every known number of a road of the roads layer."""
    b = numbered(sample_layers)
    roads = sample_layers["roads"]
    road, code = next((r, c) for r, c in sorted(zip(roads["name"], roads["code"]), key=lambda t: t[1])
                      if (b["road"] == r).any())
    return road, int(b.loc[b["road"] == road, "number"].max()) + 1, str(code)


def wide_gap(sample_layers) -> tuple[str, int] | None:
    """(road, number) between two known numbers of one side more than MAX_BRACKET_GAP apart, if any."""
    b = numbered(sample_layers)
    for road, numbers in sorted(b.groupby("road")["number"]):
        known = sorted(set(numbers))
        for parity in (0, 1):
            side_numbers = [n for n in known if n % 2 == parity]
            for low, high in pairwise(side_numbers):
                if high - low > MAX_BRACKET_GAP:
                    return road, low + 2
    return None


# ---------------------------------------------------------------------------------------------- matcher
class TestMatcher:
    def test_an_existing_doorplate_answers_its_building(self, matcher, sample_layers) -> None:
        b = numbered(sample_layers)
        alone = b.groupby(["road", "number"])["code"].transform("size") == 1  # one building at that doorplate
        row = b[alone & b["compound"].fillna("").eq("")].sort_values("code").iloc[0]
        r = matcher.match(f"{row['road']}{row['doorplate']}")
        assert (r.level, r.building.code, r.code) == ("building", row["code"], row["code"])
        assert r.interpolated is False and r.location is None

    def test_a_missing_number_is_placed_between_its_neighbours_of_the_same_side(self, matcher, case,
                                                                                sample_layers) -> None:
        r = matcher.match(case.text)
        assert r.level == "road" and r.interpolated is True
        assert r.building is None and r.code == case.road_code, "a missing number is no building"
        assert all(c.building is None for c in r.candidates if c.level == "road")
        crs = sample_layers["buildings"].crs
        got = metric(Point(r.location.lon, r.location.lat), crs)
        pb, pa, po = (metric(row["point"], crs) for row in (case.below, case.above, case.other))
        db, da = case.line.project(pb), case.line.project(pa)
        along = case.line.project(got)
        assert min(db, da) < along < max(db, da), "strictly between the two neighbours along the road"
        assert along == pytest.approx(db + case.fraction * (da - db), abs=ALONG_TOLERANCE_M)
        # on the side of its parity: among the neighbours, across the road from the nearer other-side number
        assert side(case.line, got) * side(case.line, pb) > 0
        assert side(case.line, got) * side(case.line, po) < 0
        offsets = sorted(abs(side(case.line, p)) for p in (pb, pa))
        assert offsets[0] - 1 <= abs(side(case.line, got)) <= offsets[1] + 1

    def test_the_community_is_the_neighbours_when_they_share_one(self, matcher, case, sample_layers) -> None:
        regions = sample_layers["regions"]
        communities = regions[regions["level"] == "community"]
        places = {covering(communities, row["point"].x, row["point"].y) for row in (case.below, case.above)}
        r = matcher.match(case.text)
        assert r.community_code == (places.pop() if len(places) == 1 else None)

    def test_a_number_beyond_the_known_range_has_no_position(self, matcher, sample_layers) -> None:
        road, number, code = beyond(sample_layers)
        r = matcher.match(f"{road}{number}号")
        assert (r.level, r.building, r.location, r.interpolated, r.code) == ("road", None, None, False, code)

    def test_a_number_below_the_lowest_of_its_side_has_no_position(self, matcher, sample_layers) -> None:
        b = numbered(sample_layers)
        found = next(((road, low - 2) for road, numbers in sorted(b.groupby("road")["number"])
                      for low in (min(n for n in set(numbers) if n % 2 == p) for p in (0, 1)
                                  if any(n % 2 == p for n in numbers))
                      if low - 2 >= 1), None)
        if found is None:
            pytest.skip("every road's lowest numbers are 1 and 2")
        r = matcher.match(f"{found[0]}{found[1]}号")
        assert (r.level, r.building, r.location, r.interpolated) == ("road", None, None, False)

    def test_neighbours_too_far_apart_give_no_position(self, matcher, sample_layers) -> None:
        found = wide_gap(sample_layers)
        if found is None:
            pytest.skip(f"no gap wider than {MAX_BRACKET_GAP} between known numbers of one side")
        r = matcher.match(f"{found[0]}{found[1]}号")
        assert (r.level, r.building, r.location, r.interpolated) == ("road", None, None, False)

    def _straight(self, layers, case: Case) -> None:
        r = AddressMatcher.from_layers(layers).match(case.text)
        assert r.level == "road" and r.interpolated is True and r.building is None
        t = case.fraction
        pb, pa = case.below["point"], case.above["point"]
        assert r.location.lon == pytest.approx(pb.x + t * (pa.x - pb.x), abs=1e-9)
        assert r.location.lat == pytest.approx(pb.y + t * (pa.y - pb.y), abs=1e-9)

    def test_without_the_roads_layer_it_lies_between_the_two_buildings(self, sample_layers, case) -> None:
        self._straight({k: v for k, v in sample_layers.items() if k != "roads"}, case)

    def test_a_road_in_separate_pieces_falls_back_to_the_two_buildings(self, sample_layers, case) -> None:
        roads = sample_layers["roads"].copy()
        at = roads.index[roads["name"] == case.road][0]
        line = roads.geometry[at]
        roads.loc[at, "geometry"] = MultiLineString([substring(line, 0, 0.4, normalized=True),
                                                     substring(line, 0.6, 1, normalized=True)])
        self._straight({**sample_layers, "roads": roads}, case)


# ---------------------------------------------------------------------------------------------- HTTP
class TestLookup:
    def test_the_answer_is_the_grid_of_the_interpolated_point(self, client, case, matcher, sample_layers) -> None:
        answer = client.get("/v1/lookup", params={"address": case.text}).json()
        match = answer["match"]
        assert (match["level"], match["building"], match["interpolated"]) == ("road", None, True)
        expected = matcher.match(case.text).location
        assert (answer["lon"], answer["lat"]) == pytest.approx((expected.lon, expected.lat), abs=1e-9)
        assert match["location"] == pytest.approx({"lon": expected.lon, "lat": expected.lat}, abs=1e-9)
        grid = covering(sample_layers["grids"], expected.lon, expected.lat)
        assert grid is not None and answer["grid"]["code"] == grid
        by_point = client.get("/v1/lookup", params={"lon": expected.lon, "lat": expected.lat}).json()
        assert answer["workers"] == by_point["workers"] and answer["community"] == by_point["community"]

    def test_a_number_beyond_the_range_answers_the_road_without_a_place(self, client, sample_layers) -> None:
        road, number, _ = beyond(sample_layers)
        answer = client.get("/v1/lookup", params={"address": f"{road}{number}号"}).json()
        assert (answer["match"]["level"], answer["match"]["building"], answer["match"]["interpolated"]) == \
            ("road", None, False)
        assert (answer["lon"], answer["grid"], answer["workers"], answer["covered"]) == (None, None, [], False)


class TestIntake:
    def test_a_missing_number_is_routed_to_the_worker_of_its_interpolated_grid(self, api, case, matcher,
                                                                              sample_layers) -> None:
        response = api.post("/v1/incidents", json={"category": "infra.streetlight", "description": "路灯不亮",
                                                   "address": case.text})
        assert response.status_code == 201, response.text
        incident = api.get(f"/v1/incidents/{response.json()['id']}", headers=ADMIN).json()  # as dispatchers see it
        expected = matcher.match(case.text).location
        location = incident["location"]
        assert (location["lon"], location["lat"]) == pytest.approx((expected.lon, expected.lat), abs=1e-9)
        assert location["match_level"] == "road" and "address_interpolated" in incident["flags"]
        grid = covering(sample_layers["grids"], expected.lon, expected.lat)
        workers = sample_layers["workers"]
        full_time = workers[(workers["grid_code"] == grid) & (workers["role"] == "专职网格员")]["code"]
        assert incident["grid"]["code"] == grid and incident["assignee"]["code"] == full_time.iat[0]

    def test_a_number_beyond_the_range_is_refused(self, api, sample_layers) -> None:
        road, number, _ = beyond(sample_layers)
        response = api.post("/v1/incidents", json={"category": "infra.streetlight", "description": "路灯不亮",
                                                   "address": f"{road}{number}号"})
        assert response.status_code == 422 and "无法定位" in response.json()["detail"]


# ---------------------------------------------------------------------------------------------- city
@pytest.fixture(scope="module")
def city_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, gpd.GeoDataFrame]:
    """Three copies of the sample town in one county: the same road names recur in every town."""
    from test_city import load_generator

    city = load_generator().build_city(3, tmp_path_factory.mktemp("house_numbers") / "city", per_county=3)
    return {name: gpd.read_file(city.out / f"{name}.geojson")
            for name in ("regions", "grids", "buildings", "roads", "stations", "units")}


def test_in_a_city_the_number_is_placed_on_the_road_of_the_town_stated(city_layers) -> None:
    """A road name held by several towns: the position and the road code are those of the town the text names."""
    regions, roads = city_layers["regions"], city_layers["roads"]
    towns = regions[regions["level"] == "town"].sort_values("code")
    town = towns.iloc[-1]  # not the sample town itself: its roads share their names with the others'
    county = regions.set_index("code").loc[town["parent_code"]]
    here = roads[roads.intersects(town.geometry)]
    shared = sorted(set(here["name"]) & set(roads[~roads.index.isin(here.index)]["name"]))
    assert shared, "the city repeats no road name in another town"
    b = numbered(city_layers)
    b = b[[town.geometry.covers(p) for p in b["point"]]]
    for road in shared:
        rows = here[here["name"] == road]
        known = sorted(set(b.loc[b["road"] == road, "number"]))
        pairs = [(lo, hi) for parity in (1, 0) for lo, hi in pairwise([n for n in known if n % 2 == parity])
                 if 4 <= hi - lo <= MAX_BRACKET_GAP]
        if len(rows) == 1 and pairs:
            break
    else:
        pytest.fail("no shared road name with a missing number between two known ones in the town")
    number = pairs[0][0] + 2
    r = AddressMatcher.from_layers(city_layers).match(f"{county['name']}{town['name']}{road}{number}号")
    assert (r.level, r.building, r.interpolated) == ("road", None, True)
    assert r.code == rows["code"].iat[0], "the road of the town stated, not the first of that name"
    got = Point(r.location.lon, r.location.lat)
    assert town.geometry.covers(got)
    below, above = first_with(b, road, pairs[0][0]), first_with(b, road, pairs[0][1])
    crs = city_layers["buildings"].crs
    line = metric(rows.geometry.iat[0], crs)
    along = [line.project(metric(p, crs)) for p in (below["point"], above["point"])]
    t = (number - pairs[0][0]) / (pairs[0][1] - pairs[0][0])
    assert line.project(metric(got, crs)) == pytest.approx(along[0] + t * (along[1] - along[0]),
                                                           abs=ALONG_TOLERANCE_M)
