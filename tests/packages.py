"""Hand-made packages for import rules: two communities side by side, each split into two grids.

A module of its own (not conftest) so tests can import it by name: ``conftest`` is ambiguous when the
whole suite runs (tests/planning has one too).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point, box

WGS84 = "EPSG:4326"


def tiny_layers() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Two communities side by side, each split into two grids, a building or two in every grid."""
    a, b = "140821100014", "140821100016"
    regions = gpd.GeoDataFrame(
        {
            "code": ["140821", "140821100", a, b],
            "name": ["临猗县", "猗氏镇", "双塔社区", "葫芦岛社区"],
            "level": ["county", "town", "community", "community"],
            "parent_code": ["", "140821", "140821100", "140821100"],
        },
        geometry=[
            box(110.70, 35.10, 110.84, 35.20),
            box(110.72, 35.11, 110.82, 35.18),
            box(110.74, 35.12, 110.77, 35.16),
            box(110.77, 35.12, 110.80, 35.16),
        ],
        crs=WGS84,
    )
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{a}-01", f"{a}-02", f"{b}-01", f"{b}-02"],
            "name": ["双塔社区第1网格", "双塔社区第2网格", "葫芦岛社区第1网格", "葫芦岛社区第2网格"],
            "community_code": [a, a, b, b],
        },
        geometry=[
            box(110.740, 35.12, 110.755, 35.16),
            box(110.755, 35.12, 110.770, 35.16),
            box(110.770, 35.12, 110.785, 35.16),
            box(110.785, 35.12, 110.800, 35.16),
        ],
        crs=WGS84,
    )
    centres = [(110.7475, 35.14), (110.7625, 35.14), (110.7775, 35.14), (110.7925, 35.14), (110.7925, 35.15)]
    buildings = gpd.GeoDataFrame(
        {
            "code": [f"B{i:03d}" for i in range(1, 6)],
            "name": ["丰林小区1号楼", "丰林小区2号楼", "八家巷小区1号楼", "八家巷小区2号楼", "双塔北路14号"],
            "address": [
                "山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区1号楼",
                "山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区2号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区八家巷3号八家巷小区1号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区八家巷3号八家巷小区2号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区双塔北路14号",
            ],
            "road": ["双塔北路", "双塔北路", "八家巷", "八家巷", "双塔北路"],
            "doorplate": ["12号", "12号", "3号", "3号", "14号"],
            "compound": ["丰林小区", "丰林小区", "八家巷小区", "八家巷小区", ""],
            "building_no": ["1", "2", "1", "2", ""],
            "households": [24, 36, 18, 30, 2],
            "population": [70, 101, 50, 88, 5],
        },
        geometry=[box(x - 0.0003, y - 0.0002, x + 0.0003, y + 0.0002) for x, y in centres],
        crs=WGS84,
    )
    workers = pd.DataFrame(
        {
            "code": ["W01", "W02", "W03", "W04", "W05", "W06"],
            "name": ["张伟", "李娜", "王强", "刘洋", "陈静", "赵敏"],
            "phone": ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005", "13800000006"],
            "role": ["专职网格员", "专职网格员", "专职网格员", "专职网格员", "网格长", "网格长"],
            "grid_code": [f"{a}-01", f"{a}-02", f"{b}-01", f"{b}-02", "", ""],
            "community_code": [a, a, b, b, a, b],
        }
    )
    stations = gpd.GeoDataFrame(
        {
            "code": ["S01", "S02"],
            "name": ["丰林小区党群服务站", "葫芦岛社区党群服务中心"],
            "kind": ["党群服务站", "党群服务中心"],
            "community_code": [a, b],
            "address": ["山西省运城市临猗县猗氏镇双塔社区双塔北路12号", "山西省运城市临猗县猗氏镇葫芦岛社区八家巷1号"],
        },
        geometry=[Point(110.75, 35.13), Point(110.79, 35.15)],
        crs=WGS84,
    )
    precincts = gpd.GeoDataFrame(
        {"code": ["P01"], "name": ["猗氏派出所"], "phone": ["0359-4022110"]},
        geometry=[box(110.72, 35.11, 110.82, 35.18)],
        crs=WGS84,
    )
    units = gpd.GeoDataFrame(
        {
            "code": ["U01"],
            "name": ["临猗二中"],
            "category": ["学校"],
            "resources": ["志愿者;会议室"],
            "community_code": [a],
        },
        geometry=[Point(110.745, 35.15)],
        crs=WGS84,
    )
    return {
        "regions": regions,
        "grids": grids,
        "buildings": buildings,
        "workers": workers,
        "stations": stations,
        "precincts": precincts,
        "units": units,
    }


def write_package(layers: dict[str, gpd.GeoDataFrame | pd.DataFrame], folder: Path) -> Path:
    """Write layers as a package folder: GeoJSON for spatial layers, CSV for tables."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame):
            frame.to_file(folder / f"{name}.geojson", driver="GeoJSON")
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder
