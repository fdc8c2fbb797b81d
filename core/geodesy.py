"""Distances and areas on the Earth, modelled as a sphere of radius R = 6,371,008.8 m.

Everything takes longitudes/latitudes in degrees (EPSG:4326) and returns metres or square metres.
Projections (for distances) are spherical and centred per feature or per small tile, so that they
stay accurate anywhere: at the equator, near the poles and across the antimeridian. Areas need no
projection: :func:`polygon_area_m2` is a closed form for edges straight in lon/lat.
"""
from __future__ import annotations

import numpy as np
import shapely

from .geometry import clean_polygons, polygonal_all
from .parallel import run_parallel

#: Mean Earth radius (IUGG), metres. METHOD.md: a great-circle sphere of this radius.
EARTH_RADIUS_M = 6371008.8
#: Polygons per task of the area computation (progress and cancel are checked between tasks).
_AREA_CHUNK = 5000

#: The one area model of every ``area_m2`` of the core (harmonise, cluster, footprint; core/API.md).
AREA_EDGE_MODEL = (
    "area_m2 is the area on the sphere R = 6,371,008.8 m of the polygon as it is stored in "
    "EPSG:4326, with every edge a straight line in longitude/latitude (the edges QGIS draws in "
    "EPSG:4326 and shapely unions, clips and intersects, so that areas add up whatever vertices "
    "a union or a clip inserts); QGIS's ellipsoidal measurements take edges as great-circle "
    "arcs instead, which gives up to 0.1 % more or less for the longest edges of the GEM coal "
    "lease boundaries, and more for long edges near the poles.")


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


def aeqd_inverse(x, y, lon0, lat0):
    """Inverse of :func:`aeqd_forward`: (lon in [-180, 180], lat) of plane coordinates (metres)
    of the projection centred at (lon0, lat0).

    Through the unit vector P = cos c C + sin c (sin az E + cos az N) (C the centre, E and N its
    east and north, c the central angle, az the azimuth), and latitude/longitude from atan2, so it
    is accurate next to the poles and across ±180° too."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    lam0, phi0 = np.radians(lon0), np.radians(lat0)
    rho = np.hypot(x, y)
    c = rho / EARTH_RADIUS_M
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(rho > 0.0, np.sin(c) / np.where(rho > 0.0, rho, 1.0), 1.0 / EARTH_RADIUS_M)
    e, n, cos_c = k * x, k * y, np.cos(c)      # P.E, P.N, P.C
    sin_l0, cos_l0, sin_p0, cos_p0 = np.sin(lam0), np.cos(lam0), np.sin(phi0), np.cos(phi0)
    px = cos_c * cos_p0 * cos_l0 - e * sin_l0 - n * sin_p0 * cos_l0
    py = cos_c * cos_p0 * sin_l0 + e * cos_l0 - n * sin_p0 * sin_l0
    pz = cos_c * sin_p0 + n * cos_p0
    return np.degrees(np.arctan2(py, px)), np.degrees(np.arctan2(pz, np.hypot(px, py)))


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


def polygon_area_m2(geoms, progress=None, should_stop=None) -> np.ndarray:
    """Area (m²) of each lon/lat Polygon or MultiPolygon as the core reads it (see
    :data:`AREA_EDGE_MODEL`): on the sphere R = EARTH_RADIUS_M with every edge a straight line in
    longitude/latitude. The geometries must be read already (:mod:`.geometry`: valid, parts
    within -180..180, poles settled); None, empty and non-polygonal geometries have area 0.

    Closed form, no projection: along a straight lon/lat edge the latitude is linear in the
    longitude, so the ring integral of sin(lat) d(lon) that gives the area is, per edge,
    dlon * sin(mid-latitude) * sinc(dlat / 2), exactly; it is summed less a constant per ring
    and from differences of degrees, so that a metre-sized polygon keeps its digits, next to a
    pole too. Each polygon's sum runs over its own vertices in their order, so its area does not
    depend on the other polygons of the call.
    ``progress(fraction)`` and ``should_stop()`` (raises ``Cancelled``) are optional.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    n = len(geoms)
    chunks = [np.arange(k, min(n, k + _AREA_CHUNK)) for k in range(0, n, _AREA_CHUNK)]
    for rows, a in zip(chunks, run_parallel(chunks, lambda r: _lonlat_area(geoms[r]), should_stop, progress)):
        out[rows] = a
    return out


def _lonlat_area(chunk) -> np.ndarray:
    area = np.zeros(len(chunk))
    if (shapely.get_type_id(chunk) == 3).all():   # 3: Polygon, its own part (no copy made)
        parts, owner = chunk, np.arange(len(chunk))
    else:
        parts, owner = shapely.get_parts(chunk, return_index=True)
    ok = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, owner = parts[ok], owner[ok]
    if len(parts) == 0:
        return area
    # The rings of each part, exterior first; a part without holes stands for its exterior ring
    # (same vertices), so that only the parts with holes are taken apart.
    holed = shapely.get_num_interior_rings(parts) > 0
    rings, part_of = parts, np.arange(len(parts))
    if holed.any():
        hr, hp = shapely.get_rings(parts[holed], return_index=True)
        rings = np.concatenate([parts[~holed], hr])
        part_of = np.r_[part_of[~holed], np.flatnonzero(holed)[hp]]
        order = np.argsort(part_of, kind="stable")
        rings, part_of = rings[order], part_of[order]
    exterior = np.ones(len(rings), dtype=bool)
    exterior[1:] = part_of[1:] != part_of[:-1]
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    edge = ring_of[1:] == ring_of[:-1]          # consecutive vertices of one ring
    # sin(mid) sinc(h) less sin(ref), ref the latitude of the ring's first vertex (a constant
    # adds nothing round a closed ring), written without cancellation and from differences of
    # degrees (exact between nearby vertices), so that a small polygon keeps its digits
    # anywhere, next to a pole too (1 - sin 89.99° is 1.5e-8)
    start = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
    ref_deg = np.repeat(xy[start, 1], np.diff(np.r_[start, len(xy)]))
    a = xy[:, 1] - ref_deg                      # degrees from the ring's first latitude
    a0, a1 = a[:-1][edge], a[1:][edge]
    ref_deg = ref_deg[:-1][edge]
    off = np.radians((a0 + a1) / 2.0)           # mid-latitude less ref
    h = np.radians(a1 - a0) / 2.0
    sinc_less_1 = np.where(np.abs(h) < 1e-3, -h * h / 6.0 * (1.0 - h * h / 20.0),
                           np.sin(h) / np.where(h == 0.0, 1.0, h) - 1.0)
    # cos(ref + off / 2) as the sine of the colatitude, taken in degrees (exact next to a pole)
    colat = (90.0 - np.abs(ref_deg)) - np.where(ref_deg < 0.0, -1.0, 1.0) * (a0 + a1) / 4.0
    term = np.radians(np.diff(xy[:, 0])[edge]) * (2.0 * np.sin(np.radians(colat)) * np.sin(off / 2.0)
                                                  + np.sin(np.radians(ref_deg) + off) * sinc_less_1)
    ring_area = np.abs(np.bincount(ring_of[1:][edge], weights=term, minlength=len(rings)))
    part_area = np.bincount(part_of, weights=np.where(exterior, ring_area, -ring_area), minlength=len(parts))
    return EARTH_RADIUS_M ** 2 * np.bincount(owner, weights=part_area, minlength=len(chunk))


def geodesic_area_m2(geoms, progress=None, should_stop=None) -> np.ndarray:
    """Area in m² of each user geometry (lon/lat) on the sphere R = 6,371,008.8 m: its polygons
    read as the core reads them (:func:`.geometry.clean_polygons`: poles settled, cut at the
    antimeridian, an invalid polygon measured as repaired, a bow-tie with both lobes), measured
    by :func:`polygon_area_m2` (edges straight in lon/lat, :data:`AREA_EDGE_MODEL`). Points,
    lines and empty geometries have area 0. The coordinates must pass
    :func:`.geometry.check_coordinates` (a NaN would reach GEOS).
    """
    read = clean_polygons(polygonal_all(geoms), should_stop)[0]
    return polygon_area_m2(read, progress, should_stop)
