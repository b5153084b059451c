"""The storage interface: every backend (GeoPackage now, PostGIS later) answers the same calls.

Layers go in and come out as (Geo)DataFrames in WGS84 with the columns of ``gridmap.schema``;
replacing layers is one transaction, so a reader sees the old package or the new one, never a mix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

Frame = gpd.GeoDataFrame | pd.DataFrame


class Store(ABC):
    @abstractmethod
    def read_layer(self, name: str) -> Frame:
        """The layer as stored; an empty frame with the schema's columns when it was never imported."""

    def read_layers(self) -> dict[str, Frame]:
        from gridmap.schema import LAYERS

        return {name: self.read_layer(name) for name in LAYERS}

    @abstractmethod
    def replace_layers(self, layers: Mapping[str, Frame], *, revision: str) -> None:
        """Replace every layer of the package atomically; ``revision`` identifies the content."""

    @abstractmethod
    def revision(self) -> str | None:
        """Content hash of the imported package, None when nothing was imported yet."""

    def is_empty(self) -> bool:
        return self.revision() is None

    def close(self) -> None:  # noqa: B027 - backends without resources need nothing
        pass
