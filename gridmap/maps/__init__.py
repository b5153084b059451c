"""The three maps (dispatcher, worker, planner): which data, which layers, which controls.

Data comes in from the coverage index and the incidents frame; drawing is left to
``gridmap.layers``. Nothing here imports folium or FastAPI.
"""

from gridmap.maps.build import MapContext, MapKind, build_map
from gridmap.maps.cache import MapCache

__all__ = ["MapCache", "MapContext", "MapKind", "build_map"]
