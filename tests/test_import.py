"""Importing a data package: everything is checked first, and a rejected package changes nothing."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box
from stores import open_test_store

from gridmap.errors import ImportRejected, PackageUnreadable
from gridmap.geo import wgs84_to_gcj02
from gridmap.importer import import_package
from gridmap.schema import LAYERS
from gridmap.store import GeoPackageStore

SPATIAL = [name for name, layer in LAYERS.items() if layer.spatial and not layer.optional]


def snapshot(store: GeoPackageStore) -> dict[str, list]:
    """Everything a reader can see, to compare before and after a rejected import."""
    out: dict[str, list] = {"revision": [store.revision()]}
    for name, frame in store.read_layers().items():
        spatial = isinstance(frame, gpd.GeoDataFrame)
        rows = frame.drop(columns="geometry" if spatial else []).astype(str).values.tolist()
        if spatial:
            rows = [r + [g.wkt] for r, g in zip(rows, frame.geometry)]
        out[name] = rows
    return out


@pytest.fixture
def store(tmp_path: Path, copy_store, tiny_package: Path) -> GeoPackageStore:
    store = open_test_store(copy_store.empty(tmp_path, "store.gpkg"))
    import_package(store, tiny_package)
    return store


class TestSuccessfulImport:
    @pytest.mark.sqlite_only  # the store's file read by GDAL
    def test_every_spatial_layer_reads_back_with_geopandas(self, store: GeoPackageStore) -> None:
        for name in SPATIAL:
            frame = gpd.read_file(store.path, layer=name)
            assert frame.crs.to_epsg() == 4326
            assert len(frame) > 0, name
            assert set(LAYERS[name].field_names) <= set(frame.columns)

    @pytest.mark.sqlite_only  # the store's file read by GDAL
    def test_workers_are_an_attribute_table(self, store: GeoPackageStore) -> None:
        workers = gpd.read_file(store.path, layer="workers")
        assert sorted(workers["code"]) == ["W01", "W02", "W03", "W04", "W05", "W06"]

    def test_geometries_round_trip_exactly(self, store: GeoPackageStore, tiny_package: Path) -> None:
        original = gpd.read_file(tiny_package / "grids.geojson")
        stored = store.read_layer("grids")
        assert list(stored["code"]) == list(original["code"])
        assert all(shapely.equals_exact(stored.geometry.values, original.geometry.values, tolerance=0))

    def test_same_package_twice_gives_the_same_store(self, store: GeoPackageStore, tiny_package: Path) -> None:
        before = snapshot(store)
        report = import_package(store, tiny_package)
        assert report.unchanged
        assert snapshot(store) == before

    def test_a_changed_package_replaces_the_old_one(self, store, make_package) -> None:
        def drop_unit(layers):
            layers["units"] = layers["units"].iloc[0:0]

        old = store.revision()
        import_package(store, make_package(drop_unit))
        assert store.revision() != old
        assert len(store.read_layer("units")) == 0

    @pytest.mark.sqlite_only  # the store's file read by GDAL
    def test_a_geopackage_file_is_a_package_too(self, store: GeoPackageStore, tmp_path: Path, copy_store) -> None:
        other = open_test_store(copy_store.empty(tmp_path, "copy.gpkg"))
        import_package(other, store.path)
        assert other.revision() == store.revision()


class TestCoordinateSystems:
    def test_projected_cgcs2000_layers_are_brought_to_wgs84(self, make_package, tmp_path: Path, copy_store) -> None:
        def project(layers):
            layers["grids"] = layers["grids"].to_crs("EPSG:4547")  # CGCS2000 / 3-degree GK CM 114E

        store = open_test_store(copy_store.empty(tmp_path, "s.gpkg"))
        import_package(store, make_package(project))
        grids = store.read_layer("grids")
        assert np.allclose(grids.total_bounds, [110.74, 35.12, 110.80, 35.16], atol=1e-7)

    def test_gcj02_source_is_converted_when_declared(self, make_package, tmp_path: Path, copy_store) -> None:
        def shift(layers):
            for name, frame in layers.items():
                if isinstance(frame, gpd.GeoDataFrame):
                    frame.geometry = shapely.transform(
                        frame.geometry.values, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1]))
                    )

        store = open_test_store(copy_store.empty(tmp_path, "s.gpkg"))
        import_package(store, make_package(shift), source_crs="gcj02")
        station = store.read_layer("stations").geometry.iloc[0]
        assert station.distance(Point(110.75, 35.13)) < 1e-7

    def test_unknown_source_crs_is_refused_before_reading(self, tiny_package: Path, tmp_path: Path, copy_store) -> None:
        with pytest.raises(PackageUnreadable, match="未知的坐标系"):
            import_package(open_test_store(copy_store.empty(tmp_path, "s.gpkg")), tiny_package, source_crs="EPSG:999999")


def _set(layer: str, code: str, field: str, value):
    def mutate(layers):
        frame = layers[layer]
        frame.loc[frame["code"] == code, field] = value

    return mutate


def _set_geometry(layer: str, code: str, geometry):
    def mutate(layers):
        frame = layers[layer]
        index = frame.index[frame["code"] == code][0]
        frame.geometry = frame.geometry.where(frame.index != index, geometry)

    return mutate


def _drop_column(layer: str, field: str):
    def mutate(layers):
        layers[layer] = layers[layer].drop(columns=field)

    return mutate


def _duplicate(layer: str, code: str):
    def mutate(layers):
        frame = layers[layer]
        layers[layer] = type(frame)(
            __import__("pandas").concat([frame, frame[frame["code"] == code]], ignore_index=True),
            **({"crs": frame.crs} if isinstance(frame, gpd.GeoDataFrame) else {}),
        )

    return mutate


A1, A2, B1 = "140821100014-01", "140821100014-02", "140821100016-01"
BOWTIE = Polygon([(110.74, 35.12), (110.755, 35.16), (110.755, 35.12), (110.74, 35.16)])

ERRORS = {
    "empty required field": (_set("grids", A1, "name", ""), "grids", A1, "name 为空"),
    "missing required column": (_drop_column("workers", "phone"), "workers", None, "缺少必需字段 phone"),
    "duplicate code": (_duplicate("buildings", "B001"), "buildings", "B001", "重复"),
    "unknown parent region": (_set("regions", "140821100016", "parent_code", "999"), "regions", "140821100016",
                              "上级编码 999 不存在"),
    "grid in unknown community": (_set("grids", B1, "community_code", "140821100099"), "grids", B1,
                                  "所属社区 140821100099 不存在"),
    "worker in unknown grid": (_set("workers", "W01", "grid_code", "X-99"), "workers", "W01", "所属网格 X-99 不存在"),
    "negative households": (_set("buildings", "B002", "households", -3), "buildings", "B002", "households"),
    "invalid geometry": (_set_geometry("grids", A1, BOWTIE), "grids", A1, "几何无效：Self-intersection"),
    "wrong geometry type": (_set_geometry("grids", A2, Point(110.76, 35.14)), "grids", A2, "几何类型 Point"),
    "overlapping grids": (_set_geometry("grids", A2, box(110.754, 35.12, 110.770, 35.16)), "grids", A1,
                          "与网格 140821100014-02 重叠"),
    "grid outside its community": (_set_geometry("grids", B1, box(110.770, 35.12, 110.785, 35.165)), "grids", B1,
                                   "超出所属社区"),
    "building in no grid": (_set_geometry("buildings", "B003", box(110.81, 35.17, 110.811, 35.171)), "buildings",
                            "B003", "不在任何网格内"),
    "building in two grids": (_set_geometry("buildings", "B002", box(110.768, 35.14, 110.772, 35.141)), "buildings",
                              "B002", "跨越多个网格"),
}


class TestRejectedImport:
    @pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
    def test_error_names_the_feature_and_leaves_the_store_unchanged(self, case, store, make_package) -> None:
        mutate, layer, code, message = ERRORS[case]
        before = snapshot(store)
        with pytest.raises(ImportRejected) as caught:
            import_package(store, make_package(mutate))
        problems = [p for p in caught.value.details if p["severity"] == "error"]
        assert any(p["layer"] == layer and p["code"] == code and message in p["message"] for p in problems), problems
        assert snapshot(store) == before

    def test_overlap_reports_its_area_in_square_metres(self, store, make_package) -> None:
        mutate = _set_geometry("grids", A2, box(110.754, 35.12, 110.770, 35.16))
        with pytest.raises(ImportRejected) as caught:
            import_package(store, make_package(mutate))
        overlap = next(p for p in caught.value.details if "重叠" in p["message"])
        expected = gpd.GeoSeries([box(110.754, 35.12, 110.755, 35.16)], crs=4326).to_crs(32649).area.iloc[0]
        assert overlap["area_m2"] == pytest.approx(expected, rel=1e-3)

    def test_all_problems_are_reported_at_once(self, store, make_package) -> None:
        def many(layers):
            for mutate, *_ in (ERRORS["duplicate code"], ERRORS["invalid geometry"], ERRORS["worker in unknown grid"]):
                mutate(layers)

        with pytest.raises(ImportRejected) as caught:
            import_package(store, make_package(many))
        layers_hit = {p["layer"] for p in caught.value.details if p["severity"] == "error"}
        assert {"buildings", "grids", "workers"} <= layers_hit

    def test_invalid_geometry_says_where(self, store, make_package) -> None:
        with pytest.raises(ImportRejected) as caught:
            import_package(store, make_package(ERRORS["invalid geometry"][0]))
        problem = next(p for p in caught.value.details if "Self-intersection" in p["message"])
        assert "110.7" in problem["message"] and "35.1" in problem["message"]

    def test_a_missing_layer_is_an_error(self, store, tiny_package: Path) -> None:
        (tiny_package / "precincts.geojson").unlink()
        with pytest.raises(ImportRejected, match="1 个错误"):
            import_package(store, tiny_package)

    def test_a_gap_inside_a_community_is_only_a_warning(self, tmp_path, copy_store, make_package) -> None:
        mutate = _set_geometry("grids", B1, box(110.770, 35.12, 110.784, 35.16))
        report = import_package(open_test_store(copy_store.empty(tmp_path, "s.gpkg")), make_package(mutate))
        assert any("未划入任何网格" in w.message and w.code == "140821100016" for w in report.warnings)

    def test_a_path_that_does_not_exist_is_unreadable(self, store, tmp_path) -> None:
        with pytest.raises(PackageUnreadable, match="不存在"):
            import_package(store, tmp_path / "nope")
