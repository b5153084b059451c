"""A data package cannot hurt the server: zip bombs, lying zips, and files that make GDAL reach elsewhere.

Zips are limited in unpacked size, entries and compression ratio, checked from the central directory
before anything is unpacked and again on every byte written; whatever the outcome, the temporary
folder is gone. GDAL opens package files only with the driver their suffix names (GeoJSON, GPKG),
so an OGR VRT saved as ``grids.geojson`` is refused, and a GeoJSON ``crs`` that links to a URL or
names a path is refused before GDAL could fetch it.
"""

from __future__ import annotations

import http.server
import io
import sqlite3
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap.api import create_app
from gridmap.errors import GridmapError, PackageUnreadable, PayloadTooLarge
from gridmap.importer import UploadLimits, import_package, import_upload
from gridmap.settings import SAMPLE_PACKAGE, Settings
from gridmap.store import GeoPackageStore

ADMIN = "import-safety-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
GB_OF_ZEROS = 1_000_000_000


def zipped(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"package/{file.name}")
        for name, data in (extra or {}).items():
            archive.writestr(f"package/{name}", data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """One member, ``grids.geojson``, of 1 GB of zeros: about 4.5 MB zipped, streamed so memory stays small."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("grids.geojson", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(GB_OF_ZEROS // len(chunk)):
                member.write(chunk)
            member.write(bytes(GB_OF_ZEROS % len(chunk)))
    return buffer.getvalue()


def patch_sizes(data: bytes, *, file_size: int | None = None, compress_size: int | None = None,
                flags: int | None = None, method: int | None = None) -> bytes:
    """Rewrite what the zip's headers declare (first entry, local header and central directory)."""
    out = bytearray(data)
    local, central = out.find(b"PK\x03\x04"), out.find(b"PK\x01\x02")
    for start, offset in ((local, 0), (central, 2)):  # the central header has 2 more bytes before the fields
        if flags is not None:
            struct.pack_into("<H", out, start + 6 + offset, flags)
        if method is not None:
            struct.pack_into("<H", out, start + 8 + offset, method)
        if compress_size is not None:
            struct.pack_into("<I", out, start + 18 + offset, compress_size)
        if file_size is not None:
            struct.pack_into("<I", out, start + 22 + offset, file_size)
    return bytes(out)


@pytest.fixture
def store(tmp_path: Path, copy_store, tiny_package: Path) -> GeoPackageStore:
    store = open_test_store(copy_store.empty(tmp_path, "store.gpkg"))
    import_package(store, tiny_package)
    return store


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


def left_on_disk(uploads: Path) -> list[Path]:
    return sorted(uploads.glob("gridmap-upload-*")) if uploads.exists() else []


def refused_fast(store: GeoPackageStore, data: bytes, limits: UploadLimits) -> GridmapError:
    revision = store.revision()
    started = time.monotonic()
    with pytest.raises(GridmapError) as refused:
        import_upload(store, data, limits=limits)
    assert time.monotonic() - started < 1.0, "refused, but only after unpacking"
    assert store.revision() == revision
    return refused.value


class TestZipBombs:
    def test_a_gigabyte_of_zeros_is_refused_in_under_a_second_with_nothing_left(self, store, bomb, uploads) -> None:
        error = refused_fast(store, bomb, UploadLimits(tmp_dir=uploads))
        assert isinstance(error, PayloadTooLarge)
        assert "grids.geojson" in error.message and "压缩比" in error.message
        assert left_on_disk(uploads) == []

    def test_through_the_admin_api_too(self, sample_db_copy: Path, bomb: bytes, uploads: Path) -> None:
        settings = store_settings(db=sample_db_copy, admin_token=ADMIN, load_sample_if_empty=False, import_tmp_dir=uploads)
        with TestClient(create_app(settings)) as client:
            before = client.get("/health").json()
            started = time.monotonic()
            response = client.post("/v1/admin/import", content=bomb, headers=AUTH)
            assert time.monotonic() - started < 1.0
            assert response.status_code == 413
            assert response.json()["error"] == "payload_too_large" and "压缩炸弹" in response.json()["detail"]
            assert client.get("/health").json() == before
        assert uploads.is_dir(), "the upload was not unpacked where the settings say"
        assert left_on_disk(uploads) == []

    def test_declared_sizes_that_lie_do_not_help(self, store, bomb, uploads) -> None:
        small = patch_sizes(bomb, file_size=1000)  # says 1000 bytes; the data is still 1 GB of zeros
        error = refused_fast(store, small, UploadLimits(tmp_dir=uploads))
        assert isinstance(error, PackageUnreadable) and "grids.geojson" in error.message
        assert left_on_disk(uploads) == []
        tiny_packed = patch_sizes(bomb, compress_size=100)  # says the 1 GB comes from 100 bytes
        assert isinstance(refused_fast(store, tiny_packed, UploadLimits(tmp_dir=uploads)), GridmapError)
        assert left_on_disk(uploads) == []

    def test_the_ratio_is_judged_on_large_entries_only(self, store, tiny_package, uploads) -> None:
        repeated = b"140821100014," * 200_000  # 2.6 MB of one value: compresses far past 100 times
        error = refused_fast(store, zipped(tiny_package, {"notes.csv": repeated}), UploadLimits(tmp_dir=uploads))
        assert isinstance(error, PayloadTooLarge) and "notes.csv" in error.message
        small = zipped(tiny_package, {"notes.csv": repeated[:13_000]})  # 13 KB of the same: harmless
        import_upload(store, small, limits=UploadLimits(tmp_dir=uploads))
        assert left_on_disk(uploads) == []

    def test_too_many_entries_are_refused_before_unpacking(self, store, tiny_package, uploads) -> None:
        extra = {f"junk/{i}.txt": b"" for i in range(1000)}
        error = refused_fast(store, zipped(tiny_package, extra), UploadLimits(tmp_dir=uploads))
        assert isinstance(error, PayloadTooLarge) and "最多 1000 个" in error.message
        assert left_on_disk(uploads) == []

    def test_the_unpacked_total_is_limited(self, store, tiny_package, uploads) -> None:
        noise = bytes((i * 2654435761 >> 13) & 0xFF for i in range(2 << 20))  # 2 MB that hardly compresses
        limits = UploadLimits(max_bytes=1 << 20, tmp_dir=uploads)
        error = refused_fast(store, zipped(tiny_package, {"photo.bin": noise}), limits)
        assert isinstance(error, PayloadTooLarge) and "超过上限 1 MB" in error.message
        assert left_on_disk(uploads) == []

    def test_the_limits_come_from_the_settings(self, tmp_path: Path) -> None:
        settings = Settings(import_max_unpacked_bytes=5 << 20, import_max_files=7, import_max_ratio=20,
                            import_tmp_dir=tmp_path)
        assert UploadLimits.from_settings(settings) == UploadLimits(5 << 20, 7, 20, tmp_path)
        assert UploadLimits() == UploadLimits.from_settings(Settings())

    @pytest.mark.slow
    def test_the_sample_county_zipped_imports_under_the_default_limits(self, tmp_path, copy_store, uploads) -> None:
        store = open_test_store(copy_store.empty(tmp_path, "county.gpkg"))
        report = import_upload(store, zipped(SAMPLE_PACKAGE), limits=UploadLimits(tmp_dir=uploads))
        assert report.counts["grids"] >= 80
        assert left_on_disk(uploads) == []


def corrupt_zips(folder: Path) -> dict[str, bytes]:
    good = zipped(folder)
    outside = io.BytesIO()
    with zipfile.ZipFile(outside, "w") as archive:
        archive.writestr("../../evil.geojson", b"{}")
    absolute = io.BytesIO()
    with zipfile.ZipFile(absolute, "w") as archive:
        archive.writestr("/etc/cron.d/evil", b"* * * * * root true")
    return {
        "truncated": good[: len(good) // 2],
        "garbage after the signature": b"PK\x03\x04" + bytes(range(256)) * 40,
        "an encrypted entry": patch_sizes(good, flags=0x1),
        "an unknown compression method": patch_sizes(good, method=99),
        "entries overlapping": patch_sizes(good, compress_size=len(good) * 2),
        "a path out of the folder": outside.getvalue(),
        "an absolute path": absolute.getvalue(),
    }


CORRUPTIONS = ["truncated", "garbage after the signature", "an encrypted entry", "an unknown compression method",
               "entries overlapping", "a path out of the folder", "an absolute path"]


def test_every_corruption_is_tried(tiny_package: Path) -> None:
    assert sorted(corrupt_zips(tiny_package)) == sorted(CORRUPTIONS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_a_corrupt_or_hostile_zip_is_a_4xx_with_nothing_left(store, tiny_package, uploads, name: str) -> None:
    data = corrupt_zips(tiny_package)[name]
    error = refused_fast(store, data, UploadLimits(tmp_dir=uploads))
    assert 400 <= error.status_code < 500
    assert left_on_disk(uploads) == []


VRT = """<OGRVRTDataSource>
  <OGRVRTLayer name="grids">
    <SrcDataSource>{source}</SrcDataSource>
    <SrcLayer>passwd</SrcLayer>
  </OGRVRTLayer>
</OGRVRTDataSource>
"""


@pytest.fixture
def vrt_package(make_package, tmp_path: Path) -> Path:
    folder = make_package(lambda layers: None)
    (folder / "grids.geojson").write_text(VRT.format(source="CSV:/etc/passwd"))
    return folder


class TestGdalOpensOnlyWhatTheSuffixSays:
    def test_without_the_guard_gdal_would_read_the_other_file(self, vrt_package: Path) -> None:
        """Why the guard exists: GDAL picks the VRT driver from the content and reads /etc/passwd."""
        leaked = pyogrio.read_dataframe(vrt_package / "grids.geojson")
        assert "root:x:0:0" in " ".join(map(str, leaked.iloc[0].tolist() + list(leaked.columns)))

    def test_a_vrt_saved_as_geojson_is_refused_naming_the_file(self, store, vrt_package: Path) -> None:
        with pytest.raises(PackageUnreadable) as refused:
            import_package(store, vrt_package)
        assert "grids.geojson" in refused.value.message and "VRT" in refused.value.message
        assert "root:" not in refused.value.message

    def test_through_the_admin_api_the_other_file_never_appears(self, sample_db_copy, vrt_package) -> None:
        settings = store_settings(db=sample_db_copy, admin_token=ADMIN, load_sample_if_empty=False)
        with TestClient(create_app(settings)) as client:
            response = client.post("/v1/admin/import", content=zipped(vrt_package), headers=AUTH)
        assert response.status_code == 422
        assert response.json()["error"] == "package_unreadable" and "grids.geojson" in response.json()["detail"]
        assert "root:" not in response.text and "/bin/" not in response.text

    @pytest.mark.parametrize("source", ["/vsizip//tmp/elsewhere.zip/passwd.csv", "/vsicurl/http://127.0.0.1:9/x.csv"])
    def test_a_vrt_naming_vsi_paths_is_refused_too(self, store, make_package, source: str) -> None:
        folder = make_package(lambda layers: None)
        (folder / "grids.geojson").write_text(VRT.format(source=source))
        with pytest.raises(PackageUnreadable, match="grids.geojson"):
            import_package(store, folder)

    def test_a_vrt_saved_as_geopackage_is_refused(self, store, make_package) -> None:
        folder = make_package(lambda layers: None)
        (folder / "grids.geojson").unlink()
        (folder / "grids.gpkg").write_text(VRT.format(source="CSV:/etc/passwd"))
        with pytest.raises(PackageUnreadable, match="grids.gpkg 不是 GeoPackage"):
            import_package(store, folder)

    def test_a_vrt_uploaded_as_the_whole_package_is_refused(self, store) -> None:
        with pytest.raises(PackageUnreadable):
            import_upload(store, VRT.format(source="CSV:/etc/passwd").encode())


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request: GDAL must never call it."""
    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()


def with_crs(folder: Path, crs: dict) -> None:
    import json

    path = folder / "grids.geojson"
    document = json.loads(path.read_text())
    document["crs"] = crs
    path.write_text(json.dumps(document, ensure_ascii=False))


class TestNamesInsideFilesAreNotFollowed:
    @pytest.mark.parametrize("crs", [
        lambda url: {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}},
        lambda url: {"type": "name", "properties": {"name": f"/vsicurl/{url}/crs.wkt"}},
        lambda url: {"type": "name", "properties": {"name": "/vsizip//tmp/elsewhere.zip/crs.wkt"}},
        lambda url: {"type": "name", "properties": {"name": "/etc/passwd"}},
    ], ids=["link", "vsicurl", "vsizip", "a file path"])
    def test_a_geojson_crs_that_is_a_link_or_a_path_is_refused_unfetched(self, store, make_package, listener,
                                                                        crs) -> None:
        url, hits = listener
        folder = make_package(lambda layers: None)
        with_crs(folder, crs(url))
        with pytest.raises(PackageUnreadable, match="grids.geojson 的 crs"):
            import_package(store, folder)
        assert hits == []

    def test_without_the_guard_gdal_would_fetch_the_link(self, make_package, listener) -> None:
        """Why the crs is checked before GDAL reads the file: its GeoJSON driver fetches ``link`` crs."""
        url, hits = listener
        folder = make_package(lambda layers: None)
        with_crs(folder, {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}})
        pyogrio.read_dataframe(folder / "grids.geojson")
        assert hits == ["/crs.wkt"]

    def test_a_crs_given_by_name_still_works(self, store, make_package) -> None:
        def gauss_kruger(layers: dict) -> None:
            for name, frame in layers.items():
                if isinstance(frame, gpd.GeoDataFrame):
                    layers[name] = frame.to_crs("EPSG:4549")

        folder = make_package(gauss_kruger)
        assert "EPSG::4549" in (folder / "grids.geojson").read_text()
        assert import_package(store, folder).counts["grids"] == 4

    def test_a_geopackage_naming_vsi_paths_is_read_without_following_them(self, store, tiny_package, tmp_path,
                                                                          listener) -> None:
        url, hits = listener
        gpkg = tmp_path / "named.gpkg"
        import_package(open_test_store(gpkg), tiny_package)
        with sqlite3.connect(gpkg) as db:
            db.execute("UPDATE gpkg_spatial_ref_sys SET definition = ? WHERE srs_id = 4326",
                       (f"/vsicurl/{url}/srs.wkt",))
            db.execute("UPDATE grids SET name = ?", (f"/vsizip//etc/elsewhere.zip/{url}",))
        try:
            import_upload(store, gpkg.read_bytes())
        except GridmapError as refused:
            assert 400 <= refused.status_code < 500
        assert hits == []
