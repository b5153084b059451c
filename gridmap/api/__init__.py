"""The HTTP API: ``create_app(settings)`` builds an app; nothing is built at import time."""

from gridmap.api.app import create_app

__all__ = ["create_app"]
