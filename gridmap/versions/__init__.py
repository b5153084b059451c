"""Boundary versions (issue #14 §3): grids change every year or two; lookups, incidents and statistics
keep to the grids in force on the day they are about. See docs/versions.md."""
