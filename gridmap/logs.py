"""Log output of ``gridmap serve``: each record one JSON line on stderr (see docs/security.md).

Request records (logger ``gridmap.access``, written by ``gridmap.api.observability``) carry a dict
of fields and are written as they are; other records (uvicorn's start and stop, errors) as time,
level, logger and message. uvicorn's own access log is silenced: it prints query strings, where
receipts travel.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

ACCESS_LOGGER: Final = "gridmap.access"


class JsonFormatter(logging.Formatter):
    """Every record as one JSON line: request records as they are, others as time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):
            payload = record.msg
        else:
            payload = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                       .replace("+00:00", "Z"), "level": record.levelname.lower(), "logger": record.name,
                       "message": record.getMessage()}
            if record.exc_info:
                payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for uvicorn: JSON lines on stderr, uvicorn's access log silenced."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "gridmap": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
