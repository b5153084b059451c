"""Runtime settings, read from the environment (prefix ``GRIDMAP_``) when asked for, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLE = Path(__file__).resolve().parent / "_bundle"
"""What an installed wheel carries beside the code (setup.py's build hook fills it; no such folder in a
source checkout, where the files below are found beside the package)."""
_FROM_WHEEL = BUNDLE.is_dir()
SAMPLE_PACKAGE = BUNDLE / "linyi" if _FROM_WHEEL else Path(__file__).resolve().parent.parent / "geodata" / "linyi"
"""The sample county shipped in the repository (geodata/linyi) and in the wheel."""
MAP_ASSETS = BUNDLE / "vendor" if _FROM_WHEEL else Path(__file__).resolve().parent.parent / "assets" / "node_modules"
"""Leaflet and its plugins, installed by ``npm ci --prefix assets`` (see assets/package.json); a wheel
carries the files the map pages use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    db: Path | str = Field(Path("gridmap.gpkg"), repr=False,  # a URL may hold a password
                           description="path of the GeoPackage store, or a postgresql:// URL of a PostGIS database "
                                       "(server mode)")
    db_read: str | None = Field(None, repr=False, description="postgresql:// URL of a streaming read replica: "
                                                              "listings, statistics and scenario lists are read there")
    cache_dir: Path | None = Field(None, description="server mode: where this host caches the lookup index of each "
                                                     "revision (a private folder); unset: every start builds it")
    admin_token: str | None = Field(None, description="bearer token for /v1/admin endpoints; unset disables them")
    secret: str | None = Field(None, min_length=32, repr=False,
                               description="receipt secret (at least 32 characters); unset: a key file <db>.key "
                                           "beside the store, created 0600 on first use")
    sample_package: Path = SAMPLE_PACKAGE
    load_sample_if_empty: bool = True
    service_area_margin_m: float = Field(5000.0, description="reports farther than this outside the county are refused")
    host: str = "127.0.0.1"
    port: int = 8000
    # Maps (issue #5): only basemap tiles come from the network; every script is served by gridmap.
    tile_url: str = Field("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                          description="default basemap tiles (an intranet tile server or a public provider)")
    tile_name: str = "OpenStreetMap"
    tile_attribution: str = "© OpenStreetMap contributors"
    tile_subdomains: str = ""
    tianditu_key: str | None = Field(None, description="天地图 key; set to offer the 天地图 basemap")
    amap_tile_url: str = Field(
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        description="高德 (GCJ-02) tiles; empty disables that basemap",
    )
    map_assets: Path = Field(MAP_ASSETS, description="installed npm packages the maps serve under /static/vendor")
    # Sign-in (issue #9): browser sessions for the map pages; see docs/security.md "Sign-in and sessions".
    session_hours: float = Field(12.0, gt=0, description="a signed-in browser session ends this many hours after sign-in")
    cookie_secure: bool | None = Field(
        None, description="Secure flag of the session cookie: unset = only when the request came over HTTPS")
    login_failure_limit: str = Field(
        "10/minute", description="failed sign-ins allowed per client address (limits syntax), then 429")
    # Abuse limits (issue #9; docs/security.md "Abuse limits"): public reports per client address.
    intake_rate_per_minute: float = Field(
        10.0, ge=0, description="public reports (POST /v1/incidents, Open311 POST) per client address per minute, "
                                "sustained; 0 turns the limit off (e.g. behind a gateway that limits already)")
    intake_burst: int = Field(20, ge=1, description="reports one client address may send at once: at most this "
                                                    "many in any window of burst / rate minutes")
    # Inputs (issue #9; docs/security.md "Inputs"): request bodies are counted as they arrive, chunked ones too.
    body_limit_default: int = Field(1 << 20, gt=0, description="bytes a request body may have on any other route")
    body_limit_intake: int = Field(64 << 10, gt=0, description="bytes of a public report (POST /v1/incidents, "
                                                               "Open311 POST)")
    body_limit_batch: int = Field(64 << 20, gt=0, description="bytes of a batch lookup (POST /v1/lookup/batch)")
    body_limit_import: int = Field(512 << 20, gt=0, description="bytes of an uploaded package (POST /v1/admin/import)")
    body_limit_photos: int = Field(33 << 20, gt=0, description="bytes of a photo upload (POST /v1/incidents/{id}/photos, "
                                                               "Open311 POST with media): 4 photos of 8 MB and the form")
    import_max_unpacked_bytes: int = Field(1 << 30, gt=0, description="bytes a zipped package may unpack to")
    import_max_files: int = Field(1000, gt=0, description="entries a zipped package may hold")
    import_max_ratio: float = Field(100.0, gt=1, description="largest unpacked/packed size of one zip entry over 1 MB")
    import_tmp_dir: Path | None = Field(None, description="where uploads are unpacked; unset: the system temp folder")
    import_max_overlap_m2: float = Field(1.0, ge=0, description="an import is refused when two grids overlap by more "
                                         "than this (m²); smaller overlaps are warnings (issue #14 §2)")

    @field_validator("db", mode="before")
    @classmethod
    def _location(cls, value: object) -> Path | str:
        """A ``postgresql://`` URL stays text (a Path would fold its ``//``); anything else is a path."""
        text = str(value)
        return text if text.startswith(("postgresql://", "postgres://")) else Path(text)

    @field_validator("db_read")
    @classmethod
    def _replica(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("GRIDMAP_DB_READ must be a postgresql:// URL of a read replica")
        return value or None

    @property
    def server_mode(self) -> bool:
        return isinstance(self.db, str)


@lru_cache
def get_settings() -> Settings:
    return Settings()
