"""Hand-built and random feature layouts anywhere on the sphere (metre offsets around a centre)."""
from __future__ import annotations

import math

import shapely

#: METHOD.md's sphere (metres), written here so that the layouts do not lean on the engine.
EARTH_RADIUS_M = 6371008.8


def destination(lon, lat, bearing_deg, distance_m):
    """The point at ``distance_m`` along the great circle from (lon, lat) with ``bearing_deg``."""
    phi1, lam1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = distance_m / EARTH_RADIUS_M
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lam2 = lam1 + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * math.sin(phi2))
    lon2 = (math.degrees(lam2) + 180.0) % 360.0 - 180.0
    return lon2, math.degrees(phi2)


def offset(lon, lat, east_m, north_m):
    """(lon, lat) moved by a local east/north offset in metres (along the azimuth of the offset)."""
    d = math.hypot(east_m, north_m)
    if d == 0:
        return lon, lat
    return destination(lon, lat, math.degrees(math.atan2(east_m, north_m)), d)


def box_m(lon, lat, east_m, north_m, width_m, height_m):
    """A small quadrilateral whose corners are offsets (metres) from (lon, lat)."""
    corners = [(east_m, north_m), (east_m + width_m, north_m), (east_m + width_m, north_m + height_m),
               (east_m, north_m + height_m)]
    return shapely.Polygon([offset(lon, lat, x, y) for x, y in corners])


COMMODITY_CHOICES = ["Gold", "Copper", "Coal", "Gold,Copper", "Zinc, Lead", None, "NA", " gold "]


def random_layout(rng, lon, lat, n_polygons, n_points, spread_m, touching=True, far_parts=False):
    """Polygons (some touching or overlapping, a MultiPolygon), points (a duplicate, a MultiPoint).

    ``far_parts``: also a second site 5-100° of longitude away (across ±180 for some centres),
    with a MultiPolygon that has a part at each site, polygons 0.5-6 km from its far part and
    points at 0.3 % from a whole number of kilometres from it.
    """
    polys = []
    for k in range(n_polygons):
        e, n = rng.uniform(-spread_m, spread_m, 2)
        w, h = rng.uniform(50, 2000, 2)
        polys.append(box_m(lon, lat, e, n, w, h))
        if touching and k % 5 == 1:  # a neighbour sharing the east edge exactly
            polys.append(shapely.Polygon([polys[-1].exterior.coords[1], offset(lon, lat, e + 2 * w, n),
                                          offset(lon, lat, e + 2 * w, n + h), polys[-1].exterior.coords[2]]))
        if touching and k % 7 == 2:  # an overlapping one
            polys.append(box_m(lon, lat, e + w / 2, n + h / 2, w, h))
    if len(polys) >= 2:
        polys.append(shapely.MultiPolygon([polys.pop(), polys.pop()]))
    pts = []
    for _ in range(n_points):
        e, n = rng.uniform(-spread_m, spread_m, 2)
        pts.append(shapely.Point(offset(lon, lat, e, n)))
    if pts:
        pts.append(pts[0])  # a duplicate point
        pts.append(shapely.MultiPoint([offset(lon, lat, *rng.uniform(-spread_m, spread_m, 2)),
                                       offset(lon, lat, *rng.uniform(-spread_m, spread_m, 2))]))
        # a point at exactly 1, 2 and 3 km from the first point: ties at the thresholds
        p0 = pts[0]
        for k in (1, 2, 3):
            pts.append(shapely.Point(destination(p0.x, p0.y, rng.uniform(0, 360), 1000.0 * k)))
    if far_parts:
        far = ((lon + rng.choice([-1, 1]) * rng.uniform(5.0, 100.0) + 180.0) % 360.0 - 180.0, lat)
        here = box_m(lon, lat, *rng.uniform(-spread_m, spread_m, 2), *rng.uniform(100, 1500, 2))
        there = box_m(*far, 0.0, 0.0, *rng.uniform(100, 1500, 2))
        polys.append(shapely.MultiPolygon([here, there]))
        for _ in range(int(rng.integers(1, 3))):     # neighbours of the far part, 0.5-6 km away
            bearing, gap = rng.uniform(0, 360), rng.uniform(500.0, 6000.0)
            polys.append(box_m(*destination(*there.centroid.coords[0], bearing, gap + 1000.0),
                               0.0, 0.0, *rng.uniform(50, 800, 2)))
        for _ in range(int(rng.integers(1, 4))):
            # A point 0.3 % nearer or farther than a whole number of km from the far part's
            # south-west corner, on the corner's outer side (so the corner is its nearest point).
            gap = 1000.0 * rng.integers(1, 6) * (1.0 + rng.choice([-3e-3, 3e-3]))
            pts.append(shapely.Point(destination(*there.exterior.coords[0], rng.uniform(200, 250), gap)))
    primary = [COMMODITY_CHOICES[i] for i in rng.integers(0, len(COMMODITY_CHOICES), len(pts))]
    return polys, pts, primary


def multipart_pair(far_lon, lat=50.0, near_lon=10.0, gap_m=5000.0):
    """A MultiPolygon with 500 m squares at `near_lon` and `far_lon` (latitude `lat`), its near
    part, and a 500 m square about `gap_m` north of that part."""
    a = box_m(near_lon, lat, 0.0, 0.0, 500.0, 500.0)
    b = box_m(far_lon, lat, 0.0, 0.0, 500.0, 500.0)
    q = box_m(*destination(near_lon, lat, 0.0, 500.0 + gap_m), 0.0, 0.0, 500.0, 500.0)
    return shapely.MultiPolygon([a, b]), a, q
