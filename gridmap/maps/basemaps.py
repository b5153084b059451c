"""Basemaps from settings: OpenStreetMap (or an intranet tile server), 天地图 with a key, 高德 (GCJ-02)."""

from __future__ import annotations

from gridmap.layers import Basemap
from gridmap.settings import Settings

TIANDITU = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}" \
           "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"


def basemaps(settings: Settings) -> list[Basemap]:
    """In layer-control order; the first one is shown when the page opens."""
    out = [Basemap(settings.tile_name, settings.tile_url, settings.tile_attribution,
                   subdomains=settings.tile_subdomains or None)]
    if settings.tianditu_key:
        key = settings.tianditu_key
        out.append(Basemap(
            "天地图", TIANDITU.format(s="{s}", layer="vec", key=key), "© 天地图 国家地理信息公共服务平台",
            subdomains="01234567", max_zoom=18, labels_url=TIANDITU.format(s="{s}", layer="cva", key=key),
        ))
    if settings.amap_tile_url:
        out.append(Basemap("高德地图（GCJ-02）", settings.amap_tile_url, "© 高德地图 AutoNavi", subdomains="1234",
                           max_zoom=18, gcj02=True))
    return out
