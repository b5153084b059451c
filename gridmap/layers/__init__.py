"""Drawing: each module turns data (GeoDataFrames, dicts) into folium layers with Chinese legends,
tooltips and popups. Layers never query the store; nothing outside this package imports folium."""

from gridmap.layers.base import Basemap, Overlay, add_controls, add_overlays, new_map, render

__all__ = ["Basemap", "Overlay", "add_controls", "add_overlays", "new_map", "render"]
