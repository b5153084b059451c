"""A year of co-governance in the sample county (issue #13 §6): registrations, teams, needs, projects,
activities, meetings with mediation, and patrols, consistent with the figures of 临猗县's own report
on 猗氏镇's communities:

- 72 county units and 1,969 in-service Party members registered at communities (双报到);
- 57 Party-member service teams working from 小区党群服务站;
- 86 activities (环境整治, 政策宣讲, 隐患排查, 爱心公益, 志愿服务, 文体活动: "80+");
- 28 practical projects done (道路亮化, 老旧小区改造, 大暖安装, 隐患修复, 环境美化), including those the report
  names: 临猗二中 lights 八家巷小区, 县果业服务中心 fills the dry toilets of 法院小区, 县住建局 fixes the tilting
  walls of 同济巷小区 and 光荣小区; the heating of 圣慧小区 and 晟康小区 (124 households with 壕村) under way;
- 28 disputes settled through mediation, 12 of them in 丰林小区 (all mediated), and a few not (yet);
- residents' councils and quarterly joint meetings; grid workers' patrols every two weeks.

Names and phone numbers of members are generated and belong to nobody. Deterministic (seeded RNG, the
incidents' fixed year 2025-11-27 .. 2026-11-27): running it twice gives the same file. Reads the package
in ``geodata/linyi/``, writes ``geodata/linyi/cogov.json`` (records per store kind, each with the time
it was recorded, ``at``); ``gridmap.cogov.sample.load_cogov_sample`` puts them in a store.

    python geodata/build_cogov.py
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "linyi"
OUT = PACKAGE / "cogov.json"
SEED = 20261205
START = datetime(2025, 11, 27, tzinfo=UTC)
END = datetime(2026, 11, 27, tzinfo=UTC)
"""The incidents' year (geodata/build_incidents.py): the report over [START, END) reproduces the figures."""

UNITS, MEMBERS, TEAMS, ACTIVITIES, PROJECTS_DONE, MEDIATED = 72, 1969, 57, 86, 28, 28
FENGLIN_DISPUTES = 12
ACTIVITY_TYPES = ("环境整治", "政策宣讲", "隐患排查", "爱心公益", "志愿服务", "文体活动")
ACTIVITY_WEIGHTS = (0.26, 0.2, 0.16, 0.12, 0.16, 0.1)
SKILLS = ("法律咨询", "医疗", "维修", "教育", "心理疏导", "电工", "建筑", "文艺", "体育", "政策宣讲")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅文斌海燕宁晓波鹏辉亮飞颖雪琳凤琴"
PROJECT_KINDS = (("道路亮化", "安装路灯"), ("老旧小区改造", "改造老旧管网"), ("隐患修复", "修复隐患"),
                 ("环境美化", "绿化美化"), ("供暖", "大暖入户"))
NAMED_PROJECTS = (
    ("八家巷小区", "道路亮化", "八家巷小区安装路灯", "临猗二中", 40, "completed"),
    ("法院小区", "老旧小区改造", "法院小区旱厕填埋改水冲", "县果业服务中心", 56, "completed"),
    ("同济巷小区", "隐患修复", "同济巷小区沉降墙体加固", "县住建局", 38, "completed"),
    ("光荣小区", "隐患修复", "光荣小区沉降墙体加固", "县住建局", 26, "completed"),
    ("圣慧小区", "供暖", "壕村、圣慧小区、晟康小区大暖入户", "县住建局", 124, "in_progress"),
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def day_at(rng: np.random.Generator, start: datetime = START, end: datetime = END) -> datetime:
    """A working-hours moment (China time 08:00-18:00, as UTC) on a random day in [start, end)."""
    days = (end - start).days
    day = start + timedelta(days=int(rng.integers(0, days)))
    return day.replace(hour=0, minute=0) + timedelta(hours=int(rng.integers(0, 10)), minutes=int(rng.integers(0, 60)))


def china_day(moment: datetime) -> str:
    return (moment + timedelta(hours=8)).date().isoformat()


def load() -> dict[str, Any]:
    regions = gpd.read_file(PACKAGE / "regions.geojson")
    communities = regions[regions["level"] == "community"].sort_values("code")
    grids = gpd.read_file(PACKAGE / "grids.geojson").sort_values("code")
    buildings = gpd.read_file(PACKAGE / "buildings.geojson").sort_values("code")
    points = buildings.set_geometry(buildings.geometry.representative_point())
    joined = gpd.sjoin(points, grids[["code", "community_code", "geometry"]].rename(columns={"code": "grid_code"}),
                       predicate="within", how="left")
    buildings = buildings.assign(grid_code=joined["grid_code"].to_numpy(), community_code=joined["community_code"].to_numpy(),
                                 lon=points.geometry.x.round(7).to_numpy(), lat=points.geometry.y.round(7).to_numpy())
    return {
        "communities": communities,
        "grids": grids,
        "buildings": buildings,
        "units": gpd.read_file(PACKAGE / "units.geojson").sort_values("code"),
        "stations": gpd.read_file(PACKAGE / "stations.geojson").sort_values("code"),
        "workers": pd.read_csv(PACKAGE / "workers.csv", dtype=str, keep_default_na=False).sort_values("code"),
    }


def build() -> dict[str, list[dict[str, Any]]]:
    rng = np.random.default_rng(SEED)
    d = load()
    names = dict(zip(d["communities"]["code"], d["communities"]["name"]))
    community_codes = sorted(names)
    units = d["units"]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "unit_registration", "member", "team", "need", "project", "activity", "meeting", "patrol")}

    # 双报到: every unit at its own community, a third of them at a second one too (72 distinct units)
    for code, name, community in zip(units["code"], units["name"], units["community_code"]):
        served = [community]
        if rng.random() < 0.33:
            served.append(str(rng.choice([c for c in community_codes if c != community])))
        for c in served:
            at = day_at(rng, START, START + timedelta(days=60))
            out["unit_registration"].append({"at": iso(at), "record": {
                "key": f"{code}@{c}", "unit_code": code, "unit_name": name, "community_code": c,
                "community_name": names[c], "registered_on": china_day(at), "contact": None, "status": "active"}})

    # members, placed in communities in proportion to their households
    households = d["buildings"].groupby("community_code")["households"].sum().reindex(community_codes).to_numpy()
    share = households / households.sum()
    homes = rng.choice(community_codes, size=MEMBERS, p=share)
    grids_of = d["grids"].groupby("community_code")["code"].apply(list).to_dict()
    members_of: dict[str, list[str]] = {c: [] for c in community_codes}
    for i, community in enumerate(homes, start=1):
        code = f"M{i:05d}"
        at = day_at(rng, START, START + timedelta(days=300))
        name = str(rng.choice(list(SURNAMES))) + "".join(rng.choice(list(GIVEN), size=int(rng.integers(1, 3))))
        phone = "1" + str(rng.choice(["35", "38", "39", "58", "77", "86"])) + f"{int(rng.integers(0, 10**8)):08d}"
        skills = sorted(set(rng.choice(SKILLS, size=int(rng.integers(1, 3)), replace=False).tolist()))
        out["member"].append({"at": iso(at), "record": {
            "key": code, "name": name, "phone": phone, "unit_code": str(rng.choice(units["code"])),
            "community_code": str(community), "community_name": names[str(community)],
            "grid_code": str(rng.choice(grids_of[str(community)])), "skills": skills,
            "registered_on": china_day(at), "status": "active"}})
        members_of[str(community)].append(code)

    # 57 teams at 57 of the 64 compound stations
    stations = d["stations"][d["stations"]["kind"] == "党群服务站"]
    chosen = stations.iloc[np.sort(rng.choice(len(stations), size=TEAMS, replace=False))]
    for i, (station, station_name, community) in enumerate(
            zip(chosen["code"], chosen["name"], chosen["community_code"]), start=1):
        pool = members_of[community]
        picked = sorted(rng.choice(pool, size=min(len(pool), int(rng.integers(6, 13))), replace=False).tolist())
        out["team"].append({"at": iso(day_at(rng, START, START + timedelta(days=120))), "record": {
            "key": f"T{i:04d}", "name": f"{station_name.removesuffix('党群服务站')}党员先锋服务队",
            "community_code": community, "community_name": names[community], "station_code": station,
            "members": picked, "status": "active"}})

    # needs and projects: the named ones, then others of the report's kinds up to 28 done
    buildings = d["buildings"]
    unit_code = dict(zip(units["name"], units["code"]))
    compound_community = buildings[buildings["compound"] != ""].groupby("compound")["community_code"].first().to_dict()
    compound_households = buildings.groupby("compound")["households"].sum().to_dict()
    plans: list[tuple[str, str, str, str, int, str]] = [
        (compound_community[c], kind, title, unit_code[unit], households, status)
        for c, kind, title, unit, households, status in NAMED_PROJECTS]
    compounds = sorted(c for c in compound_community if c not in {p[0] for p in NAMED_PROJECTS})
    done = sum(1 for p in plans if p[5] == "completed")
    for compound in rng.choice(compounds, size=PROJECTS_DONE - done + 3, replace=False):
        kind, verb = PROJECT_KINDS[int(rng.integers(0, len(PROJECT_KINDS) - 1))]
        community = compound_community[compound]
        local = units[units["community_code"] == community]["code"].tolist() or units["code"].tolist()
        status = "completed" if done < PROJECTS_DONE else ("in_progress" if len(plans) % 2 else "planned")
        done += status == "completed"
        plans.append((community, kind, f"{compound}{verb}", str(rng.choice(local)),
                       int(min(compound_households.get(compound, 30), 200)), status))
    for n, (community, kind, title, lead, households, status) in enumerate(plans, start=1):
        collected = day_at(rng, START, START + timedelta(days=200))
        created = collected + timedelta(days=int(rng.integers(7, 30)))
        evaluated = status == "completed" and rng.random() < 0.6
        out["need"].append({"at": iso(collected), "record": {
            "title": title.replace("安装", "缺少").replace("改造", "需改造") if status != "completed" else title,
            "category": kind, "description": title, "households": households, "source": "议事协商",
            "community_code": community, "community_name": names[community], "grid_code": None,
            "lon": None, "lat": None, "address": None, "match_level": None,
            "status": "done" if status == "completed" else "in_project", "incident_id": None, "project_id": n,
            "reason": None, "note": None, "collected_at": iso(collected)}})
        out["project"].append({"at": iso(created), "record": {
            "title": title, "community_code": community, "community_name": names[community], "needs": [n],
            "resources": [], "lead_unit_code": lead, "planned_start": china_day(created),
            "planned_end": china_day(created + timedelta(days=60)), "households": households,
            "households_benefited": households if status == "completed" else None,
            "status": "evaluated" if evaluated else status, "rating": int(rng.integers(4, 6)) if evaluated else None,
            "note": None}})
    for status in ("accepted", "accepted", "collected", "collected", "rejected"):
        community = str(rng.choice(community_codes))
        collected = day_at(rng, START + timedelta(days=200))
        kind = PROJECT_KINDS[int(rng.integers(0, len(PROJECT_KINDS)))][0]
        out["need"].append({"at": iso(collected), "record": {
            "title": f"{names[community]}{kind}需求", "category": kind, "description": "居民议事会上提出",
            "households": int(rng.integers(10, 80)), "source": "居民提出", "community_code": community,
            "community_name": names[community], "grid_code": None, "lon": None, "lat": None, "address": None,
            "match_level": None, "status": status, "incident_id": None, "project_id": None,
            "reason": "不属于社区可协调事项，已转12345热线" if status == "rejected" else None, "note": None,
            "collected_at": iso(collected)}})

    # 86 activities
    for _ in range(ACTIVITIES):
        community = str(rng.choice(community_codes))
        kind = str(rng.choice(ACTIVITY_TYPES, p=ACTIVITY_WEIGHTS))
        at = day_at(rng)
        serving = sorted(rng.choice(members_of[community], size=int(rng.integers(3, 15)), replace=False).tolist())
        local = d["units"][d["units"]["community_code"] == community]["code"].tolist()
        station = d["stations"][d["stations"]["community_code"] == community]["code"].tolist()
        out["activity"].append({"at": iso(at), "record": {
            "type": kind, "community_code": community, "station_code": str(rng.choice(station)), "date": china_day(at),
            "title": f"{names[community]}{kind}", "members": serving,
            "units": sorted(rng.choice(local, size=min(len(local), int(rng.integers(1, 3))), replace=False).tolist()),
            "hours": float(rng.choice([1.5, 2.0, 2.5, 3.0, 4.0])), "beneficiaries": int(rng.integers(20, 300)),
            "need_id": None, "project_id": None}})

    # meetings: a quarterly joint meeting per community, residents' councils, mediation
    for community in community_codes:
        for quarter in range(4):
            at = START + timedelta(days=91 * quarter + int(rng.integers(20, 80)), hours=1)
            out["meeting"].append({"at": iso(at), "record": {
                "community_code": community, "compound": None, "meeting_kind": "季度共商会", "date": china_day(at),
                "attendees": [f"共建单位代表{i}" for i in range(1, 6)],
                "items": [{"need_id": None, "incident_id": None, "topic": "本季度居民需求与共建项目",
                           "decision": "确定下季度办理事项", "outcome": None}]}})
    for n, (community, _kind, title, *_rest) in enumerate(plans, start=1):
        at = datetime.fromisoformat(out["need"][n - 1]["record"]["collected_at"]) + timedelta(days=3)
        out["meeting"].append({"at": iso(at), "record": {
            "community_code": community, "compound": title[:5], "meeting_kind": "居民议事会", "date": china_day(at),
            "attendees": ["居民代表", "网格员", "共建单位代表"],
            "items": [{"need_id": n, "incident_id": None, "topic": title, "decision": "列入项目清单", "outcome": None}]}})
    fenglin = compound_community["丰林小区"]
    disputes = ["邻里漏水", "楼道堆物", "停车占位", "宠物扰民", "噪音扰民", "物业费", "装修噪音", "空调外机滴水"]
    elsewhere = [c for c in community_codes if c != fenglin]
    pairs = (MEDIATED - FENGLIN_DISPUTES) // 2
    sittings = [(fenglin, "丰林小区", 2, 0)] * (FENGLIN_DISPUTES // 2)
    sittings += [(str(c), None, 2, 0) for c in rng.choice(elsewhere, size=pairs, replace=False)]
    sittings += [(str(c), None, 0, 1) for c in rng.choice(elsewhere, size=3, replace=False)]
    for community, compound, resolved, unresolved in sittings:
        at = day_at(rng)
        items = [{"need_id": None, "incident_id": None, "topic": f"{rng.choice(disputes)!s}纠纷",
                  "decision": "经调解双方达成一致" if i < resolved else "双方未达成一致，择期再调",
                  "outcome": "resolved" if i < resolved else "unresolved"} for i in range(resolved + unresolved)]
        out["meeting"].append({"at": iso(at), "record": {
            "community_code": community, "compound": compound, "meeting_kind": "调解", "date": china_day(at),
            "attendees": ["调解委员会"], "items": items}})

    # patrols: every full-time grid worker every two weeks, walking past a few of their grid's buildings
    geod = pyproj.Geod(ellps="WGS84")
    by_grid = {g: frame for g, frame in buildings.groupby("grid_code")}
    workers = d["workers"][d["workers"]["role"] == "专职网格员"]
    for code, grid, community in zip(workers["code"], workers["grid_code"], workers["community_code"]):
        mine = by_grid[grid]
        first = int(rng.integers(0, 14))
        for day in range(first, (END - START).days, 14):
            started = START + timedelta(days=day, hours=int(rng.integers(0, 8)), minutes=int(rng.integers(0, 60)))
            visited = mine.iloc[np.sort(rng.choice(len(mine), size=min(len(mine), int(rng.integers(3, 9))), replace=False))]
            coords = [[float(x), float(y)] for x, y in zip(visited["lon"], visited["lat"])]
            if len(coords) < 2:
                coords = coords * 2
            distance = sum(geod.inv(a[0], a[1], b[0], b[1])[2] for a, b in pairwise(coords))
            ended = started + timedelta(minutes=40 + 10 * len(coords))
            out["patrol"].append({"at": iso(ended), "record": {
                "worker_code": code, "community_code": community, "grid_code": grid,
                "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "date": china_day(started), "track": {"type": "LineString", "coordinates": coords},
                "distance_m": round(distance, 1), "outside_m": 0.0, "flags": [],
                "visits": [{"building_code": b, "households_visited": int(min(h, rng.integers(2, 8))), "note": None}
                           for b, h in zip(visited["code"], visited["households"])],
                "findings": []}})
    return out


def check(data: dict[str, list[dict[str, Any]]]) -> None:
    """The figures the county's report gives, counted from what is written."""
    def within(r: dict[str, Any], field: str) -> bool:
        return START.date().isoformat() <= r["record"][field][:10] < END.date().isoformat()
    assert len({r["record"]["unit_code"] for r in data["unit_registration"]}) == UNITS
    assert len(data["member"]) == MEMBERS and len(data["team"]) == TEAMS
    assert len(data["activity"]) == ACTIVITIES and all(within(r, "date") for r in data["activity"])
    done = [r for r in data["project"] if r["record"]["status"] in ("completed", "evaluated")]
    assert len(done) == PROJECTS_DONE and all(START <= datetime.fromisoformat(r["at"][:19] + "+00:00") < END
                                              for r in data["project"])
    mediation = [i for r in data["meeting"] if r["record"]["meeting_kind"] == "调解" and within(r, "date")
                 for i in r["record"]["items"]]
    assert sum(i["outcome"] == "resolved" for i in mediation) == MEDIATED
    fenglin = [i for r in data["meeting"] if r["record"]["compound"] == "丰林小区" and r["record"]["meeting_kind"] == "调解"
               for i in r["record"]["items"]]
    assert len(fenglin) == FENGLIN_DISPUTES and all(i["outcome"] == "resolved" for i in fenglin)
    assert all(within(r, "date") for r in data["patrol"])


def main() -> None:
    data = build()
    check(data)
    OUT.write_text(json.dumps({"period": {"since": START.date().isoformat(), "until": END.date().isoformat()},
                               "records": data}, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n",
                   encoding="utf-8")
    counts = Counter({k: len(v) for k, v in data.items()})
    print(f"{OUT.relative_to(HERE.parent)}: {dict(counts)} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
