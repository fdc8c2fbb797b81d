"""Distances and areas on the Earth, modelled as a sphere of radius R = 6,371,008.8 m.

Everything takes longitudes/latitudes in degrees (EPSG:4326) and returns metres or square metres.
Projections are spherical and centred per feature or per small tile, so that they stay accurate
anywhere: at the equator, near the poles and across the antimeridian.
"""
from __future__ import annotations

import numpy as np
import shapely

from .parallel import run_parallel

#: Mean Earth radius (IUGG), metres. METHOD.md: a great-circle sphere of this radius.
EARTH_RADIUS_M = 6371008.8
#: Polygons per task of the area computation (progress and cancel are checked between tasks).
_AREA_CHUNK = 5000


def wrap_lon(lon):
    """Longitudes wrapped to [-180, 180)."""
    return (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres between (lon1, lat1) and (lon2, lat2), vectorised."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    s = (np.sin((lat2 - lat1) / 2.0) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2)
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(s, 0.0, 1.0)))


def _angles(lon, lat, lon0, lat0):
    """Terms of the azimuthal projections centred at (lon0, lat0): (x, y, cos c) with
    x = cos φ sin Δλ, y = cos φ0 sin φ − sin φ0 cos φ cos Δλ; hypot(x, y) = sin c, where c is the
    central angle. Δλ enters only through sin and cos, so longitudes need no wrapping."""
    dlon = np.radians(np.asarray(lon, dtype=float) - lon0)
    phi = np.radians(lat)
    phi0 = np.radians(lat0)
    sin_phi, cos_phi = np.sin(phi), np.cos(phi)
    sin_phi0, cos_phi0 = np.sin(phi0), np.cos(phi0)
    cos_dlon = np.cos(dlon)
    x = cos_phi * np.sin(dlon)
    y = cos_phi0 * sin_phi - sin_phi0 * cos_phi * cos_dlon
    cos_c = sin_phi0 * sin_phi + cos_phi0 * cos_phi * cos_dlon
    return x, y, cos_c


def aeqd_forward(lon, lat, lon0, lat0):
    """Spherical azimuthal-equidistant projection centred at (lon0, lat0); metres.

    Distances from the centre are exact; between other points within ~100 km of the centre the
    relative error is below ~1e-4.
    """
    x, y, cos_c = _angles(lon, lat, lon0, lat0)
    sin_c = np.hypot(x, y)
    c = np.arctan2(sin_c, cos_c)  # stable for small and large angles
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(sin_c > 1e-15, c / sin_c, 1.0)
    return EARTH_RADIUS_M * k * x, EARTH_RADIUS_M * k * y


def laea_forward(lon, lat, lon0, lat0):
    """Spherical Lambert azimuthal equal-area projection centred at (lon0, lat0); metres."""
    x, y, cos_c = _angles(lon, lat, lon0, lat0)
    k = np.sqrt(2.0 / (1.0 + cos_c))
    return EARTH_RADIUS_M * k * x, EARTH_RADIUS_M * k * y


def unwrapped_bounds(geoms):
    """Per geometry (minx, miny, maxx, maxy) with longitudes unwrapped across the antimeridian.

    A geometry whose longitudes span more than 180 degrees is taken to cross the antimeridian:
    its negative longitudes are shifted by +360, so its box is e.g. [170, 190] instead of [-180, 180].
    """
    geoms = np.asarray(geoms, dtype=object)
    bounds = shapely.bounds(geoms)
    wide = (bounds[:, 2] - bounds[:, 0]) > 180.0
    if wide.any():
        idx = np.flatnonzero(wide)
        coords, owner = shapely.get_coordinates(geoms[idx], return_index=True)
        lon = np.where(coords[:, 0] < 0.0, coords[:, 0] + 360.0, coords[:, 0])
        n = len(idx)
        minx = np.full(n, np.inf)
        maxx = np.full(n, -np.inf)
        np.minimum.at(minx, owner, lon)
        np.maximum.at(maxx, owner, lon)
        bounds[idx, 0] = minx
        bounds[idx, 2] = maxx
    return bounds


def project(geoms, lon0, lat0, forward=aeqd_forward, with_coordinates=False):
    """Each geometry projected by ``forward`` centred at its own (lon0[i], lat0[i]).

    With ``with_coordinates``: (projected geometries, x, y, owner), the projected vertices and the
    geometry of each, as ``shapely.get_coordinates(..., return_index=True)`` would give them."""
    geoms = np.array(geoms, dtype=object)  # a copy: set_coordinates works in place
    if len(geoms) == 0:
        return (geoms, np.empty(0), np.empty(0), np.empty(0, np.int64)) if with_coordinates else geoms
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    x, y = forward(coords[:, 0], coords[:, 1], np.asarray(lon0, dtype=float)[owner],
                   np.asarray(lat0, dtype=float)[owner])
    out = shapely.set_coordinates(geoms, np.column_stack([x, y]))
    return (out, x, y, owner) if with_coordinates else out


def bounds_centres(bounds):
    """Centres (lon in [-180, 180), lat) of unwrapped boxes."""
    lon = wrap_lon((bounds[:, 0] + bounds[:, 2]) / 2.0)
    lat = (bounds[:, 1] + bounds[:, 3]) / 2.0
    return lon, lat


def geodesic_area_m2(geoms, progress=None, should_stop=None):
    """Area in m² of each (multi)polygon on the sphere R = 6,371,008.8 m.

    Each polygon is projected to a Lambert azimuthal equal-area projection centred on its own
    bounding box (antimeridian-aware) and measured there. The projection preserves area exactly;
    only its straight edges differ from great-circle edges, which for mine polygons (tens of km at
    most) changes the area by less than 1e-6. An invalid polygon (a bow-tie, a self-touching ring)
    is measured as repaired by ``shapely.make_valid``. Points, lines and empty geometries have
    area 0. ``progress(fraction)`` and ``should_stop()`` (raises ``Cancelled``) are optional.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    if len(geoms) == 0:
        return out
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    idx = np.flatnonzero(ok)
    chunks = [idx[k:k + _AREA_CHUNK] for k in range(0, len(idx), _AREA_CHUNK)]

    def area(rows):
        g = geoms[rows]
        bad = ~shapely.is_valid(g)
        if bad.any():  # e.g. a bow-tie, whose lobes would cancel: measure its repaired shape
            g = g.copy()
            g[bad] = shapely.make_valid(g[bad])
        lon0, lat0 = bounds_centres(unwrapped_bounds(g))
        return shapely.area(project(g, lon0, lat0, laea_forward))

    for rows, a in zip(chunks, run_parallel(chunks, area, should_stop, progress)):
        out[rows] = a
    return out
