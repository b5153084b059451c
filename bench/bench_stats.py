"""Statistics and listings at city scale (issue #10): the store's SQL against the pandas path it replaced.

For each size (1×: the sample county's year, 5,400 incidents; 10×; 100×) a fresh store gets the sample
year N times through the store's own bulk insert (copy k: the same timeline, its own grid, community and
assignee codes, positions moved by a lattice step, as ``geodata/build_city.py`` moves a town), then times,
on the same data:

  * the statistics of the whole year, of one quarter and of a period from mid-month to mid-month:
    ``service.statistics`` (monthly counts, indexes) against the pandas computation it replaced (every
    incident of the period into a frame), asserting that both answers are equal, figure for figure;
  * the overdue list, a filtered listing (closed heating incidents) and a worker's grid, 50 a page:
    ``query_incidents`` against the previous release's SQL (count, then rows) on a copy of the store
    with the previous release's four indexes;
  * what a map page's cache key costs: ``incidents_version`` (two look-ups) against fingerprinting
    every incident (``load_incidents`` + ``fingerprint``).

Times are the median of ``--runs`` calls in process (warm caches). Ratios are from one run.

    python bench/bench_stats.py [--sizes 1 10 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics as stats_mod
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gridmap.auth import Actor
from gridmap.bootstrap import load_sample
from gridmap.incidents import service
from gridmap.incidents.service import _frame, _parse_time, iso
from gridmap.incidents.workflow import DONE
from gridmap.maps.incidents import fingerprint, incidents_version, load_incidents
from gridmap.store import GeoPackageStore
from gridmap.store.base import IncidentQuery
from gridmap.store.incident_tables import INDEXES, _row_to_incident, where_sql

ROOT = Path(__file__).resolve().parent.parent

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
"""After the sample year: "open and overdue" is one number at every size."""
QUARTER = ("2026-06-01", "2026-09-01")
RAGGED = ("2026-02-15T12:34:56Z", "2026-07-03T08:00:00Z")
"""Starts and ends inside a month: the ragged ends are read from the incidents, the months between from
the monthly counts."""
LATTICE = (0.135, 0.09)
"""build_city's step between towns, in degrees."""
PREVIOUS_INDEXES = {
    "incidents_status": "(status)", "incidents_grid": "(grid_code)", "incidents_reported": "(reported_at)",
    "incidents_category": "(category, reported_at)",
}
"""The incidents table's indexes before issue #10."""
TARGETS_MS = {"stats": 300, "listing": 50}


# -- the data ---------------------------------------------------------------------------------------------

def sample_store(folder: Path) -> Path:
    db = folder / "sample.gpkg"
    load_sample(GeoPackageStore(db), ROOT / "geodata" / "linyi")
    return db


def _sample_rows(db: Path) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        incidents = [dict(r) for r in conn.execute("SELECT * FROM incidents ORDER BY fid")]
        events: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute("SELECT * FROM incident_events ORDER BY seq"):
            events.setdefault(r["incident_id"], []).append(dict(r))
    finally:
        conn.close()
    return incidents, events


def copies(incidents: list[dict[str, Any]], events: dict[int, list[dict[str, Any]]], first: int, last: int
           ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Copies ``first``..``last - 1`` of the sample year, each in a town of its own."""
    for k in range(first, last):
        dx, dy = LATTICE[0] * (k % 10), LATTICE[1] * (k // 10)
        for row in incidents:
            record = {c: v for c, v in row.items() if c not in ("fid", "geom")}
            record["lon"], record["lat"] = row["lon"] + dx, row["lat"] + dy
            for column in ("grid_code", "community_code", "assignee_code"):
                record[column] = f"{row[column]}.{k:03d}" if row[column] else row[column]
            for column in ("co_handlers", "suggested_units", "duplicate_of", "flags"):
                record[column] = json.loads(row[column])
            yield record, [{c: e[c] for c in e if c not in ("seq", "incident_id")} for e in events[row["fid"]]]


def city_store(base: Path, folder: Path, size: int, sample: tuple) -> tuple[Path, float]:
    """The sample store with ``size - 1`` more copies of its year; (path, seconds to insert them)."""
    db = folder / f"city-{size}.gpkg"
    shutil.copy(base, db)
    store = GeoPackageStore(db)
    started = time.perf_counter()
    if size > 1:
        store.insert_incidents(copies(*sample, 1, size))
    elapsed = time.perf_counter() - started
    store.close()
    return db, elapsed


def previous_release_copy(db: Path, folder: Path) -> Path:
    """The same data with the incidents table indexed as before issue #10."""
    old = folder / f"{db.stem}-previous.gpkg"
    shutil.copy(db, old)
    conn = sqlite3.connect(old)
    try:
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
        for name, columns in PREVIOUS_INDEXES.items():
            conn.execute(f"CREATE INDEX {name} ON incidents{columns}")
        conn.commit()
    finally:
        conn.close()
    return old


# -- the previous paths -----------------------------------------------------------------------------------

def pandas_statistics(store: GeoPackageStore, since: str | None, until: str | None, now: datetime
                      ) -> dict[str, Any]:
    """``gridmap.incidents.service.statistics`` as it was before issue #10, verbatim but for its signature."""
    now_ts = pd.Timestamp(now)
    query = IncidentQuery(since=_parse_time(since, "since"), until=_parse_time(until, "until"))
    f = _frame(store, query)
    resolved = f[f["resolved_at"].notna()]
    not_cancelled = f[f["status"] != "cancelled"]
    open_ = f[~f["status"].isin(DONE)]

    def hours(delta: pd.Series) -> float | None:
        values = delta.dropna().dt.total_seconds() / 3600
        return round(float(values.median()), 2) if len(values) else None

    def counts(column: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in f[column].fillna("").value_counts().sort_index().items()}

    return {
        "period": {"since": query.since, "until": query.until},
        "total": int(len(f)),
        "by_status": counts("status"),
        "by_category": counts("category"),
        "by_community": counts("community_code"),
        "by_grid": counts("grid_code"),
        "median_hours_to_first_response": hours(f["accepted_at"] - f["reported_at"]),
        "median_hours_to_resolution": hours(resolved["resolved_at"] - resolved["reported_at"]),
        "on_time_rate": round(float((resolved["resolved_at"] <= resolved["due_at"]).mean()), 4)
        if len(resolved) else None,
        "closure_rate": round(float((not_cancelled["status"] == "closed").mean()), 4)
        if len(not_cancelled) else None,
        "average_rating": round(float(f["rating"].dropna().mean()), 2) if f["rating"].notna().any() else None,
        "overdue_open": int((open_["due_at"] < now_ts).sum()),
    }


def previous_listing(conn: sqlite3.Connection, query: IncidentQuery, limit: int = 50
                     ) -> tuple[list[dict[str, Any]], int]:
    """``query_incidents`` as it was: the total counted, then the page's rows, newest first."""
    where, params = where_sql(query)
    conn.row_factory = sqlite3.Row
    total = conn.execute(f"SELECT count(*) FROM incidents {where}", params).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM incidents {where} ORDER BY fid DESC LIMIT {limit} OFFSET 0",
                        params).fetchall()
    return [_row_to_incident(r) for r in rows], int(total)


# -- timing -----------------------------------------------------------------------------------------------

def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """(median milliseconds of ``runs`` calls after one untimed call, the last answer)."""
    answer = call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
    return stats_mod.median(times), answer


def index_megabytes(db: Path) -> float:
    conn = sqlite3.connect(db)
    try:
        names = tuple(INDEXES)
        row = conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({', '.join('?' * len(names))})",
                           names).fetchone()
    finally:
        conn.close()
    return (row[0] or 0) / 1e6


def measure(db: Path, old_db: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Per figure: (previous ms, new ms)."""
    store = GeoPackageStore(db)
    store.migrate()
    previous = sqlite3.connect(old_db)  # kept open, as the store keeps its connections
    planner = Actor("planner")
    out: dict[str, tuple[float, float]] = {}
    periods = {"stats, whole year": (None, None), "stats, one quarter": QUARTER,
               "stats, mid-month to mid-month": RAGGED}
    for label, (since, until) in periods.items():
        new_ms, new = timed(lambda s=since, u=until: service.statistics(
            store=store, actor=planner, since=s, until=u, now=NOW), runs)
        old_ms, old = timed(lambda s=since, u=until: pandas_statistics(store, s, u, NOW), max(1, runs // 2))
        assert new == old, f"{label}: the SQL answer differs from pandas"
        out[label] = (old_ms, new_ms)
    rows, _ = store.query_incidents(IncidentQuery(statuses=("closed",)), limit=1)
    grid, community = rows[0]["grid_code"], rows[0]["community_code"]
    grids, _ = store.query_incidents(IncidentQuery(community=community), columns="DISTINCT grid_code")
    listings = {
        "overdue list": IncidentQuery(overdue_at=iso(NOW)),
        "closed heating incidents": IncidentQuery(statuses=("closed",), categories=("infra.heating",)),
        "a worker's grid, closed": IncidentQuery(grids=(grid,), statuses=("closed",)),
        "a community's grids, closed": IncidentQuery(grids=tuple(sorted(g["grid_code"] for g in grids)),
                                                     statuses=("closed",)),
    }
    for label, query in listings.items():
        new_ms, new = timed(lambda q=query: store.query_incidents(q, limit=50), runs)
        old_ms, old = timed(lambda q=query: previous_listing(previous, q), runs)
        assert new == old, label
        out[label] = (old_ms, new_ms)
    previous.close()
    new_ms, _ = timed(lambda: incidents_version(store, NOW), runs)
    old_ms, _ = timed(lambda: fingerprint(load_incidents(store, None, now=NOW)), max(1, runs // 2))
    out["map page cache key"] = (old_ms, new_ms)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = sample_store(folder)
        sample = _sample_rows(base)
        for size in args.sizes:
            db, load_s = city_store(base, folder, size, sample)
            count = size * len(sample[0])
            print(f"{size}×: {count:,} incidents; {size - 1} copies inserted in {load_s:.1f} s "
                  f"({(count - len(sample[0])) / load_s if load_s else 0:,.0f}/s), "
                  f"incident indexes {index_megabytes(db):.0f} MB of {db.stat().st_size / 1e6:.0f} MB", flush=True)
            results[size] = measure(db, previous_release_copy(db, folder), args.runs)
            for label, (old, new) in results[size].items():
                print(f"    {label:30s} previous {old:9.2f} ms   new {new:7.2f} ms   {old / new:9.1f}×",
                      flush=True)
            for path in folder.glob(f"city-{size}*"):
                path.unlink()
    print()
    print("| | " + " | ".join(f"{s}× previous | {s}× new" for s in results) + " |")
    print("|---|" + "---|---|" * len(results))
    for label in next(iter(results.values())):
        cells = " | ".join(f"{results[s][label][0]:,.1f} ms | **{results[s][label][1]:,.2f} ms**" for s in results)
        print(f"| {label} | {cells} |")
    biggest = results[max(results)]
    over = [label for label, (_, new) in biggest.items()
            if new > TARGETS_MS["stats" if label.startswith("stats") else "listing"] and "cache key" not in label]
    if over:
        print(f"over target at {max(results)}×: {', '.join(over)}")


if __name__ == "__main__":
    main()
