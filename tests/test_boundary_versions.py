"""Boundary versions (issue #14 §3): every import of grids is kept with the date it takes effect; lookups
answer from the version in force on the day asked about; a diff says what a redraw changes; incidents keep
the grid, worker and version they were routed under.

The county is the tiny hand-made package (tests/packages.py): version A as drawn there; version B moves
the line between 双塔 grids 01 and 02 east (building B002, 36 households, changes grid) and splits 葫芦岛
grid 02 into 02 and a new 03 (building B005 changes grid; a new worker W07 covers it).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from packages import tiny_layers, write_package
from shapely.geometry import box
from stores import RAW_ERRORS, execute_raw, open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.importer import import_package
from gridmap.versions.records import today_local

ADMIN = "versions-admin-token-0123456789abcdef"
STAFF = {"Authorization": f"Bearer {ADMIN}"}
A, B = "140821100014", "140821100016"
B002 = (110.7625, 35.14)
"""A point in building B002: in 双塔 grid 02 under version A, in grid 01 under version B."""
B005 = (110.7925, 35.15)
TODAY = today_local()
CHANGE = TODAY - timedelta(days=30)
"""Version B's date: a month ago, so today and the days before it are on the two sides."""
START = TODAY - timedelta(days=400)


def version_b_layers() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    layers = tiny_layers()
    grids = layers["grids"]
    grids.loc[grids["code"] == f"{A}-01", "geometry"] = box(110.740, 35.12, 110.765, 35.16)
    grids.loc[grids["code"] == f"{A}-02", "geometry"] = box(110.765, 35.12, 110.770, 35.16)
    grids.loc[grids["code"] == f"{B}-02", "geometry"] = box(110.785, 35.12, 110.800, 35.145)
    new = gpd.GeoDataFrame({"code": [f"{B}-03"], "name": ["葫芦岛社区第3网格"], "community_code": [B]},
                           geometry=[box(110.785, 35.145, 110.800, 35.16)], crs=grids.crs)
    layers["grids"] = gpd.GeoDataFrame(pd.concat([grids, new], ignore_index=True), crs=grids.crs)
    worker = pd.DataFrame({"code": ["W07"], "name": ["孙丽"], "phone": ["13800000007"], "role": ["专职网格员"],
                           "grid_code": [f"{B}-03"], "community_code": [B]})
    layers["workers"] = pd.concat([layers["workers"], worker], ignore_index=True)
    return layers


@pytest.fixture
def empty_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if backend == "postgis":
        return request.getfixturevalue("pg_cluster").new_database()
    return tmp_path / "versions.gpkg"


@pytest.fixture
def packages(tmp_path: Path) -> dict[str, Path]:
    return {"a": write_package(tiny_layers(), tmp_path / "a"), "b": write_package(version_b_layers(), tmp_path / "b")}


@pytest.fixture
def two_versions(empty_db: str | Path, packages: dict[str, Path]) -> str | Path:
    """Version A from ``START``, version B from ``CHANGE`` (in force today)."""
    store = open_test_store(empty_db)
    assert import_package(store, packages["a"], effective_from=START, label="初始网格").version["live"]
    assert import_package(store, packages["b"], effective_from=CHANGE, label="网格调整").version["live"]
    return empty_db


@pytest.fixture
def api(two_versions: str | Path) -> Iterator[TestClient]:
    settings = store_settings(db=two_versions, load_sample_if_empty=False, admin_token=ADMIN)
    with TestClient(create_app(settings)) as client:
        yield client


def grid_at(client: TestClient, point: tuple[float, float], at: date | None = None) -> tuple[str, Any]:
    params: dict[str, Any] = {"lon": point[0], "lat": point[1]}
    if at is not None:
        params["at"] = at.isoformat()
    answer = client.get("/v1/lookup", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["grid"]["code"], body.get("boundary_version")


def token(client: TestClient, role: str, worker: str | None = None) -> dict[str, str]:
    made = client.post("/v1/admin/tokens", json={"role": role, "worker": worker}, headers=STAFF)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


# versions are kept -----------------------------------------------------------------------------------

def test_each_import_of_grids_is_kept_as_a_version_with_its_date_and_label(api: TestClient) -> None:
    listing = api.get("/v1/versions", headers=STAFF)
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert [(v["effective_from"], v["label"]) for v in body["items"]] == [
        (START.isoformat(), "初始网格"), (CHANGE.isoformat(), "网格调整")]
    assert [v["counts"] for v in body["items"]] == [{"grids": 4, "workers": 6}, {"grids": 5, "workers": 7}]
    assert body["live"] == body["in_force_today"] == body["items"][1]["id"]
    assert [v["live"] for v in body["items"]] == [False, True]


def test_lookups_answer_from_the_version_in_force_on_the_day_asked(api: TestClient) -> None:
    before, version = grid_at(api, B002, CHANGE - timedelta(days=1))
    assert before == f"{A}-02" and version["effective_from"] == START.isoformat()
    on_the_day, version = grid_at(api, B002, CHANGE)
    assert on_the_day == f"{A}-01" and version["effective_from"] == CHANGE.isoformat()
    assert grid_at(api, B002) == (f"{A}-01", None)  # today, from the live index
    assert grid_at(api, B005, CHANGE - timedelta(days=1))[0] == f"{B}-02"
    assert grid_at(api, B005, CHANGE)[0] == f"{B}-03"


def test_an_address_lookup_at_a_date_names_that_days_grid_and_workers(api: TestClient) -> None:
    address = "临猗县猗氏镇双塔社区双塔北路12号丰林小区2号楼"
    old = api.get("/v1/lookup", params={"address": address, "at": (CHANGE - timedelta(days=1)).isoformat()})
    new = api.get("/v1/lookup", params={"address": address, "at": CHANGE.isoformat()})
    assert old.status_code == new.status_code == 200, old.text
    assert old.json()["grid"]["code"] == f"{A}-02"
    assert new.json()["grid"]["code"] == f"{A}-01"
    grid_workers = ({w["code"] for w in old.json()["workers"]}, {w["code"] for w in new.json()["workers"]})
    assert grid_workers == ({"W02", "W05"}, {"W01", "W05"})  # W05: the community's 网格长, in both
    assert old.headers["X-Boundary-Version"] != new.headers["X-Boundary-Version"]


def test_a_batch_lookup_takes_the_date_too(api: TestClient) -> None:
    answer = api.post("/v1/lookup/batch", params={"at": (CHANGE - timedelta(days=1)).isoformat()},
                      json=[{"lon": B002[0], "lat": B002[1]}, {"lon": B005[0], "lat": B005[1]}])
    assert answer.status_code == 200, answer.text
    assert [a["grid"]["code"] for a in answer.json()] == [f"{A}-02", f"{B}-02"]


@pytest.mark.parametrize("at", ["2026-13-01", "明天", "2026/03/01"])
def test_a_date_that_is_not_a_date_is_a_422_in_chinese(api: TestClient, at: str) -> None:
    answer = api.get("/v1/lookup", params={"lon": B002[0], "lat": B002[1], "at": at})
    assert answer.status_code == 422
    assert "YYYY-MM-DD" in answer.json()["detail"]


def test_a_day_before_the_first_version_has_no_grids(api: TestClient) -> None:
    answer = api.get("/v1/lookup", params={"lon": B002[0], "lat": B002[1],
                                           "at": (START - timedelta(days=1)).isoformat()})
    assert answer.status_code == 422
    assert "早于最早的网格版本" in answer.json()["detail"]


def test_the_index_of_an_earlier_version_is_built_once_and_reused(api: TestClient) -> None:
    versions = api.app.state.versions
    builds = versions.builds
    for _ in range(3):
        grid_at(api, B002, START)
    assert versions.builds == builds + 1


# scheduled and back-dated imports ------------------------------------------------------------------

def test_a_scheduled_import_waits_for_its_day_then_is_put_in_force(two_versions, packages, tmp_path) -> None:
    store = open_test_store(two_versions)
    later = TODAY + timedelta(days=10)
    layers = tiny_layers()  # version C: back to the first layout
    report = import_package(store, write_package(layers, tmp_path / "c"), effective_from=later, label="明年调整")
    assert report.version["scheduled"] and not report.version["live"]
    settings = store_settings(db=two_versions, load_sample_if_empty=False, admin_token=ADMIN)
    with TestClient(create_app(settings)) as client:
        assert grid_at(client, B002)[0] == f"{A}-01"  # today: still version B
        assert grid_at(client, B002, later)[0] == f"{A}-02"  # the day it takes effect: version C
        revision = store.revision()
        assert client.app.state.versions.activate(today=later - timedelta(days=1)) is None
        assert client.app.state.versions.activate(today=later) == report.version["id"]
        assert store.revision() != revision and store.live_boundary_version() == report.version["id"]
        client.app.state.coverage.wait()
        assert grid_at(client, B002)[0] == f"{A}-02"
        assert len(client.get("/v1/versions", headers=STAFF).json()["items"]) == 3  # older versions kept


def test_a_late_record_of_an_older_layout_is_kept_but_does_not_replace_todays(two_versions, tmp_path) -> None:
    store = open_test_store(two_versions)
    revision, live = store.revision(), store.live_boundary_version()
    report = import_package(store, write_package(tiny_layers(), tmp_path / "old"),
                            effective_from=CHANGE - timedelta(days=100), label="补录")
    assert not report.version["live"] and not report.version["scheduled"]
    assert (store.revision(), store.live_boundary_version()) == (revision, live)
    settings = store_settings(db=two_versions, load_sample_if_empty=False, admin_token=ADMIN)
    with TestClient(create_app(settings)) as client:
        assert grid_at(client, B002, CHANGE - timedelta(days=50))[1]["label"] == "补录"


def test_the_admin_api_imports_with_a_date_and_a_bad_date_changes_nothing(api: TestClient, tmp_path) -> None:
    import shutil

    archive = shutil.make_archive(str(tmp_path / "c"), "zip", write_package(tiny_layers(), tmp_path / "c"))
    data = Path(archive).read_bytes()
    before = api.get("/v1/versions", headers=STAFF).json()
    bad = api.post("/v1/admin/import", params={"effective_from": "下个月"}, content=data, headers=STAFF)
    assert bad.status_code == 422 and "effective_from" in bad.json()["detail"]
    assert api.get("/v1/versions", headers=STAFF).json() == before
    later = (TODAY + timedelta(days=5)).isoformat()
    done = api.post("/v1/admin/import", params={"effective_from": later, "label": "计划调整"}, content=data,
                    headers=STAFF)
    assert done.status_code == 200, done.text
    assert done.json()["version"] | {"id": 0} == {"id": 0, "effective_from": later, "label": "计划调整",
                                                  "live": False, "scheduled": True}
    assert grid_at(api, B002)[0] == f"{A}-01"


def test_the_cli_imports_with_effective_from_and_refuses_a_bad_date(tmp_path: Path, packages) -> None:
    db = tmp_path / "cli.gpkg"
    bad = subprocess.run([sys.executable, "-m", "gridmap", "import", str(packages["a"]), "--db", str(db),
                          "--effective-from", "2026-02-30"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--effective-from" in bad.stderr
    assert not db.exists() or open_test_store(db).boundary_versions() == []
    done = subprocess.run([sys.executable, "-m", "gridmap", "import", str(packages["a"]), "--db", str(db),
                           "--effective-from", START.isoformat(), "--label", "初始网格"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"自 {START.isoformat()} 起（现行）" in done.stdout
    assert [(v["effective_from"], v["label"]) for v in open_test_store(db).boundary_versions()] == [
        (START.isoformat(), "初始网格")]


def test_kept_versions_cannot_be_changed_or_deleted(two_versions) -> None:
    for statement in ("UPDATE boundary_versions SET label = 'x'", "DELETE FROM boundary_versions"):
        with pytest.raises(RAW_ERRORS):
            execute_raw(two_versions, statement)
    assert len(open_test_store(two_versions).boundary_versions()) == 2


# the diff ------------------------------------------------------------------------------------------

def test_the_diff_names_added_and_reshaped_grids_moved_buildings_and_workers(api: TestClient) -> None:
    first, second = (v["id"] for v in api.get("/v1/versions", headers=STAFF).json()["items"])
    answer = api.get(f"/v1/versions/{first}/diff/{second}", headers=STAFF)
    assert answer.status_code == 200, answer.text
    diff = answer.json()
    assert [g["code"] for g in diff["grids"]["added"]] == [f"{B}-03"]
    assert diff["grids"]["removed"] == []
    assert sorted(g["code"] for g in diff["grids"]["reshaped"]) == [f"{A}-01", f"{A}-02", f"{B}-02"]
    grown = next(g for g in diff["grids"]["reshaped"] if g["code"] == f"{A}-01")
    assert grown["area_change_m2"] > 0 and grown["area_change_m2"] == pytest.approx(
        grown["area_m2"] - grown["area_before_m2"], abs=0.2)
    moved = {m["code"]: (m["from_grid"], m["to_grid"]) for m in diff["buildings_moved"]}
    assert moved == {"B002": (f"{A}-02", f"{A}-01"), "B005": (f"{B}-02", f"{B}-03")}
    assert diff["households_moved"] == 36 + 2
    why = {w["code"]: w["why"] for w in diff["workers_affected"]}
    assert why == {"W01": "grid_changed", "W02": "grid_changed", "W04": "grid_changed", "W07": "added"}
    assert all("phone" not in w for w in diff["workers_affected"])


def test_the_diff_agrees_with_a_spatial_join_of_the_buildings(api: TestClient, packages) -> None:
    """Moved buildings recomputed with geopandas (within, on the buildings' anchor points)."""
    layers_a, layers_b = tiny_layers(), version_b_layers()
    anchors = layers_a["buildings"].copy()
    anchors.geometry = anchors.geometry.representative_point()
    join_a = gpd.sjoin(anchors, layers_a["grids"][["code", "geometry"]].rename(columns={"code": "grid"}),
                       predicate="within").set_index("code")["grid"]
    join_b = gpd.sjoin(anchors, layers_b["grids"][["code", "geometry"]].rename(columns={"code": "grid"}),
                       predicate="within").set_index("code")["grid"]
    expected = sorted(c for c in join_a.index if join_a[c] != join_b[c])
    first, second = (v["id"] for v in api.get("/v1/versions", headers=STAFF).json()["items"])
    diff = api.get(f"/v1/versions/{first}/diff/{second}", headers=STAFF).json()
    assert sorted(m["code"] for m in diff["buildings_moved"]) == expected


def test_the_diff_as_geojson_and_as_a_map(api: TestClient) -> None:
    first, second = (v["id"] for v in api.get("/v1/versions", headers=STAFF).json()["items"])
    geo = api.get(f"/v1/versions/{first}/diff/{second}", params={"format": "geojson"}, headers=STAFF)
    assert geo.status_code == 200 and geo.headers["content-type"].startswith("application/geo+json")
    changes = sorted(f["properties"]["change"] for f in geo.json()["features"])
    assert changes == ["added", "building_moved", "building_moved", *["reshaped_after"] * 3,
                       *["reshaped_before"] * 3]
    page = api.get("/maps/versions", params={"a": first, "b": second}, headers=STAFF)
    assert page.status_code == 200, page.text
    for text in ("网格版本对比", "新增网格（1）", "调整前边界（3）", "改变所属网格的楼栋（2）", "/static/"):
        assert text in page.text
    assert "cdn" not in page.text.lower()


def test_an_unknown_version_is_a_404(api: TestClient) -> None:
    answer = api.get("/v1/versions/1/diff/999", headers=STAFF)
    assert answer.status_code == 404 and "999" in answer.json()["detail"]


def test_versions_are_for_signed_in_staff(api: TestClient) -> None:
    assert api.get("/v1/versions").status_code == 401
    assert api.get("/v1/versions/1/diff/2").status_code == 401
    browser = api.get("/maps/versions", params={"a": 1, "b": 2}, headers={"Accept": "text/html"},
                      follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"].startswith("/login")
    for role, worker in (("worker", "W01"), ("planner", None), ("dispatcher", None)):
        assert api.get("/v1/versions", headers=token(api, role, worker)).status_code == 200


# incidents keep what they were routed under --------------------------------------------------------

def test_incidents_keep_the_grid_worker_and_version_they_were_routed_under(empty_db, packages) -> None:
    store = open_test_store(empty_db)
    import_package(store, packages["a"], effective_from=START)
    settings = store_settings(db=empty_db, load_sample_if_empty=False, admin_token=ADMIN)
    report = {"category": "infra.streetlight", "description": "路灯不亮", "lon": B002[0], "lat": B002[1]}
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/incidents", json=report)
        assert first.status_code == 201, first.text
        old_version = store.live_boundary_version()
        import_package(store, packages["b"], effective_from=TODAY, label="网格调整")
        client.app.state.coverage.reload()
        second = client.post("/v1/incidents", json=report)
        assert second.status_code == 201, second.text
        kept = client.get(f"/v1/incidents/{first.json()['id']}", headers=STAFF).json()
        new = client.get(f"/v1/incidents/{second.json()['id']}", headers=STAFF).json()
    assert (kept["grid"]["code"], kept["assignee"]["code"], kept["boundary_version"]) == (
        f"{A}-02", "W02", old_version)
    assert (new["grid"]["code"], new["assignee"]["code"], new["boundary_version"]) == (
        f"{A}-01", "W01", store.live_boundary_version())
    assert new["boundary_version"] != old_version


def test_statistics_count_grids_as_they_were_and_compare_a_reshaped_grids_figures(empty_db, packages) -> None:
    """One report in 双塔 grid 01 under each version: ``by_grid`` counts both there, and ``reshaped_grids``
    gives each version's count over that version's area (checked against pyproj's geodesic areas)."""
    from pyproj import Geod

    store = open_test_store(empty_db)
    import_package(store, packages["a"], effective_from=START)
    settings = store_settings(db=empty_db, load_sample_if_empty=False, admin_token=ADMIN)
    report = {"category": "infra.streetlight", "description": "路灯不亮"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/incidents", json={**report, "lon": 110.7475, "lat": 35.14}).status_code == 201
        first = store.live_boundary_version()
        import_package(store, packages["b"], effective_from=TODAY)
        client.app.state.coverage.reload()
        assert client.post("/v1/incidents", json={**report, "lon": B002[0], "lat": B002[1]}).status_code == 201
        stats = client.get("/v1/incidents/stats", headers=STAFF).json()
    assert stats["by_grid"] == {f"{A}-01": 2}
    geod = Geod(ellps="WGS84")
    expected = {first: abs(geod.geometry_area_perimeter(box(110.740, 35.12, 110.755, 35.16))[0]) / 1e6,
                store.live_boundary_version(): abs(geod.geometry_area_perimeter(box(110.740, 35.12, 110.765, 35.16))[0]) / 1e6}
    [grid] = stats["reshaped_grids"]
    assert grid["grid_code"] == f"{A}-01"
    assert {v["version"]: v["incidents"] for v in grid["versions"]} == {v: 1 for v in expected}
    for v in grid["versions"]:
        assert v["area_km2"] == pytest.approx(expected[v["version"]], rel=0.005)
        assert v["per_km2"] == pytest.approx(1 / v["area_km2"], rel=0.01)
