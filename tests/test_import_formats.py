"""Importing what people actually have (issue #14 §1): Shapefile (zipped or not, GBK or UTF-8 DBF), CSV and
.xlsx with WKT or coordinate columns, KML/KMZ, FlatGeobuf, GeoJSON and GeoPackage, with Chinese column names.

Every file is built here; the sample county is written in each format and read back: the same features, the
same attributes, geometry within a centimetre. Projected coordinates are checked against pyproj.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box
from stores import open_test_store, store_settings

from gridmap.api import create_app
from gridmap.archives import UploadLimits
from gridmap.columns import ALIASES, load_mapping
from gridmap.errors import GridmapError, ImportRejected, PackageUnreadable
from gridmap.importer import import_package
from gridmap.package import read_package
from gridmap.schema import LAYERS
from gridmap.settings import SAMPLE_PACKAGE

TOLERANCE = 1e-7
"""Degrees: about a centimetre, the most a round trip through a projected CRS may move a vertex."""
ADMIN = "formats-admin"

CHINESE = {
    "regions": {"code": "区划代码", "name": "区划名称", "level": "级别", "parent_code": "上级编码"},
    "grids": {"code": "网格编码", "name": "网格名称", "community_code": "所属社区"},
    "buildings": {"code": "建筑编码", "name": "名称", "address": "地址", "road": "街路巷", "doorplate": "门牌号",
                  "compound": "小区", "building_no": "楼号", "households": "户数", "population": "人口"},
    "workers": {"code": "人员编码", "name": "姓名", "phone": "联系电话", "role": "职务", "grid_code": "所属网格",
                "community_code": "社区编码"},
    "stations": {"code": "站点编码", "name": "名称", "kind": "类型", "community_code": "社区编码", "address": "地址"},
    "precincts": {"code": "派出所编码", "name": "派出所名称", "phone": "电话"},
    "units": {"code": "单位编码", "name": "单位名称", "category": "类别", "resources": "可提供资源",
              "community_code": "所属社区"},
    "roads": {"code": "道路编码", "name": "道路名称"},
    "addresses": {"code": "地址编码", "road": "街路巷", "doorplate": "门牌号", "compound": "小区", "building_no": "楼号",
                  "unit": "单元", "building_code": "建筑编码"},
    "aliases": {"alias": "别名", "target_code": "目标编码", "note": "备注"},
}
"""Every field of every layer under a Chinese name from the alias table (at most 5 characters: a GBK DBF
column name holds 10 bytes)."""


@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    return read_package(SAMPLE_PACKAGE).layers


def chinese(frame: gpd.GeoDataFrame | pd.DataFrame, layer: str) -> gpd.GeoDataFrame | pd.DataFrame:
    return frame.rename(columns=CHINESE[layer])


def wkt(geometries) -> list[str]:
    return list(shapely.to_wkt(np.asarray(geometries), rounding_precision=-1))


def write_table(frame: gpd.GeoDataFrame | pd.DataFrame, path: Path, *, encoding: str = "utf-8",
                geometry: str = "wkt") -> None:
    """A CSV or .xlsx as a spreadsheet user keeps it: WKT in a column, or 经度/纬度 for points."""
    table = pd.DataFrame(frame.drop(columns="geometry") if isinstance(frame, gpd.GeoDataFrame) else frame)
    if isinstance(frame, gpd.GeoDataFrame):
        if geometry == "wkt":
            table["WKT"] = wkt(frame.geometry.values)
        else:
            table["经度"] = [repr(p.x) for p in frame.geometry]
            table["纬度"] = [repr(p.y) for p in frame.geometry]
    if path.suffix == ".csv":
        path.write_bytes(table.to_csv(index=False).encode(encoding))
        return
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(list(table.columns))
    for row in table.astype(object).values.tolist():
        sheet.append([str(v) for v in row])
    book.save(path)


def zip_files(files: list[Path], target: Path, names: list[str] | None = None) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, file in enumerate(files):
            archive.write(file, names[i] if names else file.name)


def write_layer(frame, layer: str, folder: Path, form: str) -> None:
    """One layer of the sample county as ``<layer>.<form>``; tables go to CSV or .xlsx."""
    spatial = isinstance(frame, gpd.GeoDataFrame)
    if form in ("csv", "xlsx") or not spatial:
        suffix = form if form in ("csv", "xlsx") else ("xlsx" if form == "kml" else "csv")
        encoding = "gbk" if form in ("shp", "shp.zip") else "utf-8"
        write_table(chinese(frame, layer), folder / f"{layer}.{suffix}", encoding=encoding)
        return
    if form in ("shp", "shp.zip"):
        target = folder if form == "shp" else folder / f"{layer}-parts"
        target.mkdir(exist_ok=True)
        chinese(frame, layer).to_crs("EPSG:4546").to_file(target / f"{layer}.shp", encoding="GBK")
        if form == "shp.zip":
            zip_files(sorted(target.iterdir()), folder / f"{layer}.zip")
            for file in target.iterdir():
                file.unlink()
            target.rmdir()
    elif form == "fgb":
        frame.to_crs("EPSG:4547").to_file(folder / f"{layer}.fgb")
    elif form in ("kml", "kmz"):
        frame.to_file(folder / f"{layer}.kml", driver="KML")
        if form == "kmz":
            zip_files([folder / f"{layer}.kml"], folder / f"{layer}.kmz", ["doc.kml"])
            (folder / f"{layer}.kml").unlink()
    elif form == "geojson":
        chinese(frame, layer).to_file(folder / f"{layer}.geojson", driver="GeoJSON")
    elif form == "gpkg":
        chinese(frame, layer).to_crs("EPSG:4490").to_file(folder / f"{layer}.gpkg", layer=layer, driver="GPKG")


def same_layers(read: dict, sample: dict) -> None:
    """The same features (by key), the same attributes, geometry within ``TOLERANCE``."""
    assert set(sample) <= set(read)
    for name, original in sample.items():
        key = LAYERS[name].key
        got = read[name].sort_values(key).reset_index(drop=True)
        want = original.sort_values(key).reset_index(drop=True)
        assert len(got) == len(want), name
        for field in LAYERS[name].field_names:
            assert got[field].tolist() == want[field].tolist(), (name, field)
        if LAYERS[name].spatial:
            distance = shapely.hausdorff_distance(got.geometry.values, want.geometry.values)
            assert distance.max() < TOLERANCE, (name, distance.max())
            assert np.allclose(shapely.area(got.geometry.values), shapely.area(want.geometry.values), rtol=1e-6,
                               atol=1e-12), name


FORMS = ["shp", "shp.zip", "csv", "xlsx", "kml", "kmz", "fgb", "geojson", "gpkg"]


@pytest.mark.parametrize("form", FORMS)
def test_the_sample_county_round_trips_through_each_format(form: str, sample, tmp_path: Path) -> None:
    folder = tmp_path / form
    folder.mkdir()
    for name, frame in sample.items():
        write_layer(frame, name, folder, form)
    suffixes = {p.suffix for p in folder.iterdir()}
    assert f".{form.split('.')[-1]}" in suffixes
    report = import_package(None, folder, dry_run=True)
    assert report.counts == {name: len(frame) for name, frame in sample.items()}
    assert not [w for w in report.warnings if "未识别的列" in w.message], report.warnings
    package = read_package(folder)
    same_layers(package.layers, sample)


def test_the_sample_county_as_zipped_shapefiles_imports_into_a_store(sample, tmp_path: Path, copy_store) -> None:
    folder = tmp_path / "county"
    folder.mkdir()
    for name, frame in sample.items():
        write_layer(frame, name, folder, "shp.zip")
    store = open_test_store(copy_store.empty(tmp_path, "s.gpkg"))
    report = import_package(store, folder)
    assert report.columns["grids"] == {"网格编码": "code", "网格名称": "name", "所属社区": "community_code"}
    assert report.files["grids"] == "grids.zip"
    same_layers(store.read_layers(), sample)


# ---------------------------------------------------------------- Shapefile: encodings and CRS


@pytest.fixture
def gbk_grids(tmp_path: Path) -> tuple[Path, gpd.GeoDataFrame]:
    """The tiny package with grids as a GBK Shapefile in CGCS2000 3-degree GK CM 111E (EPSG:4546)."""
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    grids = layers.pop("grids")
    folder = write_package(layers, tmp_path / "gbk")
    chinese(grids, "grids").to_crs("EPSG:4546").to_file(folder / "grids.shp", encoding="GBK")
    return folder, grids


def test_a_gbk_shapefile_in_gauss_kruger_comes_out_right_in_wgs84(gbk_grids) -> None:
    folder, grids = gbk_grids
    assert (folder / "grids.cpg").read_text() == "GBK"
    assert "CGCS2000_3_Degree_GK_CM_111E" in (folder / "grids.prj").read_text()
    raw = gpd.read_file(folder / "grids.shp")
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:4546", "EPSG:4326", always_xy=True)
    x, y = np.asarray(raw.geometry.iloc[0].exterior.coords).T
    expected = np.column_stack(to_wgs84.transform(x, y))
    package = read_package(folder)
    assert not package.problems
    got = package.layers["grids"]
    assert got["name"].tolist() == grids["name"].tolist()
    assert np.allclose(np.asarray(got.geometry.iloc[0].exterior.coords), expected, atol=1e-9)
    assert np.allclose(got.total_bounds, [110.74, 35.12, 110.80, 35.16], atol=1e-7)


def test_without_a_cpg_the_gbk_text_is_detected(gbk_grids) -> None:
    folder, grids = gbk_grids
    (folder / "grids.cpg").unlink()
    assert "Íø" in gpd.read_file(folder / "grids.shp").columns[0]  # what GDAL alone makes of it
    got = read_package(folder).layers["grids"]
    assert got["name"].tolist() == grids["name"].tolist() == ["双塔社区第1网格", "双塔社区第2网格", "葫芦岛社区第1网格",
                                                              "葫芦岛社区第2网格"]


def test_a_utf8_shapefile_without_cpg_is_detected_too(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    grids = layers.pop("grids")
    folder = write_package(layers, tmp_path / "utf8")
    grids.rename(columns={"community_code": "社区"}).to_file(folder / "grids.shp", encoding="UTF-8")
    (folder / "grids.cpg").unlink()
    got = read_package(folder).layers["grids"]
    assert got["name"].iloc[2] == "葫芦岛社区第1网格" and got["community_code"].iloc[2] == "140821100016"


def test_the_encoding_option_overrides_a_wrong_cpg(gbk_grids) -> None:
    folder, _ = gbk_grids
    (folder / "grids.cpg").write_text("UTF-8")
    with pytest.raises(PackageUnreadable, match="--encoding"):
        read_package(folder)
    assert read_package(folder, encoding="gbk").layers["grids"]["name"].iloc[0] == "双塔社区第1网格"
    with pytest.raises(PackageUnreadable, match="不支持的编码"):
        read_package(folder, encoding="klingon")


def test_a_shapefile_without_prj_in_metres_says_what_is_missing(gbk_grids) -> None:
    folder, _ = gbk_grids
    (folder / "grids.prj").unlink()
    problems = read_package(folder).problems
    assert any(p.layer == "grids" and ".prj" in p.message and p.severity == "error" for p in problems)
    fixed = read_package(folder, source_crs="EPSG:4546")
    assert np.allclose(fixed.layers["grids"].total_bounds, [110.74, 35.12, 110.80, 35.16], atol=1e-7)


def test_a_shapefile_missing_its_dbf_is_unreadable(gbk_grids) -> None:
    folder, _ = gbk_grids
    (folder / "grids.dbf").unlink()
    with pytest.raises(PackageUnreadable, match="grids.dbf"):
        read_package(folder)


# ---------------------------------------------------------------- tables


def test_xy_columns_in_gauss_kruger_with_a_prj_beside_the_table(tmp_path: Path) -> None:
    """Buildings as points in an .xlsx, x/y in EPSG:4527 (zone 37, with its 37 500 000 m false easting)."""
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    layers["buildings"] = layers["buildings"].set_geometry(layers["buildings"].geometry.centroid)
    folder = write_package(layers, tmp_path / "xy")
    (folder / "buildings.geojson").unlink()
    projected = layers["buildings"].to_crs("EPSG:4527")
    table = chinese(projected.drop(columns="geometry"), "buildings")
    table["X"] = [repr(p.x) for p in projected.geometry]
    table["Y"] = [repr(p.y) for p in projected.geometry]
    assert table["X"].astype(float).min() > 37_000_000
    write_table(table, folder / "buildings.xlsx")
    (folder / "buildings.prj").write_text("EPSG:4527")
    got = read_package(folder).layers["buildings"]
    lon, lat = pyproj.Transformer.from_crs("EPSG:4527", "EPSG:4326", always_xy=True).transform(
        table["X"].astype(float), table["Y"].astype(float))
    assert np.allclose(got.geometry.x, lon, atol=1e-9) and np.allclose(got.geometry.y, lat, atol=1e-9)
    assert np.allclose(got.geometry.x, layers["buildings"].geometry.x, atol=1e-7)


def test_a_gbk_csv_with_lon_lat_in_chinese_columns(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    stations = layers.pop("stations")
    folder = write_package(layers, tmp_path / "csv")
    write_table(chinese(stations, "stations"), folder / "stations.csv", encoding="gbk", geometry="lonlat")
    (folder / "stations.csv").read_bytes().decode("gbk")  # really GBK
    report = import_package(None, folder, dry_run=True)
    assert report.columns["stations"] == {"站点编码": "code", "名称": "name", "类型": "kind",
                                          "社区编码": "community_code", "地址": "address"}
    got = read_package(folder).layers["stations"]
    assert got["name"].tolist() == stations["name"].tolist()
    assert shapely.equals_exact(got.geometry.values, stations.geometry.values, tolerance=1e-12).all()


def test_a_spatial_table_without_geometry_columns_says_which_names_work(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    units = layers.pop("units")
    folder = write_package(layers, tmp_path / "nogeom")
    units.drop(columns="geometry").to_csv(folder / "units.csv", index=False)
    problems = read_package(folder).problems
    assert any(p.layer == "units" and "经度/纬度" in p.message for p in problems)


# ---------------------------------------------------------------- KML


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder><name>网格</name>
{placemarks}
</Folder></Document></kml>"""
PLACEMARK = """<Placemark><name>{name}</name><description>画于天地图</description>
<ExtendedData><Data name="网格编码"><value>{code}</value></Data><Data name="所属社区"><value>{community}</value></Data>
</ExtendedData>
<Polygon><outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon>
</Placemark>"""


def kml_grids(grids: gpd.GeoDataFrame) -> str:
    """KML as web maps write it: ``<Data>`` elements (GDAL's KML driver ignores them), the name in ``<name>``."""
    marks = [PLACEMARK.format(name=row["name"], code=row["code"], community=row["community_code"],
                              coords=" ".join(f"{x!r},{y!r},0" for x, y in row.geometry.exterior.coords))
             for _, row in grids.iterrows()]
    return KML.format(placemarks="\n".join(marks))


def test_a_kml_drawn_in_a_web_map_imports_with_its_data_elements(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    grids = layers.pop("grids")
    folder = write_package(layers, tmp_path / "kml")
    (folder / "grids.kml").write_text(kml_grids(grids), encoding="utf-8")
    report = import_package(None, folder, dry_run=True)
    assert report.counts["grids"] == 4
    assert report.columns["grids"] == {"网格编码": "code", "所属社区": "community_code"}  # and <name> → name
    assert any("Description" in w.message for w in report.warnings)  # reported, not silently dropped
    got = read_package(folder).layers["grids"]
    assert shapely.equals_exact(got.geometry.values, grids.geometry.values, tolerance=1e-12).all()


def test_a_kml_with_a_document_type_is_refused_unread(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    grids = layers.pop("grids")
    folder = write_package(layers, tmp_path / "xxe")
    text = kml_grids(grids).replace('<?xml version="1.0" encoding="UTF-8"?>',
                                    '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
    (folder / "grids.kml").write_text(text.replace("画于天地图", "&x;"), encoding="utf-8")
    with pytest.raises(PackageUnreadable, match="DOCTYPE"):
        read_package(folder)


# ---------------------------------------------------------------- column names


def test_unknown_columns_are_reported_and_a_mapping_file_names_them(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    layers["grids"] = layers["grids"].rename(columns={"code": "GRID_ID", "name": "网格名称"})
    layers["grids"]["面积"] = "1.5"
    layers["grids"]["empty"] = ""
    folder = write_package(layers, tmp_path / "map")
    package = read_package(folder)
    assert any(p.field == "code" and p.severity == "error" for p in package.problems)
    warning = next(p for p in package.problems if "未识别的列" in p.message)
    assert warning.extra["columns"] == ["GRID_ID", "面积"]  # an empty column loses nothing and is not reported
    mapping = tmp_path / "map.toml"
    mapping.write_text('[grids]\n"GRID_ID" = "code"\n"面积" = ""\n', encoding="utf-8")
    mapped = read_package(folder, mapping=mapping)
    assert not mapped.problems
    assert mapped.layers["grids"]["code"].tolist() == tiny_layers()["grids"]["code"].tolist()
    (folder / "mapping.toml").write_text(mapping.read_text(encoding="utf-8"), encoding="utf-8")
    assert not read_package(folder).problems  # a package may carry its own mapping


def test_a_mapping_to_a_field_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text('[grids]\n"GRID_ID" = "grid_id"\n', encoding="utf-8")
    with pytest.raises(PackageUnreadable, match="grid_id"):
        load_mapping(mapping)
    mapping.write_text('[streets]\n"x" = "code"\n', encoding="utf-8")
    with pytest.raises(PackageUnreadable, match="streets"):
        load_mapping(mapping)


def test_two_columns_for_one_field_is_an_error(make_package) -> None:
    def both(layers):
        layers["grids"]["网格编码"] = layers["grids"]["code"]

    problems = read_package(make_package(both)).problems
    assert any(p.severity == "error" and "code" in p.message and "网格编码" in p.message for p in problems)


def test_the_alias_table_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "data-package.md").read_text(encoding="utf-8")
    for alias in ALIASES:
        for name in alias.names:
            assert name in doc, name


def test_every_field_has_a_chinese_name_in_the_table() -> None:
    for name, layer in LAYERS.items():
        if name in CHINESE:
            assert set(CHINESE[name]) == set(layer.field_names), name


# ---------------------------------------------------------------- check without writing


def test_import_check_writes_nothing(tmp_path: Path, gbk_grids) -> None:
    folder, _ = gbk_grids
    db = tmp_path / "never.gpkg"
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "import", str(folder), "--check", "--db", str(db)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "检查通过，未写入任何数据" in done.stdout and "网格编码→code" in done.stdout
    assert not db.exists()


def test_admin_dry_run_reports_without_writing(sample_db_copy, tiny_package: Path) -> None:
    from test_import_safety import zipped

    settings = store_settings(db=sample_db_copy, admin_token=ADMIN, load_sample_if_empty=False)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(create_app(settings)) as client:
        before = client.get("/v1/lookup", params={"lon": 110.7475, "lat": 35.14}).json()
        response = client.post("/v1/admin/import?dry_run=true", content=zipped(tiny_package), headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["dry_run"] is True and response.json()["counts"]["grids"] == 4
        assert client.get("/v1/lookup", params={"lon": 110.7475, "lat": 35.14}).json() == before


# ---------------------------------------------------------------- safety


def test_a_vrt_saved_as_shp_or_fgb_is_refused(make_package) -> None:
    folder = make_package(lambda layers: None)
    (folder / "grids.geojson").unlink()
    (folder / "grids.shp").write_text("<OGRVRTDataSource><OGRVRTLayer name='g'><SrcDataSource>CSV:/etc/passwd"
                                      "</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>")
    (folder / "grids.dbf").write_bytes(b"")
    (folder / "grids.shx").write_bytes(b"")
    with pytest.raises(PackageUnreadable, match="grids.shp 不是 Shapefile"):
        read_package(folder)
    for file in folder.glob("grids.*"):
        file.unlink()
    (folder / "grids.fgb").write_text("<OGRVRTDataSource/>")
    with pytest.raises(PackageUnreadable, match="grids.fgb 不是 FlatGeobuf"):
        read_package(folder)


def test_a_zipped_layer_bomb_is_refused(make_package) -> None:
    folder = make_package(lambda layers: None)
    (folder / "grids.geojson").unlink()
    with zipfile.ZipFile(folder / "grids.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("grids.shp", bytes(50 << 20))
    with pytest.raises(GridmapError) as refused:
        read_package(folder, limits=UploadLimits(max_bytes=20 << 20))
    assert refused.value.status_code == 413


def test_a_zipped_package_is_a_package_too(tmp_path: Path, tiny_package: Path) -> None:
    target = tmp_path / "package.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in tiny_package.iterdir():
            archive.write(file, f"县网格/{file.name}")
    target.write_bytes(buffer.getvalue())
    assert import_package(None, target, dry_run=True).counts["grids"] == 4
    with pytest.raises(ImportRejected):
        (tiny_package / "precincts.geojson").unlink()
        import_package(None, tiny_package, dry_run=True)


def test_buildings_in_any_form_still_need_a_grid(tmp_path: Path) -> None:
    """Validation is the same whatever the format: a building as an .xlsx row outside every grid is an error."""
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    buildings = layers.pop("buildings")
    buildings.loc[0, "geometry"] = box(110.81, 35.17, 110.811, 35.171)
    folder = write_package(layers, tmp_path / "b")
    write_table(chinese(buildings, "buildings"), folder / "buildings.xlsx")
    with pytest.raises(ImportRejected) as rejected:
        import_package(None, folder, dry_run=True)
    assert any(p["code"] == "B001" and "不在任何网格内" in p["message"] for p in rejected.value.details)


def test_an_upload_with_a_zipped_gbk_shapefile_and_its_own_mapping(sample_db_copy, gbk_grids,
                                                                   tmp_path: Path) -> None:
    """What a county sends: a zip holding grids.zip (GBK DBF, GK CM 111E, a column only its mapping names)."""
    from test_import_safety import zipped

    folder, _ = gbk_grids
    parts = sorted(folder.glob("grids.*"))
    raw = gpd.read_file(folder / "grids.shp").rename(columns={"所属社区": "SQ_BM"})
    for file in parts:
        file.unlink()
    shp = tmp_path / "parts"
    shp.mkdir()
    raw.to_file(shp / "网格.shp", encoding="GBK")
    zip_files(sorted(shp.iterdir()), folder / "grids.zip", [f"网格数据/{p.name}" for p in sorted(shp.iterdir())])
    (folder / "mapping.toml").write_text('[grids]\n"SQ_BM" = "community_code"\n', encoding="utf-8")
    settings = store_settings(db=sample_db_copy, admin_token=ADMIN, load_sample_if_empty=False)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(create_app(settings)) as client:
        checked = client.post("/v1/admin/import?dry_run=true", content=zipped(folder), headers=auth)
        assert checked.status_code == 200, checked.text
        assert checked.json()["columns"]["grids"] == {"网格编码": "code", "网格名称": "name",
                                                      "SQ_BM": "community_code"}
        assert checked.json()["files"]["grids"] == "grids.zip"
        done = client.post("/v1/admin/import", content=zipped(folder), headers=auth)
        assert done.status_code == 200, done.text
        found = client.get("/v1/lookup", params={"lon": 110.7475, "lat": 35.14}).json()
        assert found["grid"]["code"] == "140821100014-01" and found["grid"]["name"] == "双塔社区第1网格"


def test_names_in_reference_columns_and_chinese_levels_become_codes(tmp_path: Path) -> None:
    from packages import tiny_layers, write_package

    layers = tiny_layers()
    layers["regions"]["level"] = ["县", "镇", "社区", "社区"]
    layers["grids"]["community_code"] = ["双塔社区", "双塔社区", "葫芦岛社区", "140821100016"]
    layers["workers"]["grid_code"] = ["双塔社区第1网格", "", "", "", "", ""]
    folder = write_package(layers, tmp_path / "names")
    report = import_package(None, folder, dry_run=True)
    assert any("双塔社区→140821100014" in w.message for w in report.warnings)
    package = read_package(folder)
    assert package.layers["regions"]["level"].tolist() == ["county", "town", "community", "community"]
    assert package.layers["grids"]["community_code"].tolist() == tiny_layers()["grids"]["community_code"].tolist()
    assert package.layers["workers"]["grid_code"].iloc[0] == "140821100014-01"


def test_a_single_layer_file_is_not_a_package(gbk_grids) -> None:
    folder, _ = gbk_grids
    with pytest.raises(PackageUnreadable, match="单个图层文件"):
        import_package(None, folder / "grids.shp", dry_run=True)


@pytest.mark.parametrize("inner", ["grids.geojson", "grids.gpkg", "grids.csv", "grids.kml"])
def test_a_zipped_layer_may_hold_any_layer_form(inner: str, make_package, tmp_path: Path) -> None:
    from packages import tiny_layers

    folder = make_package(lambda layers: None)
    (folder / "grids.geojson").unlink()
    grids = tiny_layers()["grids"]
    work = tmp_path / "inner"
    work.mkdir()
    write_layer(grids, "grids", work, inner.split(".")[1])
    zip_files([work / inner], folder / "grids.zip", [f"导出/{inner}"])
    got = read_package(folder).layers["grids"]
    assert got["code"].tolist() == grids["code"].tolist()
    assert shapely.hausdorff_distance(got.geometry.values, grids.geometry.values).max() < TOLERANCE
