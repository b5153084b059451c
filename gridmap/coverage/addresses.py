"""Who covers an address: match it against the standard address library, then answer as for a point.

A building- or compound-level match is located at a point inside the matched building and answered
exactly like ``/v1/lookup?lon&lat``; a road-level match for a doorplate the library does not hold, at its
interpolated position (``match.interpolated``, see ``gridmap.address.house_numbers``), or with no point
and no grid when the number lies outside the known range of its side (a road is no place to send anyone).
A community-, town- or county-level match answers with that region's grids and staff (``covered`` stays false: no single grid is known). An ambiguous match still names its best candidate, but says
``ambiguous: true`` and lists the alternatives with their grids, so nobody is sent on a guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from gridmap.address import MatchResult
from gridmap.address.matcher import check_address
from gridmap.coverage.service import Coverage, check_point
from gridmap.coverage.tables import Table, find_column, read_csv_text, where, write_csv
from gridmap.errors import GridmapError, InvalidInput, PayloadTooLarge

MAX_BATCH_ROWS = 100_000
SUMMARY_ROWS = 10_000
"""Above this many rows, an .xlsx answer carries a summary sheet of the rows per match level."""
POINT_LEVELS = ("building", "compound", "road")

Progress = Callable[[int], None]


def _match_block(coverage: Coverage, result: MatchResult) -> dict[str, Any]:
    candidates = []
    for c in result.candidates:
        entry = c.model_dump()
        position = coverage.building_position.get(c.building.code) if c.building else None
        entry["grid_code"] = coverage.building_grid[position] if position is not None else None
        candidates.append(entry)
    return {
        "level": result.level,
        "score": round(result.score, 3),
        "address": result.address,
        "building": result.building.model_dump() if result.building else None,
        "location": result.location.model_dump() if result.location else None,
        "interpolated": result.interpolated,
        "parsed": result.parsed,
        "candidates": candidates,
        "ambiguous": result.ambiguous,
        "unmatched": result.unmatched,
    }


def _grids_of(coverage: Coverage, buildings: list[str]) -> list[dict[str, str]]:
    """Every grid a compound's buildings fall in (a large compound may straddle grids)."""
    codes = {coverage.building_grid[coverage.building_position[b]] for b in buildings if b in coverage.building_position}
    return [coverage.grid_ref(code) for code in sorted(c for c in codes if c)]


def answer_for_match(coverage: Coverage, result: MatchResult) -> dict[str, Any]:
    position = coverage.building_position.get(result.building.code) if result.building else None
    if result.level in POINT_LEVELS and (position is not None or result.location is not None):
        # a building's own point; else (road level) the doorplate's interpolated position, whose grid is
        # the one that point falls in, not a neighbouring building's
        lon, lat = ((float(v) for v in coverage.building_xy[position]) if position is not None
                    else (result.location.lon, result.location.lat))  # type: ignore[union-attr]
        answer = coverage.lookup(lon, lat)
        answer["grids"] = _grids_of(coverage, result.buildings) or ([answer["grid"]] if answer["grid"] else [])
    elif result.level in ("community", "town", "county") and result.code and coverage.region(result.code):
        answer = {"covered": False, "lon": None, "lat": None, "grid": None, **coverage.region_answer(result.code),
                  "station": None, "precinct": None, "nearest_grid": None}
    else:
        answer = {"covered": False, "lon": None, "lat": None, "county": None, "town": None, "community": None,
                  "grid": None, "grids": [], "workers": [], "station": None, "precinct": None, "nearest_grid": None}
    answer["match"] = _match_block(coverage, result)
    return answer


def lookup_address(coverage: Coverage, text: str) -> dict[str, Any]:
    check_address(text)
    if coverage.matcher is None:
        raise InvalidInput("地址库尚未建立")
    return answer_for_match(coverage, coverage.matcher.match(text))


def lookup_batch(coverage: Coverage, items: list[Any], *, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Answers in input order; a bad row gets ``{"row", "error"}`` instead of failing the batch."""
    if len(items) > MAX_BATCH_ROWS:
        raise PayloadTooLarge(f"一次最多查询 {MAX_BATCH_ROWS} 条，收到 {len(items)} 条；请分批提交")
    answers: list[dict[str, Any]] = []
    matched: dict[str, dict[str, Any]] = {}
    for row, item in enumerate(items):
        try:
            answers.append(_one(coverage, item, matched))
        except GridmapError as exc:
            answers.append({"row": row, "error": exc.message})
        if progress is not None:
            progress(1)
    return answers


def _one(coverage: Coverage, item: Any, matched: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"address": item}
    if not isinstance(item, dict):
        raise InvalidInput("每一项应为地址文本，或含 address 或 lon/lat 的对象")
    if item.get("address") is not None:
        text = item["address"]
        if not isinstance(text, str) or text not in matched:
            matched[text] = lookup_address(coverage, text)  # repeated addresses are matched once
        return matched[text]
    lon, lat = item.get("lon"), item.get("lat")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise InvalidInput("缺少地址，或经纬度不是数字")
    check_point(float(lon), float(lat))
    return coverage.lookup(float(lon), float(lat))


CSV_COLUMNS = ["grid_code", "grid_name", "community", "workers", "worker_phones", "match_level", "match_score",
               "ambiguous", "error"]


def _csv_fields(answer: dict[str, Any]) -> list[Any]:
    if "error" in answer and "match" not in answer:
        return ["", "", "", "", "", "none", 0, "", answer["error"]]
    match = answer.get("match", {})
    grid = answer.get("grid") or {}
    return [
        grid.get("code", ""),
        grid.get("name", ""),
        (answer.get("community") or {}).get("name", ""),
        "、".join(w["name"] for w in answer["workers"]),
        "、".join(w["phone"] for w in answer["workers"]),
        match.get("level", "point"),
        match.get("score", ""),
        "true" if match.get("ambiguous") else "false",
        "",
    ]


def read_csv_rows(text: str, *, column: str | None = None) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV text that has an address column (found by name, or ``column``)."""
    table = read_csv_text(text, max_rows=MAX_BATCH_ROWS)
    find_column(table.header, column)
    return table.header, table.rows


def lookup_table(coverage: Coverage, table: Table, *, column: str | None = None,
                 progress: Progress | None = None) -> tuple[list[str], list[list[Any]], Counter]:
    """The input's columns kept, the answer's columns (``CSV_COLUMNS``) appended; plus a summary by level.

    A row whose address cell is empty is kept, with its row and column named in its ``error`` cell (a sheet
    of thousands of rows is not refused for one blank); the other rows are answered as usual.
    """
    index = find_column(table.header, column)
    cells = [row[index].strip() if index < len(row) else "" for row in table.rows]
    found = lookup_batch(coverage, [cell for cell in cells if cell], progress=progress)
    answers: list[dict[str, Any]] = []
    given = iter(found)
    for position, cell in enumerate(cells):
        answers.append(next(given) if cell else
                       {"row": position, "error": f"{where(table, position, index)}：地址列为空"})
    width = len(table.header)
    out = [row + [""] * (width - len(row)) + _csv_fields(answer) for row, answer in zip(table.rows, answers)]
    return table.header + CSV_COLUMNS, out, summarise(answers)


def lookup_csv(coverage: Coverage, text: str, *, column: str | None = None,
               progress: Progress | None = None) -> tuple[str, Counter]:
    """CSV in, CSV out: the input columns, then grid, workers and match columns; plus a summary.

    Cells that Excel would read as formulas are quoted (see ``gridmap.coverage.tables.safe_cell``).
    """
    table = read_csv_text(text, max_rows=MAX_BATCH_ROWS)
    header, rows, summary = lookup_table(coverage, table, column=column, progress=progress)
    return write_csv(header, rows).decode("utf-8-sig"), summary


SUMMARY_LEVELS = ("building", "compound", "road", "community", "town", "county", "none", "point", "invalid")
"""Match levels in the order summaries list them (``point``: rows given as coordinates; ``invalid``: refused)."""


def summary_rows(summary: Counter, total: int) -> list[tuple[str, Any]]:
    """The summary sheet of an ``.xlsx`` answer: rows, then rows per match level, then ambiguous rows."""
    return [("行数", total), *((f"级别 {level}", summary.get(level, 0)) for level in SUMMARY_LEVELS),
            ("有歧义", summary.get("ambiguous", 0))]


def levels_header(summary: Counter) -> str:
    """``building=…;compound=…;…;none=…`` for the ``X-Match-Levels`` header."""
    return ";".join(f"{level}={summary.get(level, 0)}" for level in SUMMARY_LEVELS)


def summarise(answers: Iterable[dict[str, Any]]) -> Counter:
    summary: Counter = Counter()
    for answer in answers:
        match = answer.get("match")
        if match is None:
            summary["invalid" if "error" in answer else "point"] += 1
            continue
        summary[match["level"]] += 1
        summary["ambiguous"] += bool(match["ambiguous"])
    return summary
