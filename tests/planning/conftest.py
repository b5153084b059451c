"""Fixtures for station planning: the sample county's planner, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridmap.coverage.service import Coverage
from gridmap.planning.service import Planner
from gridmap.store import GeoPackageStore


@pytest.fixture(scope="session")
def sample_coverage(sample_layers, sample_db: Path) -> Coverage:
    return Coverage.from_layers(sample_layers, revision=GeoPackageStore(sample_db).revision())


@pytest.fixture(scope="session")
def planner(sample_coverage: Coverage, sample_layers) -> Planner:
    return Planner(sample_coverage, roads=sample_layers["roads"], candidates=sample_layers.get("candidates"))
