"""Supervision and statistics over the sample year, checked against the history file computed here."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pytest
from stores import open_test_store

from gridmap import auth
from gridmap.incidents import service
from gridmap.incidents.categories import CATEGORIES
from gridmap.settings import SAMPLE_PACKAGE

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
    return {"Authorization": f"Bearer {auth.create_token(open_test_store(sample_db), role='planner')[1]}"}


@pytest.fixture(scope="module")
def dispatcher(sample_db) -> dict:
    return {"Authorization": f"Bearer {auth.create_token(open_test_store(sample_db), role='dispatcher')[1]}"}


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
    answer = client.get("/v1/incidents/stats", params=params, headers=planner)
    assert answer.status_code == 200, answer.text
    stats = answer.json()
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
    worker = auth.create_token(open_test_store(sample_db), role="worker", worker_code="W0001")[1]
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


# -- the statistics are counted in the store: the same figures as pandas at the edges of the definition --

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
"""A fixed moment after the sample year, so that "open and overdue" is one number."""


def median_or_none(delta: pd.Series) -> float | None:
    values = delta.dropna().dt.total_seconds() / 3600
    return round(float(values.median()), 2) if len(values) else None


def reference(frame: pd.DataFrame) -> dict:
    """The statistics of ``frame`` as pandas computes them, field by field."""
    resolved = frame[frame["resolved_at"].notna()]
    kept = frame[frame["status"] != "cancelled"]
    open_ = frame[~frame["status"].isin(DONE)]

    def counts(column: str) -> dict[str, int]:
        return dict(sorted(frame[column].value_counts().items()))

    return {
        "total": len(frame), "by_status": counts("status"), "by_category": counts("category"),
        "by_community": counts("community_code"), "by_grid": counts("grid_code"),
        "median_hours_to_first_response": median_or_none(frame["accepted_at"] - frame["reported_at"]),
        "median_hours_to_resolution": median_or_none(resolved["resolved_at"] - resolved["reported_at"]),
        "on_time_rate": round(float((resolved["resolved_at"] <= resolved["due_at"]).mean()), 4)
        if len(resolved) else None,
        "closure_rate": round(float((kept["status"] == "closed").mean()), 4) if len(kept) else None,
        "average_rating": round(float(frame["rating"].mean()), 2) if frame["rating"].notna().any() else None,
        "overdue_open": int((open_["due_at"] < pd.Timestamp(NOW)).sum()),
        "reshaped_grids": [],  # the sample has one boundary version (tests/test_boundary_versions.py: two)
    }


def in_period(history: pd.DataFrame, since: str | None, until: str | None) -> pd.DataFrame:
    frame = history
    if since:
        frame = frame[frame["reported_at"] >= pd.Timestamp(since, tz="UTC")]
    if until:
        frame = frame[frame["reported_at"] < pd.Timestamp(until, tz="UTC")]
    return frame


def even_month(history: pd.DataFrame) -> tuple[str, str]:
    """A month in which both medians fall between two different durations (even counts)."""
    for start in pd.date_range("2025-12-01", "2026-11-01", freq="MS", tz="UTC"):
        frame = in_period(history, str(start.date()), str((start + pd.offsets.MonthBegin()).date()))
        answered = (frame["accepted_at"] - frame["reported_at"]).dropna().sort_values()
        resolved = (frame["resolved_at"] - frame["reported_at"]).dropna().sort_values()
        middles = [s.iloc[len(s) // 2 - 1: len(s) // 2 + 1] for s in (answered, resolved)]
        if all(len(s) % 2 == 0 and m.nunique() == 2 for s, m in zip((answered, resolved), middles)):
            return str(start.date()), str((start + pd.offsets.MonthBegin()).date())
    raise AssertionError("no month of the sample year has even counts of both durations")


@pytest.mark.parametrize("period", ["whole year", "even counts", "empty", "nothing resolved", "one day",
                                    "ragged months", "from a month on", "until mid-month"])
def test_every_figure_equals_pandas_at_the_edges(sample_db, history, period) -> None:
    since, until = {
        "whole year": (None, None),
        "even counts": even_month(history),
        "empty": ("2030-01-01", "2031-01-01"),
        "nothing resolved": ("2026-11-26T11:00:00Z", None),
        "one day": ("2026-03-15", "2026-03-16"),
        "ragged months": ("2026-02-15T12:34:56Z", "2026-07-03T08:00:00Z"),
        "from a month on": ("2026-09-01", None),
        "until mid-month": (None, "2026-01-17"),
    }[period]
    frame = in_period(history, since, until)
    if period == "nothing resolved":
        assert len(frame) > 0 and frame["resolved_at"].isna().all()
    stats = service.statistics(store=open_test_store(sample_db), actor=auth.Actor("planner"), since=since,
                               until=until, now=NOW)
    assert {k: v for k, v in stats.items() if k != "period"} == reference(frame)


def test_an_empty_period_has_no_rates_and_no_medians(client, planner) -> None:
    stats = client.get("/v1/incidents/stats", params={"since": "2030-01-01"}, headers=planner).json()
    assert stats["total"] == 0 and stats["by_status"] == stats["by_grid"] == {}
    for figure in ("median_hours_to_first_response", "median_hours_to_resolution", "on_time_rate",
                   "closure_rate", "average_rating"):
        assert stats[figure] is None
    assert stats["overdue_open"] == 0


def test_the_store_reads_no_incident_for_the_statistics(sample_db) -> None:
    store = open_test_store(sample_db)
    service.statistics(store=store, actor=auth.Actor("planner"), now=NOW)
    assert store.incident_rows_read == 0
