"""Build one year of sample incidents for the sample county: ``geodata/linyi/incidents.csv``.

Deterministic (seeded; a fixed end date), shaped by what the local news of 猗氏镇 reports: street
lights out in the long winter evenings, dry toilets (旱厕改造) in summer, walls tilting in the rainy
season, heating connections (大暖) from November to March, dog and neighbour disputes, cleaning.
Most incidents are closed; the last days hold open ones, and a few older ones are open and overdue.

Only the report and its timeline are written; grids, assignees, police co-handlers and due times
are derived when the history is loaded into a store (``gridmap.incidents.history``), from the
same rules as live intake.

    python geodata/build_incidents.py
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "linyi"
END = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
START = END - timedelta(days=365)
N = 5400
SEED = 20261127

# category: (share, months with extra weight, time limit hours, description templates)
CATEGORIES = {
    "infra.streetlight": (0.17, {11, 12, 1, 2}, 48, ["{place}门口路灯不亮，晚上出行不便", "{place}附近路灯一直闪烁",
                                                     "{road}有两盏路灯坏了，夜里漆黑"]),
    "infra.heating": (0.11, {11, 12, 1, 2, 3}, 48, ["{place}暖气不热，家里有老人", "{place}大暖一直没有接通",
                                                    "{place}供暖管道漏水"]),
    "sanitation.toilet": (0.09, {6, 7, 8}, 72, ["{place}旱厕满溢，气味很大", "{place}旱厕改造后仍未通水",
                                                "{road}公厕无人清掏"]),
    "safety.wall": (0.07, {7, 8, 9}, 24, ["{place}围墙倾斜，有倒塌危险", "{place}外墙瓷砖脱落，砸到车辆",
                                          "{road}旁老墙开裂"]),
    "dispute.dog": (0.08, {5, 6, 7, 8}, 48, ["{place}有人遛狗不拴绳，狗咬伤邻居", "{place}楼下犬只夜间狂吠扰民",
                                             "{place}流浪狗聚集"]),
    "dispute.neighbour": (0.09, set(), 72, ["{place}楼上漏水到楼下，邻里发生争执", "{place}邻居占用楼道堆放杂物",
                                            "{place}噪音纠纷"]),
    "dispute.family": (0.03, set(), 72, ["{place}家庭矛盾，需调解", "{place}赡养老人纠纷"]),
    "sanitation.cleaning": (0.10, {4, 5, 6}, 24, ["{place}垃圾堆放多日无人清运", "{road}路面卫生差",
                                                  "{place}楼道小广告太多"]),
    "infra.road": (0.06, {3, 4, 7, 8}, 72, ["{road}路面塌陷", "{road}下水道井盖缺失", "{place}门口道路积水"]),
    "infra.water": (0.05, {12, 1, 7}, 24, ["{place}停水两天", "{place}自来水管爆裂", "{place}水压太低"]),
    "infra.sign": (0.02, set(), 72, ["{road}路名牌缺失", "{road}交通标志被撞倒"]),
    "safety.access": (0.03, set(), 72, ["{place}单元门禁损坏", "{place}小区大门无人值守"]),
    "safety.fire": (0.02, {12, 1, 2}, 12, ["{place}楼道电动车充电，存在火灾隐患", "{place}消防通道被占用"]),
    "service.elderly": (0.04, set(), 48, ["{place}独居老人需要帮扶", "{place}残疾人申请上门服务"]),
    "service.errand": (0.02, set(), 72, ["{place}老人需要上门代办社保认证", "{place}代办居住证"]),
    "security.public_order": (0.01, set(), 4, ["{place}附近有人聚众滋事", "{road}有可疑人员撬车"]),
    "other.other": (0.01, set(), 120, ["{place}咨询政策", "{place}其他问题"]),
}
SOURCES = (["居民来电", "12345热线", "网格员巡查", "网上"], [0.48, 0.25, 0.22, 0.05])
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡朱郭何罗高林"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国"
COLUMNS = ["category", "description", "lon", "lat", "source", "priority", "reporter_name", "reporter_phone",
           "status", "reported_at", "accepted_at", "dispatched_at", "started_at", "resolved_at", "verified_at",
           "closed_at", "cancelled_at", "rating", "comment", "note"]


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    rng = np.random.default_rng(SEED)
    buildings = gpd.read_file(PACKAGE / "buildings.geojson")
    anchors = shapely.point_on_surface(buildings.geometry.values)
    codes = list(CATEGORIES)
    base = np.array([CATEGORIES[c][0] for c in codes])
    days = np.sort(rng.uniform(0, 365, N))
    rows = []
    for day in days:
        reported = START + timedelta(days=float(day))
        # daytime-heavy hour of day
        reported = reported.replace(hour=int(rng.choice(24, p=_hour_weights())), minute=int(rng.integers(60)))
        weights = base * np.array([2.5 if reported.month in CATEGORIES[c][1] else 1.0 for c in codes])
        weights *= np.array([0.05 if c == "infra.heating" and reported.month not in CATEGORIES[c][1] else 1.0
                             for c in codes])
        category = codes[int(rng.choice(len(codes), p=weights / weights.sum()))]
        _, _, hours, templates = CATEGORIES[category]
        i = int(rng.integers(len(buildings)))
        b = buildings.iloc[i]
        place = b["compound"] or b["name"]
        description = str(rng.choice(templates)).format(place=place, road=b["road"])
        jitter = rng.normal(0, 0.00005, 2)
        lon, lat = anchors[i].x + jitter[0], anchors[i].y + jitter[1]
        source = str(rng.choice(SOURCES[0], p=SOURCES[1]))
        name = SURNAMES[int(rng.integers(len(SURNAMES)))] + "".join(
            GIVEN[int(k)] for k in rng.integers(len(GIVEN), size=int(rng.integers(1, 3))))
        phone = f"1{rng.choice([3, 5, 8])}{rng.integers(0, 10)}{rng.integers(10**7, 10**8)}"
        row = {"category": category, "description": description, "lon": round(lon, 7), "lat": round(lat, 7),
               "source": source, "priority": "urgent" if hours <= 12 or rng.random() < 0.05 else "normal",
               "reporter_name": "" if source == "网格员巡查" else name,
               "reporter_phone": "" if source == "网格员巡查" else phone, "note": "", "rating": "", "comment": ""}
        row.update(_timeline(rng, reported, hours))
        rows.append(row)
    with open(PACKAGE / "incidents.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    statuses = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    print(f"{len(rows)} incidents {iso(START)} .. {iso(END)}: {dict(sorted(statuses.items()))}")


def _hour_weights() -> np.ndarray:
    w = np.array([1, 1, 1, 1, 1, 2, 4, 8, 12, 12, 11, 10, 8, 9, 10, 10, 9, 9, 10, 9, 7, 5, 3, 2], dtype=float)
    return w / w.sum()


def _timeline(rng: np.random.Generator, reported: datetime, hours: int) -> dict[str, str]:
    """Timestamps of each step and the status reached by END."""
    steps: dict[str, datetime | None] = {k: None for k in
                                         ("accepted_at", "dispatched_at", "started_at", "resolved_at",
                                          "verified_at", "closed_at", "cancelled_at")}
    out: dict[str, str] = {"reported_at": iso(reported)}
    t = reported + timedelta(minutes=float(rng.lognormal(np.log(18), 0.8)))
    stale_open = rng.random() < 0.02  # forgotten: accepted and dispatched, never handled
    if rng.random() < 0.03:
        steps["accepted_at"] = t
        cancel = t + timedelta(minutes=float(rng.uniform(5, 120)))
        steps["cancelled_at"] = cancel
        out["note"] = str(rng.choice(["重复上报", "信息不实", "不属于受理范围"]))
        return _finish(out, steps, "cancelled")
    plan = [("accepted_at", "accepted", t)]
    t = t + timedelta(minutes=float(rng.lognormal(np.log(15), 0.7)))
    plan.append(("dispatched_at", "dispatched", t))
    t = t + timedelta(hours=float(rng.lognormal(np.log(hours * 0.12), 0.6)))
    plan.append(("started_at", "in_progress", t))
    late = rng.random() < 0.12
    resolve_h = float(rng.uniform(1.0, 2.2) * hours if late else rng.uniform(0.2, 0.95) * hours)
    plan.append(("resolved_at", "resolved", reported + timedelta(hours=resolve_h)))
    t = reported + timedelta(hours=resolve_h + float(rng.uniform(1, 10)))
    plan.append(("verified_at", "verified", t))
    plan.append(("closed_at", "closed", t + timedelta(hours=float(rng.uniform(1, 24)))))
    status = "reported"
    for column, reached, moment in plan:
        if moment > END or (stale_open and column == "started_at"):
            break
        steps[column] = moment
        status = reached
    if status == "closed" and rng.random() < 0.8:
        out["rating"] = str(int(rng.choice([5, 4, 3, 2, 1], p=[0.55, 0.3, 0.1, 0.03, 0.02])))
        out["comment"] = str(rng.choice(["处理及时", "满意", "态度很好", "", "速度有点慢"]))
    return _finish(out, steps, status)


def _finish(out: dict[str, str], steps: dict[str, datetime | None], status: str) -> dict[str, str]:
    out.update({k: iso(v) for k, v in steps.items()})
    out["status"] = status
    return out


if __name__ == "__main__":
    main()
