"""The boundary layers of one version, as the blob a store keeps (``gridmap.store.version_tables``).

JSON of the schema's fields with geometries as WKB in hex, compressed: plain data any later release can
read back (no pickle: a blob read from the database never runs code), and a fraction of the layers' size.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import WGS84
from gridmap.package import Frame
from gridmap.schema import LAYERS

BOUNDARY_LAYERS: Final = ("grids", "workers")
"""What a version holds: the grids, and the workers placed in them (a redraw moves workers too).
Every other layer has no dates: it is the same for every version."""
COMPRESSION_LEVEL: Final = 6


def encode(layers: Mapping[str, Frame]) -> bytes:
    """The boundary layers of ``layers`` as one compressed blob."""
    out: dict[str, dict] = {}
    for name in BOUNDARY_LAYERS:
        layer, frame = LAYERS[name], layers[name]
        entry: dict = {"columns": {f: [_plain(v) for v in frame[f].tolist()] for f in layer.field_names}}
        if layer.spatial:
            entry["wkb"] = [blob.hex() for blob in shapely.to_wkb(np.asarray(frame.geometry.values), byte_order=1)]
        out[name] = entry
    return zlib.compress(json.dumps(out, ensure_ascii=False).encode(), COMPRESSION_LEVEL)


def decode(blob: bytes) -> dict[str, Frame]:
    """The boundary layers kept in ``blob``, with the schema's columns and types."""
    data = json.loads(zlib.decompress(blob))
    layers: dict[str, Frame] = {}
    for name in BOUNDARY_LAYERS:
        layer, entry = LAYERS[name], data[name]
        frame = pd.DataFrame({f: entry["columns"][f] for f in layer.field_names}, columns=layer.field_names)
        if layer.spatial:
            geoms = shapely.from_wkb([bytes.fromhex(h) for h in entry["wkb"]])
            frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=WGS84)
        layers[name] = frame
    return layers


def _plain(value: object) -> object:
    """numpy scalars as Python ones (json refuses ``np.int64``)."""
    return value.item() if isinstance(value, np.generic) else value
