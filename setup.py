"""Build hook: a wheel that carries everything ``gridmap serve`` needs (issue #11, "One wheel to deploy").

pyproject.toml holds the metadata; this file only extends setuptools' ``build_py`` so that the wheel's
build folder (never the source tree) also gets, under ``gridmap/_bundle/``:

- ``linyi/``: the sample county (``geodata/linyi``) that ``gridmap serve`` loads into an empty store;
- ``vendor/``: the map pages' scripts, stylesheets, images and fonts, taken from the npm packages pinned
  in ``assets/package.json`` as installed by ``npm ci --prefix assets``: for every file the pages link
  (``RESOURCES`` in gridmap/layers/assets.py) the folder it lies in, the fonts and images its stylesheet
  names, and each package's package.json and licence. Nothing from node_modules enters the repository.

gridmap/settings.py looks there when gridmap runs from an installed wheel, and at ``geodata/`` and
``assets/node_modules/`` in a source checkout; an editable install copies nothing.

A build without assets/node_modules, or with packages at other versions than assets/package.json pins,
stops and says how to fix it. ``GRIDMAP_WHEEL_WITHOUT_MAP_ASSETS=1`` builds anyway: a wheel whose map
pages answer 503 (``map_assets_missing``) unless ``GRIDMAP_MAP_ASSETS`` names an installed copy.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT / "geodata" / "linyi"
NPM_DIR = ROOT / "assets"
NODE_MODULES = NPM_DIR / "node_modules"
ASSETS_MODULE = ROOT / "gridmap" / "layers" / "assets.py"
BUNDLE = Path("gridmap") / "_bundle"  # inside the build folder; gridmap/settings.py knows this name
OPT_OUT = "GRIDMAP_WHEEL_WITHOUT_MAP_ASSETS"
FIX = "run `npm ci --prefix assets` in the source checkout first"

_CSS_URL = re.compile(r"url\((?P<q>['\"]?)(?P<url>[^)'\"]+)(?P=q)\)")  # as in gridmap/layers/assets.py
_LICENCE = re.compile(r"^licen[cs]e", re.IGNORECASE)


class BuildError(Exception):
    pass


def linked_files() -> list[str]:
    """The npm files the map pages link: ``RESOURCES`` of gridmap/layers/assets.py, read without importing
    gridmap (its dependencies are not installed in an isolated build)."""
    tree = ast.parse(ASSETS_MODULE.read_text(encoding="utf-8"))
    constants: dict[str, str] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants[target.id] = node.value.value
        elif target.id == "RESOURCES" and isinstance(node.value, ast.Dict):
            files = []
            for value in node.value.values:
                if isinstance(value, ast.Name):
                    files.append(constants[value.id])
                elif isinstance(value, ast.Constant) and isinstance(value.value, str):
                    files.append(value.value)
            return sorted({f.removeprefix("vendor/") for f in files if f.startswith("vendor/")})
    raise BuildError(f"no RESOURCES dict in {ASSETS_MODULE}")


def _package_of(file: str) -> str:
    parts = file.split("/")
    return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]


def vendor_files() -> dict[Path, str]:
    """Every npm file the wheel carries: absolute path -> path under vendor/. Raises BuildError with
    what is wrong and how to fix it when the pinned packages are not installed as pinned."""
    pins = json.loads((NPM_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    if not NODE_MODULES.is_dir():
        raise BuildError(f"the map pages' npm packages are not installed ({NODE_MODULES} is missing): {FIX}")
    linked = linked_files()
    problems = []
    for package in sorted({_package_of(f) for f in linked}):
        manifest = NODE_MODULES / package / "package.json"
        installed = json.loads(manifest.read_text(encoding="utf-8"))["version"] if manifest.is_file() else None
        if package not in pins:
            problems.append(f"{package} is linked by the maps but not pinned in assets/package.json")
        elif installed != pins[package]:
            problems.append(f"{package} {installed or 'not installed'}, pinned {pins[package]}")
    missing = [f for f in linked if not (NODE_MODULES / f).is_file()]
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
    if problems:
        raise BuildError(f"the map pages' npm packages in {NODE_MODULES} are not as pinned "
                         f"({'; '.join(problems)}): {FIX}")

    root = NODE_MODULES.resolve()
    chosen: set[Path] = set()
    for file in linked:
        path = (NODE_MODULES / file).resolve()
        chosen.update(p for p in path.parent.rglob("*") if p.is_file())  # e.g. Leaflet's marker images
        if path.suffix == ".css":  # fonts and images the stylesheet names (Font Awesome's webfonts)
            for m in _CSS_URL.finditer(path.read_text(encoding="utf-8")):
                url = m["url"].split("?")[0].split("#")[0]
                if url and not url.startswith(("data:", "http:", "https:", "/")):
                    target = (path.parent / url).resolve()
                    if target.is_file():
                        chosen.add(target)
        package_dir = (NODE_MODULES / _package_of(file)).resolve()
        chosen.update(p for p in package_dir.iterdir() if p.is_file() and (p.name == "package.json"
                                                                            or _LICENCE.match(p.name)))
    return {p: p.relative_to(root).as_posix() for p in sorted(chosen) if p.is_relative_to(root)}


class BuildPyWithBundle(build_py):
    """setuptools' build_py, then the sample county and the npm files into ``<build_lib>/gridmap/_bundle``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the source checkout, which finds both where they lie
        bundle = Path(self.build_lib) / BUNDLE
        shutil.rmtree(bundle, ignore_errors=True)  # nothing left over from an earlier build
        if not (SAMPLE / "grids.geojson").is_file():
            raise SystemExit(f"error: the sample county {SAMPLE} is missing; build from a source checkout")
        shutil.copytree(SAMPLE, bundle / "linyi")
        try:
            files = vendor_files()
        except BuildError as exc:
            if os.environ.get(OPT_OUT, "").strip().lower() in ("1", "true", "yes"):
                self.warn(f"{exc}\n{OPT_OUT} is set: building a wheel WITHOUT map assets "
                          "(its map pages answer 503 unless GRIDMAP_MAP_ASSETS names an installed copy)")
                return
            raise SystemExit(f"error: {exc}\n(to build a wheel without map assets anyway, "
                             f"set {OPT_OUT}=1)") from None
        for source, name in files.items():
            target = bundle / "vendor" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        self.announce(f"bundled the sample county and {len(files)} map asset files into {bundle}", level=2)


setup(cmdclass={"build_py": BuildPyWithBundle})
