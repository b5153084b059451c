"""Station planning (issue #6): coverage of today's service stations and sites for new ones.

``Planner`` (one per store revision, ``planner_for``) holds the walking network and the cached
distances; ``plan_coverage`` / ``plan_stations`` are what the API and the CLI call; ``solver`` has
the exact models (maximal covering, set covering, p-median) on HiGHS; ``Area`` is what a run is
limited to (a community, town or county and/or a box; the rule at its edge is in ``scope``).
"""

from gridmap.planning.scope import Area
from gridmap.planning.service import (
    PRESETS,
    Planner,
    SitingRequest,
    SitingResult,
    plan_coverage,
    plan_stations,
    planner_for,
)

__all__ = [
    "PRESETS",
    "Area",
    "Planner",
    "SitingRequest",
    "SitingResult",
    "plan_coverage",
    "plan_stations",
    "planner_for",
]
