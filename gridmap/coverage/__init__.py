"""Point coverage: which grid, community, town or precinct covers a point."""
