"""The direction of imports, kept by a test: drawing stays in layers/, HTTP stays in api/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gridmap"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downwards(path: Path) -> None:
    names = imports(path)
    top = {n.split(".")[0] for n in names}
    if part(path) not in ("api",):
        assert not top & {"fastapi", "starlette"}, "only gridmap/api may import FastAPI"
        assert not any(n.startswith("gridmap.api") for n in names), "nothing imports gridmap.api"
    if part(path) not in ("layers", "maps"):
        assert "folium" not in top and "branca" not in top, "only gridmap/layers (and maps) may import folium"
