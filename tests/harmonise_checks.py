"""Independent measures for the harmonise tests (all layers): areas on the plugin's sphere,
computed without the plugin's code.

``area_m2`` of the merged polygons takes every edge as a straight line in longitude/latitude
(``core.geodesy.AREA_EDGE_MODEL``; a closed form in ``polygon_area_m2``). The measures here
reach the same edge model by other roads:

- ``lonlat_box_area``: the exact area of a longitude/latitude box (its edges are meridians and
  parallels, straight in lon/lat);
- ``dense_area``: pyproj's geodesic solver (GeographicLib) on the same sphere, with each edge
  cut into pieces of at most 1/200 of the polygon's extent (and 0.0005 degrees): a great-circle
  piece that short follows the straight lon/lat edge to better than 1e-7 of the area.
"""
import math

import pytest
import shapely
from shapely.geometry.polygon import orient

R_SPHERE = 6371008.8          # METHOD.md's sphere, written out here on purpose


def lonlat_box_area(x0, y0, x1, y1):
    """The area of a longitude/latitude box on the sphere: R² Δλ (sin φ1 − sin φ0)."""
    return R_SPHERE ** 2 * math.radians(x1 - x0) * (math.sin(math.radians(y1))
                                                    - math.sin(math.radians(y0)))


def sphere_geod():
    pyproj = pytest.importorskip("pyproj")
    return pyproj.Geod(a=R_SPHERE, b=R_SPHERE)


def great_circle_area(geom):
    """Area (m²) of a lon/lat (multi)polygon with great-circle edges between its vertices."""
    geod = sphere_geod()
    return sum(geod.geometry_area_perimeter(orient(p, 1.0))[0]
               for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty)


def dense_area(geom):
    """Area (m²) of a lon/lat (multi)polygon with straight lon/lat edges, by pyproj on edges cut
    short (see the module docstring); holes are subtracted, parts measured one by one."""
    geod = sphere_geod()
    total = 0.0
    for p in shapely.get_parts(geom):
        if p.geom_type != "Polygon" or p.is_empty:
            continue
        x0, y0, x1, y1 = p.bounds
        step = min(0.0005, max(x1 - x0, y1 - y0) / 200.0)
        total += geod.geometry_area_perimeter(orient(shapely.segmentize(p, step), 1.0))[0]
    return total


def union_area(geoms):
    """Independent area of the union of input geometries: each one repaired
    (``shapely.make_valid``), their polygons unioned at once, measured by ``dense_area``."""
    polys = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        g = shapely.make_valid(shapely.force_2d(g))
        polys.extend(p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon"))
    return dense_area(shapely.union_all(polys)) if polys else 0.0
