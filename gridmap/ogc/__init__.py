"""OGC API – Features (Part 1: Core, GeoJSON, OpenAPI 3.0, HTML) over gridmap's layers.

Hand-written rather than pygeoapi or tipg (the README, "OGC API Features", says why): both serve
tables straight from a datasource, while every gridmap answer is cut by ``gridmap.access`` per caller
(incidents anonymised for planners, in scope for workers; buildings only for staff), and the layers
already live in memory in the ``Coverage`` index that the rest of the API answers from. The package holds
no FastAPI: ``gridmap.api.routers.ogc`` only turns HTTP into calls of these functions.
"""
