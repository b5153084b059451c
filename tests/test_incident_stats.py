"""Supervision and statistics over the sample year, checked against the history file computed here."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pytest

from gridmap import auth
from gridmap.incidents.categories import CATEGORIES
from gridmap.settings import SAMPLE_PACKAGE
from gridmap.store import GeoPackageStore

DONE = {"resolved", "verified", "closed", "cancelled"}


@pytest.fixture(scope="module")
def history(sample_layers) -> pd.DataFrame:
    """The sample history as written by geodata/build_incidents.py, with grids found by a spatial join."""
    frame = pd.read_csv(SAMPLE_PACKAGE / "incidents.csv", dtype=str, keep_default_na=False)
    for column in ("reported_at", "accepted_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column].replace("", None), utc=True)
    frame["due_at"] = frame["reported_at"] + pd.to_timedelta(frame["category"].map(lambda c: CATEGORIES[c].hours),
                                                             unit="h")
    points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"].astype(float),
                                                                 frame["lat"].astype(float)), crs=4326)
    joined = gpd.sjoin(points, sample_layers["grids"][["code", "community_code", "geometry"]], how="left",
                       predicate="intersects")
    joined = joined[~joined.index.duplicated(keep="first")]
    frame["grid_code"] = joined["code"].fillna("")
    frame["community_code"] = joined["community_code"].fillna("")
    frame["rating"] = pd.to_numeric(frame["rating"])
    return frame


@pytest.fixture(scope="module")
def planner(sample_db) -> dict:
    return {"Authorization": f"Bearer {auth.create_token(GeoPackageStore(sample_db), role='planner')[1]}"}


@pytest.fixture(scope="module")
def dispatcher(sample_db) -> dict:
    return {"Authorization": f"Bearer {auth.create_token(GeoPackageStore(sample_db), role='dispatcher')[1]}"}


def hours(delta: pd.Series) -> float:
    return round(float((delta.dropna().dt.total_seconds() / 3600).median()), 2)


@pytest.mark.parametrize(("since", "until"), [(None, None), ("2026-01-01", "2026-07-01"), ("2026-11-01", None)])
def test_statistics_match_an_independent_computation(client, planner, history, since, until) -> None:
    frame = history
    if since:
        frame = frame[frame["reported_at"] >= pd.Timestamp(since, tz="UTC")]
    if until:
        frame = frame[frame["reported_at"] < pd.Timestamp(until, tz="UTC")]
    params = {k: v for k, v in (("since", since), ("until", until)) if v}
    stats = client.get("/v1/incidents/stats", params=params, headers=planner).json()
    assert stats["total"] == len(frame)
    assert stats["by_status"] == frame["status"].value_counts().to_dict()
    assert stats["by_category"] == frame["category"].value_counts().to_dict()
    assert stats["by_grid"] == frame["grid_code"].value_counts().to_dict()
    assert stats["by_community"] == frame["community_code"].value_counts().to_dict()
    assert stats["median_hours_to_first_response"] == hours(frame["accepted_at"] - frame["reported_at"])
    resolved = frame[frame["resolved_at"].notna()]
    assert stats["median_hours_to_resolution"] == hours(resolved["resolved_at"] - resolved["reported_at"])
    assert stats["on_time_rate"] == pytest.approx((resolved["resolved_at"] <= resolved["due_at"]).mean(), abs=1e-4)
    kept = frame[frame["status"] != "cancelled"]
    assert stats["closure_rate"] == pytest.approx((kept["status"] == "closed").mean(), abs=1e-4)
    assert stats["average_rating"] == pytest.approx(frame["rating"].mean(), abs=0.005)


def overdue_now(history: pd.DataFrame) -> set[int]:
    now = pd.Timestamp(datetime.now(UTC))
    late = history[~history["status"].isin(DONE) & (history["due_at"] < now)]
    return set(late.index + 1)  # the history is loaded in file order: ids 1..n


def test_the_overdue_list_names_who_is_responsible(client, dispatcher, history) -> None:
    before = overdue_now(history)
    body = client.get("/v1/incidents", params={"overdue": "true", "limit": 500}, headers=dispatcher).json()
    after = overdue_now(history)
    listed = {i["id"] for i in body["items"]}
    assert listed in (before, after) and body["total"] == len(listed) > 0
    for item in body["items"]:
        assert item["overdue"] and item["supervised"]
        assert item["supervision"]["responsible"]["code"] == item["assignee"]["code"]


def test_stats_need_a_staff_or_planner_token(client, sample_db) -> None:
    assert client.get("/v1/incidents/stats").status_code == 401
    worker = auth.create_token(GeoPackageStore(sample_db), role="worker", worker_code="W0001")[1]
    assert client.get("/v1/incidents/stats", headers={"Authorization": f"Bearer {worker}"}).status_code == 403


def test_listing_filters_and_pages(client, dispatcher, history) -> None:
    params = {"category": "infra.heating", "status": "closed", "limit": 7, "offset": 7}
    body = client.get("/v1/incidents", params=params, headers=dispatcher).json()
    expected = history[(history["category"] == "infra.heating") & (history["status"] == "closed")]
    assert body["total"] == len(expected)
    assert [i["id"] for i in body["items"]] == sorted(expected.index + 1, reverse=True)[7:14]
    group = client.get("/v1/incidents", params={"category": "dispute", "limit": 1}, headers=dispatcher).json()
    assert group["total"] == history["category"].str.startswith("dispute.").sum()
    minx, miny, maxx, maxy = 110.76, 35.13, 110.77, 35.14
    boxed = client.get("/v1/incidents", params={"bbox": f"{minx},{miny},{maxx},{maxy}", "limit": 1},
                       headers=dispatcher).json()
    lon, lat = history["lon"].astype(float), history["lat"].astype(float)
    assert boxed["total"] == ((lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)).sum()
    assert client.get("/v1/incidents", params={"status": "lost"}, headers=dispatcher).status_code == 422
    assert client.get("/v1/incidents", params={"since": "yesterday"}, headers=dispatcher).status_code == 422
