"""Independent reference computations for the engine's tests.

Distances: brute force on the sphere of METHOD.md (R written here, not imported), from the input
lon/lat geometries alone: polygon edges are great-circle arcs, a distance is the smallest angle
between a vertex of one geometry and an arc of the other (exact for arcs that do not cross), 0 when
arcs cross or one geometry holds a vertex of the other (tested in a gnomonic plane, where
great-circle arcs are straight lines). No engine code is used (no projection, no shapely distance).

Cuts: fastcluster single linkage on the dense matrix of those distances and a cut per threshold
(scipy's fcluster). The engine's distance model is only required to be close to the sphere, so a
cut is asserted only where it does not depend on that difference: the partition with every
distance lowered by its tolerance equals the one with every distance raised by it.

Optimisation: METHOD.md written as plain Python loops over sets.
"""
from __future__ import annotations

import math

import fastcluster
import numpy as np
import shapely
from scipy.cluster.hierarchy import fcluster
from scipy.spatial.distance import squareform

#: METHOD.md's great-circle sphere, metres.
R_SPHERE_M = 6371008.8
#: METHOD.md: links at a threshold join (R's cutree(h=)); 1 µm absorbs float noise of the distances.
TIE_M = 1e-6
#: How far the engine's distance may be from the sphere's: point pairs (haversine, float noise only),
#: pairs with a polygon (METHOD.md allows 0.5 %; the engine's local projections are ~1e-5).
POINT_TOLERANCE_M = 1e-7
POLYGON_TOLERANCE_REL = 2e-4
POLYGON_TOLERANCE_M = 1e-3


def canonical(labels):
    """A partition as a frozenset of frozensets of element positions."""
    groups = {}
    for e, lab in enumerate(labels):
        groups.setdefault(lab, set()).add(e)
    return frozenset(frozenset(g) for g in groups.values())


# ----------------------------------------------------------------------------- sphere geometry

def unit(lon, lat):
    """Unit vectors (n, 3) of lon/lat degrees."""
    lon, lat = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _angle(p, q):
    """Angle (radians) between unit vectors, row by row, accurate for small angles."""
    return np.arctan2(np.linalg.norm(np.cross(p, q), axis=-1), np.sum(p * q, axis=-1))


def sphere_m(lon1, lat1, lon2, lat2):
    """Great-circle distance (metres) between two points, from their unit vectors."""
    return float(_angle(unit([lon1], [lat1]), unit([lon2], [lat2]))[0]) * R_SPHERE_M


def _point_arc_angles(p, a, b):
    """(m, k) smallest angle from each point p to each great-circle arc a[k]-b[k]."""
    n = np.cross(a, b)
    norm = np.linalg.norm(n, axis=1)
    ends = np.minimum(np.arctan2(np.linalg.norm(np.cross(p[:, None, :], a[None]), axis=2), p @ a.T),
                      np.arctan2(np.linalg.norm(np.cross(p[:, None, :], b[None]), axis=2), p @ b.T))
    ok = norm > 1e-15
    if not ok.any():
        return ends
    nh = n[ok] / norm[ok, None]
    s = p @ nh.T                                        # sine of the angle to the great circle
    f = p[:, None, :] - s[:, :, None] * nh[None]        # foot of the perpendicular (not normalised)
    inside = ((np.einsum("kj,mkj->mk", nh, np.cross(a[ok][None], f)) >= 0)
              & (np.einsum("kj,mkj->mk", nh, np.cross(f, b[ok][None])) >= 0))
    perp = np.arctan2(np.abs(s), np.linalg.norm(f, axis=2))
    out = ends.copy()
    out[:, ok] = np.where(inside, np.minimum(perp, ends[:, ok]), ends[:, ok])
    return out


def _arcs_cross(a1, b1, a2, b2):
    """Whether any arc a1-b1 properly crosses any arc a2-b2 (short arcs)."""
    n1, n2 = np.cross(a1, b1), np.cross(a2, b2)
    s = (a2 @ n1.T).T * (b2 @ n1.T).T          # (k1, k2): ends of arc 2 on both sides of circle 1
    t = (a1 @ n2.T) * (b1 @ n2.T)              # ends of arc 1 on both sides of circle 2
    same_side = (a1 + b1) @ (a2 + b2).T > 0    # not the antipodal crossing
    return bool(np.any((s < 0) & (t < 0) & same_side))


class _Part:
    """A point, or a polygon part as rings of unit vectors, with a bounding cap."""

    def __init__(self, geom):
        self.geom = geom
        if geom.geom_type == "Point":
            self.rings = []
            self.vertices = unit([geom.x], [geom.y])
        else:
            self.rings = [unit(*np.asarray(r.coords).T) for r in [geom.exterior, *geom.interiors]]
            self.vertices = np.vstack(self.rings)
        c = self.vertices.sum(axis=0)
        self.centre = c / np.linalg.norm(c)
        self.radius = float(_angle(self.vertices, np.broadcast_to(self.centre, self.vertices.shape)).max())
        self._plane = None

    @property
    def is_point(self):
        return not self.rings

    def arcs(self):
        a = np.vstack([r[:-1] for r in self.rings])
        b = np.vstack([r[1:] for r in self.rings])
        return a, b

    def gnomonic(self, v):
        """Gnomonic coordinates of unit vectors v (rows) centred at this part's centre."""
        c = self.centre
        e = np.cross([0.0, 0.0, 1.0], c)
        e = e / np.linalg.norm(e) if np.linalg.norm(e) > 1e-12 else np.array([1.0, 0.0, 0.0])
        nn = np.cross(c, e)
        w = v @ c
        return np.column_stack([(v @ e) / w, (v @ nn) / w])

    def contains(self, v):
        """Whether unit vector v lies in this polygon part (holes excluded)."""
        if self._plane is None:
            rings = [self.gnomonic(r) for r in self.rings]
            self._plane = shapely.Polygon(rings[0], rings[1:])
        if float(v @ self.centre) <= 0.0:   # the other hemisphere: not in a small polygon
            return False
        x, y = self.gnomonic(v[None])[0]
        return bool(shapely.intersects_xy(self._plane, x, y))


def _part_angle(p, q):
    if p.is_point and q.is_point:
        return float(_angle(p.vertices, q.vertices)[0])
    if p.is_point:
        p, q = q, p
    if q.is_point:           # p polygon, q point
        if p.contains(q.vertices[0]):
            return 0.0
        a, b = p.arcs()
        return float(_point_arc_angles(q.vertices, a, b).min())
    a1, b1 = p.arcs()
    a2, b2 = q.arcs()
    if _arcs_cross(a1, b1, a2, b2) or p.contains(q.vertices[0]) or q.contains(p.vertices[0]):
        return 0.0
    return float(min(_point_arc_angles(p.vertices, a2, b2).min(), _point_arc_angles(q.vertices, a1, b1).min()))


def _parts(geom):
    return [_Part(g) for g in shapely.get_parts(geom) if not g.is_empty]


def sphere_distance(g1, g2):
    """Smallest great-circle distance (metres) between two lon/lat geometries (0 if they meet)."""
    return min(_part_angle(p, q) for p in _parts(g1) for q in _parts(g2)) * R_SPHERE_M


def sphere_distance_matrix(geoms, needed_m=math.inf):
    """(distance, tolerance) matrices of all pairs of geometries on the sphere.

    Pairs of parts whose bounding caps are farther apart than ``needed_m`` get that lower bound
    instead of the exact distance (enough for any cut at a threshold up to ``needed_m``).
    """
    parts, owner = [], []
    for k, g in enumerate(geoms):
        ps = _parts(g)
        parts += ps
        owner += [k] * len(ps)
    owner = np.asarray(owner)
    centre = np.array([p.centre for p in parts]).reshape(-1, 3)
    radius = np.array([p.radius for p in parts])
    n = len(geoms)
    dist = np.full((n, n), np.inf)
    for p in range(len(parts)):
        q = np.arange(p + 1, len(parts))
        q = q[owner[q] != owner[p]]
        lower = (_angle(centre[p][None], centre[q]) - radius[p] - radius[q]) * R_SPHERE_M
        exact = lower <= needed_m
        d = lower.copy()
        d[exact] = [_part_angle(parts[p], parts[k]) * R_SPHERE_M for k in q[exact]]
        lo, hi = np.minimum(owner[p], owner[q]), np.maximum(owner[p], owner[q])
        np.minimum.at(dist, (lo, hi), d)
    dist = np.minimum(dist, dist.T)
    np.fill_diagonal(dist, 0.0)
    points = np.array([g.geom_type in ("Point", "MultiPoint") for g in geoms])
    tol = np.where(points[:, None] & points[None, :], POINT_TOLERANCE_M,
                   POLYGON_TOLERANCE_M + POLYGON_TOLERANCE_REL * dist)
    np.fill_diagonal(tol, 0.0)
    return dist, tol


def _cuts(dist, thresholds):
    z = fastcluster.linkage(squareform(dist, checks=False), method="single")
    return {h: list(fcluster(z, t=h + TIE_M, criterion="distance")) for h in thresholds}


def brute_force_cuts(features, thresholds):
    """Labels per element at each threshold from the sphere: {h: labels, or None where the
    partition depends on distances within the engine's tolerance of the sphere's}."""
    n = len(features)
    if n == 1:
        return {h: [0] for h in thresholds}
    dist, tol = sphere_distance_matrix(features.geoms, max(thresholds) * 1.01 + 1.0)
    low = _cuts(np.maximum(dist - tol, 0.0), thresholds)
    high = _cuts(dist + tol, thresholds)
    return {h: low[h] if canonical(low[h]) == canonical(high[h]) else None for h in thresholds}


# ----------------------------------------------------------------------------- optimisation

def _pareto(a_u, a_m, w, formula):
    mu = max(max(a_u), 1e-12)
    mm = max(max(a_m), 1e-12)
    out = []
    for u, m in zip(a_u, a_m):
        if formula == "eq1":
            out.append(math.sqrt(((1 - w) * u / mu) ** 2 + (w * m / mm) ** 2))
        else:
            out.append(m / mm + (u / mu) ** 2)
    return out


def _choose(e):
    best = min(e)
    for k, v in enumerate(e):
        if v - best <= 1e-9 * max(abs(v), abs(best)):
            return k
    raise AssertionError("no minimum")


def _objectives(members, labels, area, prim):
    """A_u, A_m of the elements `members` under the partition `labels`."""
    sets = {}
    for e in members:
        sets.setdefault(labels[e], set()).update(prim[e])
    a_u = sum(area[e] for e in members if not sets[labels[e]])
    a_m = sum(area[e] * (len(sets[labels[e]]) - 1) for e in members if len(sets[labels[e]]) >= 2)
    return a_u, a_m


def brute_force_optimum(features, thresholds, cuts, weight=0.5, formula="eq1", max_threshold_m=None,
                        method="local"):
    """Final partition, each element's threshold, H*_max and the global threshold (METHOD.md).

    ``cuts``: {h: one label per element}."""
    n = len(features)
    area = [float(a) for a in features.area_m2]
    prim = [set(features.primary.indices[features.primary.indptr[e]:features.primary.indptr[e + 1]])
            for e in range(n)]
    total = sum(area)
    everyone = list(range(n))
    g = [_objectives(everyone, cuts[h], area, prim) for h in thresholds]
    g_best = 0 if total <= 0 else _choose(_pareto([x[0] for x in g], [x[1] for x in g], weight, formula))

    local = []
    for m, hm in enumerate(thresholds):
        groups = {}
        for e in everyone:
            groups.setdefault(cuts[hm][e], []).append(e)
        chosen, su, sm = {}, 0.0, 0.0
        for key, members in groups.items():
            obj = [_objectives(members, cuts[thresholds[k]], area, prim) for k in range(m + 1)]
            if sum(area[e] for e in members) <= 0:
                k = 0
            else:
                k = _choose(_pareto([o[0] for o in obj], [o[1] for o in obj], weight, formula))
            chosen[key] = k
            su += obj[k][0]
            sm += obj[k][1]
        local.append((chosen, su, sm))
    if max_threshold_m is not None:
        l_best = list(thresholds).index(max_threshold_m)
    else:
        l_best = 0 if total <= 0 else _choose(_pareto([x[1] for x in local], [x[2] for x in local], weight, formula))
    if method == "global":
        k_of = [g_best] * n
    else:
        chosen = local[l_best][0]
        k_of = [chosen[cuts[thresholds[l_best]][e]] for e in everyone]
    final = [(k_of[e], cuts[thresholds[k_of[e]]][e]) for e in everyone]
    return dict(partition=canonical(final), threshold_m=[thresholds[k] for k in k_of],
                max_threshold_m=thresholds[l_best], global_threshold_m=thresholds[g_best],
                local_au=[x[1] for x in local], local_am=[x[2] for x in local],
                global_au=[x[0] for x in g], global_am=[x[1] for x in g])
