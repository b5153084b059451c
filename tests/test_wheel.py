"""One wheel to deploy (issue #11 §6): the wheel built from this checkout runs ``gridmap serve`` in an empty
folder of a fresh virtual environment, with no source checkout and no npm, and serves a lookup and a map
page whose scripts, stylesheets and fonts come from the installed wheel; a build without the npm packages
stops with a message unless told to go on without them.

The wheels are built from a copy of the checkout in a temporary folder (its ``assets/node_modules`` a link
to the checkout's), so the build writes nothing (``build/``, ``*.egg-info``) into the shared checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from posixpath import normpath

import pytest
from servers import free_port

from gridmap.layers.assets import REQUIRED_FILES
from gridmap.settings import MAP_ASSETS, SAMPLE_PACKAGE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SKIP_AT_ROOT = {".git", "assets", "tests", "bench", "docs", "build", "dist", ".venv", ".pytest_cache",
                ".hypothesis", ".benchmarks"}
START_TIMEOUT_S = 120.0


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH and without GRIDMAP_* settings (the server must run on defaults)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("GRIDMAP_")}


def copy_checkout(dest: Path, *, with_node_modules: bool) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in ("__pycache__", "node_modules") or n.endswith((".pyc", ".egg-info"))
                   or n.startswith("gridmap.gpkg")}
        return skipped | (SKIP_AT_ROOT & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, dest, ignore=ignore)
    (dest / "assets").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(REPO / "assets" / name, dest / "assets" / name)
    if with_node_modules:
        (dest / "assets" / "node_modules").symlink_to(REPO / "assets" / "node_modules", target_is_directory=True)
    return dest


def pip_wheel(source: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``pip wheel SOURCE --no-deps -w OUT``, with build isolation (setuptools from the package index)."""
    return subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out)],
                          check=False, capture_output=True, text=True, env=env or clean_env(), timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MAP_ASSETS.is_dir():
        pytest.fail(f"{MAP_ASSETS} is missing: run npm ci --prefix assets (the wheel carries the map assets)")
    tmp = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    result = pip_wheel(copy_checkout(tmp / "src", with_node_modules=True), tmp / "dist")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = (tmp / "dist").glob("gridmap-*.whl")
    print(f"built {built.name}: {built.stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s")
    return built


def test_the_wheel_holds_the_sample_county_the_map_assets_and_every_package_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = {p.relative_to(REPO).as_posix() for p in (REPO / "gridmap").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
                     and not p.name.startswith(".") and not p.name.endswith("~")}
    assert package_files - names == set()  # templates, static files, SQL migrations, every module
    assert {f"gridmap/_bundle/linyi/{p.name}" for p in SAMPLE_PACKAGE.iterdir() if p.is_file()} <= names
    assert {f"gridmap/_bundle/vendor/{f}" for f in REQUIRED_FILES} <= names
    assert "gridmap/_bundle/vendor/leaflet/dist/images/marker-shadow.png" in names  # Leaflet's JS asks for it
    assert "gridmap/_bundle/vendor/leaflet/LICENSE" in names
    assert not any(n.startswith(("assets/", "geodata/", "node_modules/", "tests/")) for n in names)
    assert not any("/svgs/" in n or n.endswith((".scss", ".less")) for n in names)  # not all of Font Awesome
    assert wheel.stat().st_size < 8e6


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its dependencies come from the running
    interpreter's site-packages (``--system-site-packages``), gridmap itself only from the wheel."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, env=clean_env(), timeout=300)
    return env_dir


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    """``gridmap serve`` of the installed wheel in an empty folder; yields its base URL."""
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = ("import json, gridmap, gridmap.settings as s; "
             "print(json.dumps([gridmap.__file__, str(s.MAP_ASSETS), str(s.SAMPLE_PACKAGE)]))")
    where = subprocess.run([installed / "bin" / "python", "-c", probe], cwd=empty, env=clean_env(),
                           capture_output=True, text=True, check=True)
    site = next((installed / "lib").glob("python3*/site-packages")).resolve()
    for path in json.loads(where.stdout):
        assert Path(path).resolve().is_relative_to(site / "gridmap"), (path, site)  # never the checkout

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([installed / "bin" / "gridmap", "serve", "--port", str(port)], cwd=empty,
                                   env=clean_env(), stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gridmap serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert (empty / "gridmap.gpkg").is_file()  # the store went into the empty folder


_LINKED = re.compile(r'<(?:script src|link rel="stylesheet" href)="(?P<url>/static/[^"]+)"')
_CSS_URL = re.compile(r"url\((?P<q>['\"]?)(?P<url>[^)'\"]+)(?P=q)\)")


def test_the_installed_wheel_serves_a_lookup_and_a_map_page_with_its_assets(served: str) -> None:
    status, body = get(f"{served}/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["grids"] > 0  # the sample county, loaded

    status, body = get(f"{served}/v1/lookup?lon=110.7693&lat=35.1425")
    answer = json.loads(body)
    assert status == 200 and answer["covered"] is True
    assert answer["grid"]["code"] == "140821100015-07" and answer["workers"]

    status, page = get(f"{served}/maps/public")
    assert status == 200
    linked = sorted(set(_LINKED.findall(page.decode())))
    assert any(u.startswith("/static/vendor/leaflet/") and u.endswith(".js") for u in linked), linked
    assert any(u.startswith("/static/vendor/") and u.endswith(".css") for u in linked), linked
    assert any(u.startswith("/static/gridmap/") for u in linked), linked
    referenced = []
    for url in linked:
        status, content = get(served + url)
        assert status == 200 and content, url
        if url.endswith(".css"):  # the images and fonts each stylesheet names
            for m in _CSS_URL.finditer(content.decode()):
                if not m["url"].startswith(("data:", "#", "http:", "https:")):
                    referenced.append(normpath(f"{url.rsplit('/', 1)[0]}/{m['url'].split('?')[0].split('#')[0]}"))
    assert any(r.endswith(".woff2") for r in referenced), referenced  # Font Awesome's solid face
    for url in sorted(set(referenced)):
        assert get(served + url)[0] == 200, url

    status, login = get(f"{served}/login")  # a page from gridmap/web/templates
    assert status == 200 and b"<form" in login


def test_a_build_without_the_npm_packages_stops_unless_told_to_go_on(tmp_path: Path) -> None:
    source = copy_checkout(tmp_path / "src", with_node_modules=False)
    result = pip_wheel(source, tmp_path / "refused")
    assert result.returncode != 0
    assert "npm ci --prefix assets" in result.stdout + result.stderr
    assert "GRIDMAP_WHEEL_WITHOUT_MAP_ASSETS" in result.stdout + result.stderr
    assert not list((tmp_path / "refused").glob("*.whl"))

    result = pip_wheel(source, tmp_path / "anyway", env=clean_env() | {"GRIDMAP_WHEEL_WITHOUT_MAP_ASSETS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = (tmp_path / "anyway").glob("gridmap-*.whl")
    names = zipfile.ZipFile(built).namelist()
    assert "gridmap/_bundle/linyi/grids.geojson" in names
    assert not any(n.startswith("gridmap/_bundle/vendor/") for n in names)
