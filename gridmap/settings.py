"""Runtime settings, read from the environment (prefix ``GRIDMAP_``) when asked for, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SAMPLE_PACKAGE = Path(__file__).resolve().parent.parent / "geodata" / "linyi"
"""The sample county shipped in the repository (found beside the package in a source checkout)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    db: Path = Field(Path("gridmap.gpkg"), description="path of the GeoPackage store")
    admin_token: str | None = Field(None, description="bearer token for /v1/admin endpoints; unset disables them")
    sample_package: Path = SAMPLE_PACKAGE
    load_sample_if_empty: bool = True
    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache
def get_settings() -> Settings:
    return Settings()
