"""A GeoPackage for GIS users: every spatial layer, and incidents as anonymised points.

The live store holds residents' names, phones, descriptions and addresses next to the layers; it
is never the file to hand over. This export is: its incidents carry exactly the planner's fields
(``gridmap.access.PLANNER_INCIDENT_FIELDS``: category, status, times, grid, community, priority),
cut and placed by the same policy that draws the planner's map (sensitive categories rounded to
about 100 m, incidents outside every grid left out), and no table of people (workers) is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from gridmap import access
from gridmap.auth import Actor
from gridmap.coverage.service import Coverage
from gridmap.incidents.service import incidents_frame
from gridmap.schema import LAYERS
from gridmap.store import files
from gridmap.store.base import Store

INCIDENT_LAYER = "incidents"


@dataclass
class ExportReport:
    path: Path
    counts: dict[str, int] = field(default_factory=dict)


def anonymised_incidents(store: Store, coverage: Coverage) -> gpd.GeoDataFrame:
    """Incident points as a planner may see them: no description, address, reporter or assignee."""
    points = access.incidents_for_map(incidents_frame(store, coverage), actor=Actor("planner"), coverage=coverage)
    points = points[[*access.PLANNER_INCIDENT_FIELDS, points.geometry.name]].copy()
    points["id"] = points["id"].astype("int64")
    return points.sort_values("id").reset_index(drop=True)


def spatial_layers(store: Store) -> dict[str, gpd.GeoDataFrame]:
    """Every spatial layer of the package; an optional layer only when it has features."""
    out = {}
    for name, layer in LAYERS.items():
        if not layer.spatial:
            continue  # workers: a table of people, not a map layer
        frame = store.read_layer(name)
        if len(frame) or not layer.optional:
            out[name] = frame
    return out


def export_package(store: Store, out: Path) -> ExportReport:
    """Write the GIS export to ``out`` (a .gpkg), replacing it atomically; the file is 0600 like
    every file gridmap writes with incident data, to be shared on purpose by whoever runs it."""
    layers = store.read_layers()
    coverage = Coverage.from_layers(layers, revision=store.revision())
    frames: dict[str, gpd.GeoDataFrame] = {**spatial_layers(store), INCIDENT_LAYER: anonymised_incidents(store, coverage)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))  # 0700: nobody sees it half written
    try:
        tmp = work / out.name
        for name, frame in frames.items():
            frame.to_file(tmp, layer=name, driver="GPKG")
        os.chmod(tmp, files.PRIVATE_MODE)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files.sync_directory(out.parent)
    return ExportReport(out, {name: len(frame) for name, frame in frames.items()})
