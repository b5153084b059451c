"""The command line, run as a real process: exit codes, stdout for answers, stderr for problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
from stores import open_test_store


def gridmap(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_help_is_available_for_every_command() -> None:
    for command in ("serve", "import", "check", "lookup", "export"):
        result = gridmap(command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, command


def test_import_then_lookup(tmp_path: Path, tiny_package: Path) -> None:
    db = tmp_path / "cli.gpkg"
    result = gridmap("import", tiny_package, "--db", db)
    assert result.returncode == 0, result.stderr
    assert "grids 4" in result.stdout
    answer = gridmap("lookup", "--lon", "110.7625", "--lat", "35.14", "--db", db, "--json")
    assert json.loads(answer.stdout)["grid"]["code"] == "140821100014-02"
    text = gridmap("lookup", "--lon", "110.7625", "--lat", "35.14", "--db", db)
    assert "双塔社区第2网格" in text.stdout and "李娜" in text.stdout


def test_rejected_import_exits_non_zero_lists_problems_and_writes_nothing(tmp_path, tiny_package, make_package):
    db = tmp_path / "cli.gpkg"
    gridmap("import", tiny_package, "--db", db)
    before = open_test_store(db).revision()

    def dup(layers):
        layers["workers"] = pd.concat([layers["workers"], layers["workers"].iloc[:1]], ignore_index=True)

    result = gridmap("import", make_package(dup), "--db", db)
    assert result.returncode == 1
    assert "workers/W01" in result.stderr and "重复" in result.stderr
    assert open_test_store(db).revision() == before


def test_check_validates_without_writing(tmp_path, tiny_package) -> None:
    result = gridmap("check", tiny_package)
    assert result.returncode == 0 and "有效" in result.stdout
    missing = gridmap("check", tmp_path / "missing")
    assert missing.returncode == 1 and "不存在" in missing.stderr


def test_lookup_rejects_impossible_coordinates(tmp_path, tiny_package) -> None:
    db = tmp_path / "cli.gpkg"
    gridmap("import", tiny_package, "--db", db)
    result = gridmap("lookup", "--lon", "35.14", "--lat", "110.76", "--db", db)
    assert result.returncode == 1 and "写反" in result.stderr


def test_export_by_extension(tmp_path, tiny_package) -> None:
    db = tmp_path / "cli.gpkg"
    gridmap("import", tiny_package, "--db", db)
    assert gridmap("export", "grids", "--out", tmp_path / "g.geojson", "--db", db).returncode == 0
    assert len(gpd.read_file(tmp_path / "g.geojson")) == 4
    assert gridmap("export", "buildings", "--out", tmp_path / "b.gpkg", "--db", db).returncode == 0
    assert len(gpd.read_file(tmp_path / "b.gpkg", layer="buildings")) == 5
    assert gridmap("export", "workers", "--out", tmp_path / "w.csv", "--db", db).returncode == 0
    assert len(pd.read_csv(tmp_path / "w.csv")) == 6
    bad = gridmap("export", "nope", "--out", tmp_path / "x.geojson", "--db", db)
    assert bad.returncode == 2 and "未知图层" in bad.stderr
