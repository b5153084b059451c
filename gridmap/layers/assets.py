"""Every script, stylesheet, icon and font a map page needs, served by gridmap itself.

The files come from npm packages pinned in ``assets/package.json`` (installed with
``npm ci --prefix assets``; nothing is copied into the repository). folium names the resources
each element needs (``default_js`` / ``default_css``); ``localise`` rewrites those names to files
of the installed packages and drops the ones our maps do not use (jQuery, Bootstrap,
Awesome Markers), so a page never asks a CDN for anything. An unknown name is an error, not a
silent CDN request.

Served pages link ``/static/vendor/<package>/<file>`` (and gridmap's own small runtime,
``/static/gridmap/gridmap.js``); exported files either inline everything (stylesheets with their
images and fonts as data: URIs) or ship the files beside the HTML.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from branca.element import Element, Figure

from gridmap.errors import GridmapError
from gridmap.settings import BUNDLE

STATIC_PREFIX: Final = "/static"
OWN_STATIC: Final = Path(__file__).resolve().parent / "static"
"""gridmap's own map runtime (part of the package): search, filters, legend, GCJ-02 switch."""

FONTAWESOME_CSS: Final = "vendor/@fortawesome/fontawesome-free/css/fontawesome.min.css"
"""Font Awesome's classes; only the solid face (``fa-solid``) is loaded, by ``fontawesome_solid``."""

# folium resource name -> file inside the npm packages (None: not needed by our maps, dropped).
RESOURCES: Final[dict[str, str | None]] = {
    "leaflet": "vendor/leaflet/dist/leaflet.js",
    "leaflet_css": "vendor/leaflet/dist/leaflet.css",
    "jquery": None,
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
    "awesome_markers_font_css": FONTAWESOME_CSS,
    "markerclusterjs": "vendor/leaflet.markercluster/dist/leaflet.markercluster.js",
    "markerclustercss": "vendor/leaflet.markercluster/dist/MarkerCluster.css",
    "markerclusterdefaultcss": "vendor/leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet-heat.js": "vendor/leaflet.heat/dist/leaflet-heat.js",
    "Control.Fullscreen.js": "vendor/leaflet.fullscreen/Control.FullScreen.js",
    "Control.FullScreen.css": "vendor/leaflet.fullscreen/Control.FullScreen.css",
    "Control_locate_min_js": "vendor/leaflet.locatecontrol/dist/L.Control.Locate.min.js",
    "Control_locate_min_css": "vendor/leaflet.locatecontrol/dist/L.Control.Locate.min.css",
    "leaflet_measure_js": "vendor/leaflet-measure/dist/leaflet-measure.cn.js",
    "leaflet_measure_css": "vendor/leaflet-measure/dist/leaflet-measure.css",
    "fontawesome_solid": "vendor/@fortawesome/fontawesome-free/css/solid.min.css",
    "vectorgrid_js": "vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
    "gridmap_js": "gridmap/gridmap.js",
    "gridmap_tiles_js": "gridmap/gridmap-tiles.js",
    "gridmap_css": "gridmap/gridmap.css",
}

REQUIRED_FILES: Final = tuple(sorted({f.removeprefix("vendor/") for f in RESOURCES.values() if f and f.startswith("vendor/")}))


class AssetsMissing(GridmapError):
    status_code = 503
    code = "map_assets_missing"


def check_assets(assets_dir: Path) -> None:
    """Fail with a message that says how to fix it when the npm packages are not installed.

    From a source checkout they lie in ``assets/node_modules``; an installed wheel carries the files
    the pages use in ``gridmap/_bundle/vendor`` (``settings.MAP_ASSETS`` knows which; setup.py copies them).
    """
    missing = [f for f in REQUIRED_FILES if not (assets_dir / f).is_file()]
    if missing:
        fix = ("这个 wheel 构建时没有带上地图前端资源（GRIDMAP_WHEEL_WITHOUT_MAP_ASSETS）：请在源码目录运行 "
               "npm ci --prefix assets 后重新构建 wheel，或用 GRIDMAP_MAP_ASSETS 指向已安装的 node_modules"
               if assets_dir.resolve().is_relative_to(BUNDLE) else "请运行 npm ci --prefix assets")
        raise AssetsMissing(f"地图前端资源未安装（缺少 {missing[0]} 等 {len(missing)} 个文件，目录 {assets_dir}）：{fix}")


def _elements(root: Element) -> Iterator[Element]:
    yield root
    for child in list(root._children.values()):
        yield from _elements(child)


def localise(figure: Figure, prefix: str = STATIC_PREFIX) -> None:
    """Point every element's scripts and stylesheets at ``prefix/<package file>`` (before rendering)."""
    for element in _elements(figure):
        for attr in ("default_js", "default_css"):
            resources = getattr(element, attr, None)
            if not resources:
                continue
            local = []
            for name, url in resources:
                if url.startswith(prefix):
                    local.append((name, url))
                    continue
                if name not in RESOURCES:
                    raise ValueError(f"no local copy for the map resource {name!r} ({url}); add it to RESOURCES")
                if RESOURCES[name]:
                    local.append((name, f"{prefix}/{RESOURCES[name]}"))
            setattr(element, attr, local)


_SCRIPT = re.compile(r'<script src="(?P<url>[^"]+)"></script>')
_LINK = re.compile(r'<link rel="stylesheet" href="(?P<url>[^"]+)"\s*/?>')
_CSS_URL = re.compile(r"url\((?P<q>['\"]?)(?P<url>[^)'\"]+)(?P=q)\)")


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or {
        ".woff2": "font/woff2", ".ttf": "font/ttf", ".svg": "image/svg+xml"
    }.get(path.suffix, "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_css(path: Path) -> str:
    def replace(m: re.Match) -> str:
        url = m["url"]
        if url.startswith(("data:", "#", "http:", "https:")):
            return m.group(0)
        if url.split("?")[0].endswith(".ttf"):
            return 'url("data:,")'  # a TrueType fallback after WOFF2, which every browser running Leaflet 1.9 reads
        target = (path.parent / url.split("?")[0].split("#")[0]).resolve()
        if not target.is_file():
            return m.group(0)
        return f'url("{_data_uri(target)}")'

    return _CSS_URL.sub(replace, path.read_text(encoding="utf-8"))


def _local_file(url: str, prefix: str, assets_dir: Path) -> Path | None:
    """The file behind a local URL: ``<prefix>/vendor/...`` in the npm packages, ``<prefix>/gridmap/...`` ours."""
    for mount, root in (("vendor", assets_dir), ("gridmap", OWN_STATIC)):
        if url.startswith(f"{prefix}/{mount}/"):
            return root / url[len(prefix) + len(mount) + 2 :]
    return None


def inline(html: str, assets_dir: Path, prefix: str = STATIC_PREFIX) -> str:
    """One self-contained file: linked scripts and stylesheets (with their fonts and images) inlined."""

    def script(m: re.Match) -> str:
        path = _local_file(m["url"], prefix, assets_dir)
        if path is None:
            return m.group(0)
        code = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>/* {path.name} */\n{code}\n</script>"

    def link(m: re.Match) -> str:
        path = _local_file(m["url"], prefix, assets_dir)
        if path is None:
            return m.group(0)
        return f"<style>/* {path.name} */\n{_inline_css(path)}\n</style>"

    return _LINK.sub(link, _SCRIPT.sub(script, html))


def ship_beside(html: str, out: Path, assets_dir: Path, prefix: str = STATIC_PREFIX) -> str:
    """Copy the linked files (and the images and fonts their stylesheets name) into ``<name>_files/``."""
    folder = out.with_name(out.stem + "_files")
    used = [m["url"] for m in _SCRIPT.finditer(html)] + [m["url"] for m in _LINK.finditer(html)]
    for url in used:
        path = _local_file(url, prefix, assets_dir)
        if path is None:
            continue
        files = [path.resolve()]
        if path.suffix == ".css":
            for m in _CSS_URL.finditer(path.read_text(encoding="utf-8")):
                if not m["url"].startswith(("data:", "#", "http:", "https:")):
                    files.append((path.parent / m["url"].split("?")[0].split("#")[0]).resolve())
        root = path.resolve().parent if url.startswith(f"{prefix}/gridmap/") else assets_dir.resolve()
        mount = "gridmap" if url.startswith(f"{prefix}/gridmap/") else "vendor"
        for f in files:
            if f.is_file() and f.is_relative_to(root):
                target = folder / mount / f.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
    return html.replace(f'"{prefix}/', f'"{folder.name}/')
