"""Topology of the boundaries (issue #14 §2): where grids and communities overlap, leave gaps, have
thin slivers, cross their parent's boundary or are invalid, and which buildings a grid edge splits.

``measures`` holds the geometry, ``report`` turns it into a report (JSON, GeoJSON), ``fix`` snaps
vertices within a tolerance. Nothing here reads the store or knows HTTP: callers hand in layers.
"""

from gridmap.topology.report import KINDS, TopologyReport, check_topology

__all__ = ["KINDS", "TopologyReport", "check_topology"]
