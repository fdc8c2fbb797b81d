"""Exact single linkage up to ``H_limit`` without a dense distance matrix.

0. Linkage elements are *parts*: every part of a (Multi)Polygon feature and every point
   (:func:`split_parts`). The parts of one feature start in one component (they are joined at
   distance 0 before any pair is measured), so a feature's distance to another is the smallest
   distance between their parts and a feature's cluster is its parts' cluster. Each part is
   measured near its own position, however far apart the parts of its feature lie.
1. Candidate pairs: an STRtree of the parts' lon/lat boxes, queried with each box widened by
   ``H_limit`` (conservatively: wider in longitude at high latitude, all longitudes near a pole,
   repeated across ±180).
2. Distances (METHOD.md): point-point pairs by the haversine formula; pairs involving a polygon by
   shapely in a spherical azimuthal-equidistant projection centred on the 1° tile of the pair's
   *anchor* (:func:`anchors`), the other part projected into it. The anchor is chosen from the
   two geometries alone, so the distance of a pair does not depend on the order or ids of the
   features: the larger part by box (the cheaper projection: the smaller part moves), unless that
   box is over ``ANCHOR_MAX_M`` across, then the smaller. Every point that matters then lies
   within ~200 km of the projection's centre: relative error ~1e-5 against the sphere up to
   20 km for mine-sized parts, below 1e-3 unless both parts are over 200 km across.
   0 when geometries touch or overlap.
3. Single linkage = the minimum spanning forest of the graph of pairs at distance <= ``H_limit``:
   cutting it at any h <= ``H_limit`` gives exactly the clusters of a full dendrogram cut at h.
   It is built by Kruskal's algorithm in rounds, measuring only pairs that can still join two
   components (:func:`single_linkage_forest`); no dense matrix, no full distance graph.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from .progress import stop_if_asked
from .features import POINT, Features
from .memory import release_free_memory
from .geodesy import (EARTH_RADIUS_M, aeqd_forward, aeqd_inverse, bounds_centres, haversine_m, project,
                      unwrapped_bounds)
from .parallel import Beside, run_parallel

#: Links at a distance within this of a threshold count as at the threshold (ties join, like
#: R's ``cutree(h=)``); far below the distance model's accuracy, far above float noise.
TIE_TOLERANCE_M = 1e-6
#: Tile size (degrees) of the local projections.
TILE_DEG = 1.0
#: A part whose box diagonal is longer than this (metres) anchors a pair only with a larger part.
ANCHOR_MAX_M = 200000.0
_QUERY_CHUNK = 8192
_PROJECT_CHUNK = 5000
_GEOMETRY_CALL = 250
_PAIR_BATCH = 50000
_PAIR_MIN_BATCH = 1000
#: Rounds of the lazy Kruskal algorithm (quantiles of the pairs' lower bounds).
_ROUNDS = 24


@dataclass
class Forest:
    """Minimum spanning forest of the elements' distance graph up to ``h_limit_m``."""

    n: int
    u: np.ndarray          # int64 edge ends, sorted by weight
    v: np.ndarray
    weight_m: np.ndarray   # float64 distances, ascending
    h_limit_m: float
    parts: "Parts" = None  # the linkage elements it was built on (:func:`split_parts`)
    tile_info: tuple = None  # :func:`tiles` of those parts
    own: np.ndarray = None  # those parts projected into their own tiles (:func:`own_tile_projections`)

    def labels(self, threshold_m: float) -> np.ndarray:
        """Cluster label of each element at ``threshold_m`` (links <= threshold join), 0..k-1.

        Labels are numbered in order of each cluster's first element, so they are canonical.
        """
        m = int(np.searchsorted(self.weight_m, threshold_m + TIE_TOLERANCE_M, side="right"))
        graph = sp.coo_matrix((np.ones(m, dtype=np.int8), (self.u[:m], self.v[:m])),
                              shape=(self.n, self.n)).tocsr()
        return connected_components(graph, directed=False)[1].astype(np.int64)

    def cuts(self, thresholds_m):
        """``labels(h)`` for each h of the ascending ``thresholds_m``, each cut from the one
        before: the clusters joined by the links between the two thresholds, numbered as
        :meth:`labels` numbers them (the earlier clusters are so numbered, so the first element
        of a joined one is that of its lowest earlier cluster)."""
        label, done = np.arange(self.n), 0
        for h in thresholds_m:
            m = int(np.searchsorted(self.weight_m, h + TIE_TOLERANCE_M, side="right"))
            if m < done:
                raise ValueError("Forest.cuts needs ascending thresholds.")
            if m > done:
                k = int(label.max()) + 1
                graph = sp.coo_matrix((np.ones(m - done, dtype=np.int8),
                                       (label[self.u[done:m]], label[self.v[done:m]])), shape=(k, k)).tocsr()
                label = connected_components(graph, directed=False)[1][label]
                done = m
            yield label.astype(np.int64)


@dataclass
class Parts:
    """The linkage elements of some features: every polygon part and every point (see module
    docstring), in the order of their features."""

    owner: np.ndarray      # int64: the feature element (index into Features) of each part
    kind: np.ndarray       # int8: POLYGON or POINT
    geoms: np.ndarray      # shapely Polygons / Points, lon/lat
    bounds: np.ndarray     # (n, 4) lon/lat boxes, longitudes unwrapped across ±180
    ref_lon: np.ndarray    # box centre, [-180, 180)
    ref_lat: np.ndarray
    rank: np.ndarray = None  # int64: rank by size (see :func:`anchor_rank`)
    size_m: np.ndarray = None  # box diagonal, metres

    def __len__(self):
        return len(self.owner)


def split_parts(features: Features) -> Parts:
    """The parts of the features' geometries: a MultiPolygon gives one part per non-empty polygon,
    any other element one part (itself). Parts are ordered by feature, then by part."""
    n = len(features)
    multi = shapely.get_type_id(features.geoms) == 6 if n else np.zeros(0, bool)
    if not multi.any():
        parts = Parts(np.arange(n, dtype=np.int64), features.kind, features.geoms, features.bounds,
                      features.ref_lon, features.ref_lat)
    else:
        idx = np.flatnonzero(multi)
        geoms, which = shapely.get_parts(features.geoms[idx], return_index=True)
        keep = ~shapely.is_empty(geoms)
        geoms, owner_m = geoms[keep], idx[which[keep]]
        single = np.flatnonzero(~multi)
        owner = np.r_[single, owner_m].astype(np.int64)
        order = np.argsort(owner, kind="stable")
        bounds = np.concatenate([features.bounds[single], unwrapped_bounds(geoms).reshape(-1, 4)])[order]
        ref_lon, ref_lat = bounds_centres(bounds)
        parts = Parts(owner[order], features.kind[owner[order]],
                      np.concatenate([features.geoms[single], geoms])[order], bounds, ref_lon, ref_lat)
    parts.rank, parts.size_m = anchor_rank(parts)
    return parts


def anchor_rank(parts: Parts):
    """Rank of each part by (box diagonal in metres, tile key, box coordinates), and the diagonal.

    The keys come from the geometry alone, never from ids or input order; two parts with equal
    keys have the same box, so they meet (distance 0 in any plane)."""
    b = parts.bounds
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    size = haversine_m(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    tile = tiles(parts)[0]
    order = np.lexsort((b[:, 3], b[:, 2], b[:, 1], b[:, 0], tile, size))
    rank = np.empty(len(b), dtype=np.int64)
    rank[order] = np.arange(len(b))
    return rank, size


def anchors(parts: Parts, i, j):
    """(anchor, other) of each pair of parts: the pair is measured in the anchor's tile. The anchor
    is the part of higher rank (larger), or of lower rank when the larger is over ``ANCHOR_MAX_M``
    across; the same whichever of the two comes first."""
    small = np.where(parts.rank[i] < parts.rank[j], i, j)
    large = np.where(parts.rank[i] < parts.rank[j], j, i)
    huge = parts.size_m[large] > ANCHOR_MAX_M
    return np.where(huge, small, large), np.where(huge, large, small)


def tiles(features):
    """Tile id and tile centre (lon, lat) of each element's reference point."""
    lat_i = np.clip(np.floor(features.ref_lat / TILE_DEG), -90 / TILE_DEG, 90 / TILE_DEG - 1)
    lon_i = np.floor(features.ref_lon / TILE_DEG)
    lon_i = np.where(lon_i >= 180 / TILE_DEG, lon_i - 360 / TILE_DEG, lon_i)
    tile = ((lat_i + 90 / TILE_DEG) * (360 / TILE_DEG) + (lon_i + 180 / TILE_DEG)).astype(np.int64)
    return tile, (lon_i + 0.5) * TILE_DEG, (lat_i + 0.5) * TILE_DEG


def reach_m(features) -> np.ndarray:
    """Distance from each part's reference point to its farthest vertex (metres), by the haversine
    formula. :func:`own_tile_projections` gives it as measured in each part's own-tile plane."""
    coords, owner = shapely.get_coordinates(features.geoms, return_index=True)
    d = haversine_m(features.ref_lon[owner], features.ref_lat[owner], coords[:, 0], coords[:, 1])
    return _farthest(d, owner, len(features))


def _farthest(d, owner, n):
    """Largest ``d`` of each geometry 0..n-1 (``owner`` grouped, in order; 0 without vertices)."""
    out = np.zeros(n)
    if len(d):
        starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
        out[owner[starts]] = np.maximum.reduceat(d, starts)
    return out


def query_boxes(bounds: np.ndarray, h_limit_m: float) -> np.ndarray:
    """Each box widened so that it holds every point within ``h_limit_m`` of anything inside it."""
    delta = np.degrees(h_limit_m / EARTH_RADIUS_M) * 1.001 + 1e-9
    miny = bounds[:, 1] - delta
    maxy = bounds[:, 3] + delta
    phi = np.radians(np.maximum(np.abs(bounds[:, 1]), np.abs(bounds[:, 3])))
    sin_d = np.sin(np.radians(delta))
    cos_phi = np.cos(phi)
    polar = (cos_phi <= sin_d) | (maxy >= 90.0) | (miny <= -90.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dlon = np.degrees(np.arcsin(np.clip(sin_d / np.where(polar, 1.0, cos_phi), 0.0, 1.0))) * 1.001 + 1e-9
    minx = np.where(polar, -540.0, bounds[:, 0] - dlon)
    maxx = np.where(polar, 540.0, bounds[:, 2] + dlon)
    return np.column_stack([minx, miny, maxx, maxy])


def own_tile_coordinates(parts: Parts, tile_info, should_stop=None):
    """Every part's vertices projected into the azimuthal-equidistant plane of its own tile, with
    what the candidate search needs of that plane: each part's reach there (the distance from its
    reference point to its farthest vertex, metres; relative error ~1e-4 against the great circle)
    and its box there (as ``shapely.bounds`` gives it for the projected part).

    Returns (xy, reach, box): xy a list of (m, 2) arrays, the projected vertices of the parts of
    each chunk of :func:`_chunk_bounds` as ``shapely.get_coordinates`` orders them;
    :func:`own_tile_geometries` makes the projected parts of them. The work runs in chunks on
    threads, each chunk's arrays a few MB (arrays of the whole planet's ten million vertices
    cost more in the kernel's page faults than in arithmetic)."""
    _, cx, cy = tile_info
    rx, ry = aeqd_forward(parts.ref_lon, parts.ref_lat, cx, cy)
    n = len(parts)
    bounds = _chunk_bounds(n)

    def work(k):
        r = np.arange(bounds[k], bounds[k + 1])
        coords, owner = shapely.get_coordinates(parts.geoms[r], return_index=True)
        x, y = aeqd_forward(coords[:, 0], coords[:, 1], cx[r][owner], cy[r][owner])
        reach = _farthest(np.hypot(x - rx[r][owner], y - ry[r][owner]), owner, len(r))
        # A part's box: its vertices' extent (every part has vertices), except that GEOS takes a
        # polygon's box from its exterior ring alone: a part with holes is measured below.
        first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
        box = np.column_stack([np.minimum.reduceat(x, first), np.minimum.reduceat(y, first),
                               np.maximum.reduceat(x, first), np.maximum.reduceat(y, first)])
        return np.column_stack([x, y]), reach, box

    out = run_parallel(list(range(len(bounds) - 1)), work, should_stop)
    if not out:
        return [], np.zeros(0), np.zeros((0, 4))
    reach = np.concatenate([o[1] for o in out])
    box = np.concatenate([o[2] for o in out])
    holes = np.flatnonzero(shapely.get_num_interior_rings(parts.geoms) > 0)
    if len(holes):
        box[holes] = shapely.bounds(project(parts.geoms[holes], cx[holes], cy[holes], aeqd_forward))
    return [o[0] for o in out], reach, box


def own_tile_geometries(parts: Parts, xy, should_stop=None):
    """The parts projected into their own tiles' planes, from :func:`own_tile_coordinates`; each
    chunk of ``xy`` is let go (set to None) once used."""
    bounds = _chunk_bounds(len(parts))
    out = [np.empty(0, dtype=object)]
    for k in range(len(bounds) - 1):
        stop_if_asked(should_stop)
        chunk = np.array(parts.geoms[bounds[k]:bounds[k + 1]], dtype=object)  # set_coordinates works in place
        # A few hundred parts per call: set_coordinates holds the GIL, and threads working beside
        # this one (the candidate search) wait for it at every call of theirs that takes it back.
        ends = np.r_[0, np.cumsum(shapely.get_num_coordinates(chunk))]
        for a in range(0, len(chunk), _GEOMETRY_CALL):
            b = min(len(chunk), a + _GEOMETRY_CALL)
            chunk[a:b] = shapely.set_coordinates(chunk[a:b], xy[k][ends[a]:ends[b]])
        out.append(chunk)
        xy[k] = None
    return np.concatenate(out)


def _chunk_bounds(n, size=_PROJECT_CHUNK):
    """Bounds 0, size, 2 size, ..., n of the chunks of n items."""
    return np.r_[np.arange(0, n, size), n]


def own_tile_projections(parts: Parts, tile_info, should_stop=None):
    """Every part projected once into the azimuthal-equidistant plane of its own tile, and its
    reach there (:func:`own_tile_coordinates`). Returns (projected parts, reach)."""
    xy, reach, _ = own_tile_coordinates(parts, tile_info, should_stop)
    return own_tile_geometries(parts, xy, should_stop), reach


def part_distances(parts: Parts, i: np.ndarray, j: np.ndarray, tile_info=None, own=None) -> np.ndarray:
    """Distance in metres of each pair of parts (i[k], j[k]), by the model above.

    ``own``: the parts projected into their own tiles (:func:`own_tile_projections`), reused when
    given. A pair is measured in the plane of its anchor's tile (:func:`anchors`), so
    ``part_distances(p, i, j) == part_distances(p, j, i)`` exactly.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    d = np.empty(len(i))
    if len(i) == 0:
        return d
    tile, cx, cy = tile_info if tile_info is not None else tiles(parts)
    both_points = (parts.kind[i] == POINT) & (parts.kind[j] == POINT)
    if both_points.any():
        a, b = i[both_points], j[both_points]
        d[both_points] = haversine_m(parts.ref_lon[a], parts.ref_lat[a], parts.ref_lon[b], parts.ref_lat[b])
    rest = np.flatnonzero(~both_points)
    if len(rest) == 0:
        return d
    ii, jj = anchors(parts, i[rest], j[rest])
    if own is None:
        need = np.unique(np.r_[ii, jj])
        own = np.empty(len(parts), dtype=object)
        own[need] = project(parts.geoms[need], cx[need], cy[need], aeqd_forward)
    other = own[jj]
    cross = np.flatnonzero(tile[ii] != tile[jj])
    if len(cross):
        # Partners from another tile, projected into the anchor's tile, each (j, tile) once.
        key = jj[cross] * (1 << 24) + (tile[ii[cross]] - tile.min())
        ukey, first, inv = np.unique(key, return_index=True, return_inverse=True)
        anchor = ii[cross][first]
        other[cross] = project(parts.geoms[ukey >> 24], cx[anchor], cy[anchor], aeqd_forward)[inv]
    with np.errstate(invalid="ignore"):  # GEOS noise on degenerate rings; results are finite
        d[rest] = shapely.distance(own[ii], other)
    return d


def feature_part_pairs(parts: Parts, n_features: int, i: np.ndarray, j: np.ndarray):
    """Every pair of parts of the feature pairs (i[k], j[k]): (k of each, part of i, part of j),
    grouped by k and, within k, in the order of i's parts, then j's."""
    count = np.bincount(parts.owner, minlength=n_features)
    start = np.r_[0, np.cumsum(count)[:-1]]
    per_pair = count[i] * count[j]
    pair = np.repeat(np.arange(len(i)), per_pair)
    within = np.arange(len(pair)) - np.repeat(np.r_[0, np.cumsum(per_pair)[:-1]], per_pair)
    pa = start[i][pair] + within // count[j][pair]
    pb = start[j][pair] + within % count[j][pair]
    return pair, pa, pb


def pair_distances(features: Features, i: np.ndarray, j: np.ndarray, parts: Parts = None,
                   tile_info=None, own=None) -> np.ndarray:
    """Distance in metres between features i[k] and j[k]: the smallest distance of their parts.

    ``parts`` / ``tile_info`` / ``own``: :func:`split_parts` / :func:`tiles` of the features and the
    parts projected into their own tiles, reused when given (a :class:`Forest` keeps them)."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    parts = split_parts(features) if parts is None else parts
    if len(parts) == len(features):
        return part_distances(parts, i, j, tile_info, own)
    pair, pa, pb = feature_part_pairs(parts, len(features), i, j)
    out = np.full(len(i), np.inf)
    np.minimum.at(out, pair, part_distances(parts, pa, pb, tile_info, own))
    return out


def nearest_parts(features: Features, parts: Parts, i: np.ndarray, j: np.ndarray, tile_info=None):
    """(part of i, part of j) of each pair of features (i[k], j[k]): their nearest pair of parts by
    :func:`part_distances` (ties: the first in :func:`feature_part_pairs` order). Only pairs with
    a multi-part feature are measured."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    count = np.bincount(parts.owner, minlength=len(features))
    start = np.r_[0, np.cumsum(count)[:-1]]
    pa, pb = start[i], start[j]
    multi = np.flatnonzero((count[i] > 1) | (count[j] > 1))
    if len(multi):
        pair, a, b = feature_part_pairs(parts, len(features), i[multi], j[multi])
        d = part_distances(parts, a, b, tile_info)
        order = np.lexsort((np.arange(len(pair)), d, pair))
        first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
        pa[multi], pb[multi] = a[first], b[first]
    return pa, pb


def nearest_points(parts: Parts, i: np.ndarray, j: np.ndarray, tile_info=None):
    """The nearest points of each pair of parts (i[k], j[k]), found in the plane their distance is
    measured in (:func:`part_distances`: a pair of points as they are, otherwise the azimuthal-
    equidistant plane of the anchor's tile, by ``shapely.shortest_line``) and taken back to lon/lat.

    Returns lon/lat (k, 2) of the point on part i and of the point on part j. Touching or
    overlapping parts give one point shared by both."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    k = len(i)
    on_i, on_j = np.empty((k, 2)), np.empty((k, 2))
    if k == 0:
        return on_i, on_j
    tile, cx, cy = tile_info if tile_info is not None else tiles(parts)
    both_points = (parts.kind[i] == POINT) & (parts.kind[j] == POINT)
    if both_points.any():
        on_i[both_points] = shapely.get_coordinates(parts.geoms[i[both_points]])
        on_j[both_points] = shapely.get_coordinates(parts.geoms[j[both_points]])
    rest = np.flatnonzero(~both_points)
    if len(rest) == 0:
        return on_i, on_j
    ii, jj = anchors(parts, i[rest], j[rest])
    lon0, lat0 = cx[ii], cy[ii]
    # Both parts in the anchor's tile plane, where part_distances measures the pair (a partner of
    # the anchor's tile is there in its own plane, one of another tile projected into it); each
    # part projected once per plane.
    who = np.r_[ii, jj]
    key = who * (int(tile.max() - tile.min()) + 1) + (np.r_[tile[ii], tile[ii]] - tile.min())
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    plane = project(parts.geoms[who[first]], np.r_[lon0, lon0][first], np.r_[lat0, lat0][first], aeqd_forward)
    a, b = plane[inv[:len(ii)]], plane[inv[len(ii):]]
    with np.errstate(invalid="ignore"):  # GEOS noise on degenerate rings, as in part_distances
        ends = shapely.get_coordinates(shapely.shortest_line(a, b)).reshape(-1, 2, 2)
    lon, lat = aeqd_inverse(ends[..., 0], ends[..., 1], lon0[:, None], lat0[:, None])
    ends = np.stack([lon, lat], axis=-1)
    swapped = (ii != i[rest])[:, None]
    on_i[rest] = np.where(swapped, ends[:, 1], ends[:, 0])
    on_j[rest] = np.where(swapped, ends[:, 0], ends[:, 1])
    return on_i, on_j


def candidate_pairs(features: Parts, h_limit_m: float, should_stop=None, progress=None, radius=None,
                    tile=None, own_bounds=None):
    """Pairs of parts (i, j), i < j, of different features that may be within ``h_limit_m``, with
    a lower bound of their distance.

    Returns (i, j, lower, n_candidates): the pairs within the bound, sorted by ``lower`` (the
    great-circle distance of the two reference points minus both parts' reach, see
    :func:`reach_m`, at least 0), and the number of pairs whose query boxes met. ``i`` and ``j``
    are int32 while the parts' numbers fit (:func:`_index_dtype`), int64 beyond.
    """
    n = len(features)
    index = _index_dtype(n)
    if n < 2:
        e = np.empty(0, index)
        return e, e, np.empty(0), 0
    tree = shapely.STRtree(_tree_geometries(features))
    boxes = query_boxes(features.bounds, h_limit_m)
    radius = reach_m(features) if radius is None else radius
    tree_minx, tree_maxx = features.bounds[:, 0].min(), features.bounds[:, 2].max()

    def near_pairs(rows):
        i, j = _candidates_rows(tree, boxes, rows, tree_minx, tree_maxx)
        other = features.owner[i] != features.owner[j]    # parts of one feature are joined anyway
        n_other = int(np.count_nonzero(other))
        i, j = i[other], j[other]
        centres = haversine_m(features.ref_lon[i], features.ref_lat[i], features.ref_lon[j], features.ref_lat[j])
        # Margins (0.1 %, 1 m) far above the projected distances' error against the sphere (~1e-4).
        lower = np.maximum(centres * (1 - 1e-3) - (radius[i] + radius[j]) * (1 + 1e-3) - 1.0, 0.0)
        if own_bounds is not None:
            # Pairs in one tile are measured in one plane, where the distance of their boxes is a
            # lower bound too, and a tighter one for elongated shapes.
            same = tile[i] == tile[j]
            a, b = own_bounds[i[same]], own_bounds[j[same]]
            dx = np.maximum(np.maximum(a[:, 0] - b[:, 2], b[:, 0] - a[:, 2]), 0.0)
            dy = np.maximum(np.maximum(a[:, 1] - b[:, 3], b[:, 1] - a[:, 3]), 0.0)
            lower[same] = np.maximum(lower[same], np.hypot(dx, dy))
        near = lower <= h_limit_m
        return n_other, i[near].astype(index), j[near].astype(index), lower[near]

    def work(lo):
        # Each few hundred rows taken to their pairs within the bound before the next: in a dense
        # district a chunk's rows meet over a million boxes, and only those pairs are kept, at
        # 16 bytes each. The chunk's pairs are sorted here, on the worker threads.
        rows = np.arange(lo, min(n, lo + _QUERY_CHUNK))
        out = [near_pairs(r) for r in np.array_split(rows, max(1, len(rows) // 512))]
        lower = np.concatenate([o[3] for o in out])
        order = np.argsort(lower, kind="stable")
        return (sum(o[0] for o in out), np.concatenate([o[1] for o in out])[order],
                np.concatenate([o[2] for o in out])[order], lower[order])

    res = run_parallel(list(range(0, n, _QUERY_CHUNK)), work, should_stop, progress)
    tree = boxes = own_bounds = None   # let go before the sort (near_pairs is done with them)
    n_candidates = sum(r[0] for r in res)
    # One array at a time, each chunk's let go once joined: millions of pairs in a dense
    # district, and the peak memory of the whole run is here. The chunks come sorted, so the
    # stable sort of all pairs merges their runs and keeps the order of the pairs of equal bound
    # as the chunks and, within them, the query rows give it; the bounds are sorted in place (the
    # same stable sort of the same values: the same array as taken in that order).
    pieces = [list(r[1:]) for r in res]
    del res
    lower = np.concatenate([p.pop() for p in pieces])
    order = np.argsort(lower, kind="stable")
    j = np.concatenate([p.pop() for p in pieces])[order]
    i = np.concatenate([p.pop() for p in pieces])[order]
    del pieces, order
    lower.sort(kind="stable")
    return i, j, lower, n_candidates


def _index_dtype(n):
    """int32 for numbers of n parts when they fit, int64 otherwise."""
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def _tree_geometries(parts: Parts):
    """What the candidate search's STRtree is built on: each part itself where its box (as GEOS
    takes it) is its ``bounds``, a box of its ``bounds`` where these differ (longitudes unwrapped
    across ±180). The tree sees only the boxes, so it finds the same pairs as a tree of boxes,
    without a box geometry for every part."""
    differ = np.flatnonzero((shapely.bounds(parts.geoms) != parts.bounds).any(axis=1))
    if len(differ) == 0:
        return parts.geoms
    geoms = np.array(parts.geoms, dtype=object)
    geoms[differ] = shapely.box(*parts.bounds[differ].T)
    return geoms


def _measure(parts, i, j, tile_info, own, should_stop):
    """Exact distances of many pairs of parts, in batches on threads, each sorted by anchor tile."""
    if len(i) == 0:
        return np.empty(0)
    order = np.argsort(tile_info[0][anchors(parts, i, j)[0]], kind="stable")
    # At least four batches, so that a round of a few thousand pairs still uses every core.
    size = max(_PAIR_MIN_BATCH, min(_PAIR_BATCH, -(-len(order) // 4)))
    batches = [order[k:k + size] for k in range(0, len(order), size)]
    out = np.empty(len(i))
    done = run_parallel(batches, lambda b: part_distances(parts, i[b], j[b], tile_info, own), should_stop)
    for b, d in zip(batches, done):
        out[b] = d
    return out


def _prepare(parts, h_limit_m, should_stop=None, progress=None, stats=None, timings=None):
    """Tiles, own-tile projections and the candidate pairs of the parts (timed into ``timings``).

    The projected parts are made (shapely's copies hold the GIL) on a thread of their own while
    the candidate pairs are searched (the tree queries and the arithmetic release it); the
    candidate search's time includes the wait for them."""
    clock = time.perf_counter()
    tile_info = tiles(parts)
    xy, radius, own_bounds = own_tile_coordinates(parts, tile_info, should_stop)
    timings["projection"] = time.perf_counter() - clock
    clock = time.perf_counter()
    release_free_memory()   # what the stages before freed: the run's peak is the search below
    with Beside(lambda stopped: own_tile_geometries(parts, xy, stopped)) as making:   # lets xy go
        i, j, lower, n_candidates = candidate_pairs(parts, h_limit_m, should_stop, progress, radius,
                                                    tile_info[0], own_bounds)
        own = making.result(should_stop)
    stats["candidate_pairs"] = int(n_candidates)
    stats["pairs_within_bound"] = int(len(i))
    timings["candidate_pairs"] = time.perf_counter() - clock
    return tile_info, own, i, j, lower


def single_linkage_forest(features: Features, h_limit_m: float, progress=None, should_stop=None,
                          stats=None, timings=None) -> "Forest":
    """The minimum spanning forest of all pairs within ``h_limit_m``: single linkage up to it.

    Kruskal's algorithm in rounds of increasing lower bound, measuring a pair only when it could
    still join two components: a pair whose ends are already joined by links shorter than its lower
    bound cannot be in the forest (cycle property). In dense mining districts most pairs are
    skipped this way, and the forest is still exactly the one of the full distance graph.
    It runs on the parts (:func:`split_parts`), each feature's parts forming one component from
    the start; the forest's edges join features.
    """
    n = len(features)
    stats = {} if stats is None else stats
    timings = {} if timings is None else timings
    report = progress if progress is not None else (lambda r: None)
    parts = split_parts(features)
    stats["parts"] = int(len(parts))
    tile_info, own, i, j, lower = _prepare(parts, h_limit_m, should_stop, lambda r: report(0.15 * r),
                                           stats, timings)
    timings["distances"] = 0.0
    clock = time.perf_counter()
    cutoffs = np.unique(np.r_[np.quantile(lower, np.linspace(0, 1, _ROUNDS + 1)[1:]) if len(lower) else [],
                              h_limit_m])
    cutoffs = cutoffs[cutoffs <= h_limit_m]
    owner = parts.owner
    comp = owner.copy()      # component of each part: its feature's, to begin with
    label = np.arange(n)     # component of each feature, numbered in order of its first feature
    fu, fv, fw = [], [], []
    pend_i, pend_j, pend_d = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    measured, start = 0, 0
    for r, cut in enumerate(cutoffs):
        stop_if_asked(should_stop)
        end = len(lower) if r == len(cutoffs) - 1 else int(np.searchsorted(lower, cut, side="right"))
        bi, bj = i[start:end], j[start:end]
        start = end
        open_ = comp[bi] != comp[bj]
        bi, bj = bi[open_], bj[open_]
        t_measure = time.perf_counter()
        d = _measure(parts, bi, bj, tile_info, own, should_stop)
        timings["distances"] += time.perf_counter() - t_measure
        measured += len(bi)
        near = d <= h_limit_m + TIE_TOLERANCE_M
        still = comp[pend_i] != comp[pend_j]
        pend_i = np.r_[pend_i[still], bi[near]]
        pend_j = np.r_[pend_j[still], bj[near]]
        pend_d = np.r_[pend_d[still], d[near]]
        # Strictly: links of the forest stay shorter than the lower bound of later rounds' pairs.
        ready = pend_d <= cut if r < len(cutoffs) - 1 else np.ones(len(pend_d), bool)
        if ready.any():
            a, b, w = _kruskal_on_components(comp, pend_i[ready], pend_j[ready], pend_d[ready])
            fu.append(owner[a])
            fv.append(owner[b])
            fw.append(w)
            pend_i, pend_j, pend_d = pend_i[~ready], pend_j[~ready], pend_d[~ready]
            # The components joined by the new links, as connected_components numbers those of
            # all links so far (in order of each one's first feature): the old components are so
            # numbered, so the first feature of a joined one is that of its lowest old component.
            k = int(label.max()) + 1
            g = sp.coo_matrix((np.ones(len(a), np.int8), (label[owner[a]], label[owner[b]])), shape=(k, k)).tocsr()
            label = connected_components(g, directed=False)[1][label]
            comp = label[owner]
        report(0.15 + 0.85 * (r + 1) / len(cutoffs))
    stats["measured_pairs"] = int(measured)
    timings["forest"] = time.perf_counter() - clock - timings["distances"]
    u = np.concatenate(fu) if fu else np.empty(0, np.int64)
    v = np.concatenate(fv) if fv else np.empty(0, np.int64)
    w = np.concatenate(fw) if fw else np.empty(0)
    order = np.argsort(w, kind="stable")
    stats["forest_edges"] = int(len(w))
    return Forest(n, u[order], v[order], w[order], h_limit_m, parts, tile_info, own)


def distance_graph(features: Features, h_limit_m: float):
    """Every pair of features within ``h_limit_m`` with its distance: (i, j, d), i < j.

    The full graph that the forest avoids measuring (for the baseline benchmark and tests)."""
    parts = split_parts(features)
    tile_info, own, i, j, _lower = _prepare(parts, h_limit_m, stats={}, timings={})
    d = _measure(parts, i, j, tile_info, own, None)
    keep = d <= h_limit_m + TIE_TOLERANCE_M
    a, b, d = parts.owner[i[keep]], parts.owner[j[keep]], d[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * max(len(features), 1) + hi
    order = np.lexsort((d, key))
    first = order[np.r_[True, np.diff(key[order]) != 0]] if len(order) else order
    return lo[first], hi[first], d[first]


def _kruskal_on_components(comp, a, b, d):
    """The pairs (a, b, d) that a minimum spanning forest adds on top of the components ``comp``.

    Components are contracted to nodes; of several pairs between two components only the shortest
    can matter. scipy's csgraph reads an explicit 0 as "no edge", so weights are shifted by +1 m
    (a constant shift does not change which forest is minimal).
    """
    ca, cb = comp[a], comp[b]
    lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
    nodes, inv = np.unique(np.r_[lo, hi], return_inverse=True)
    lo, hi = inv[:len(a)], inv[len(a):]
    m = len(nodes)
    key = lo.astype(np.int64) * m + hi
    order = np.lexsort((d, key))
    first = order[np.r_[True, np.diff(key[order]) != 0]]
    g = sp.coo_matrix((d[first] + 1.0, (lo[first], hi[first])), shape=(m, m)).tocsr()
    t = minimum_spanning_tree(g).tocoo()
    pick_key = np.minimum(t.row, t.col).astype(np.int64) * m + np.maximum(t.row, t.col)
    chosen = first[np.searchsorted(key[first], pick_key)]  # key[first] is sorted
    return a[chosen], b[chosen], d[chosen]


def _candidates_rows(tree, boxes, rows, tree_minx, tree_maxx):
    """Pairs (i, j), i < j, whose boxes meet, for the query elements `rows` (±360 shifts included)."""
    out_i, out_j = [], []
    for shift in (0.0, -360.0, 360.0):
        b = boxes[rows].copy()
        b[:, [0, 2]] += shift
        sel = np.flatnonzero((b[:, 2] >= tree_minx) & (b[:, 0] <= tree_maxx)) if shift else np.arange(len(b))
        if len(sel) == 0:
            continue
        qi, tj = tree.query(shapely.box(b[sel, 0], b[sel, 1], b[sel, 2], b[sel, 3]))
        i = rows[sel[qi]]
        keep = i < tj
        out_i.append(i[keep])
        out_j.append(tj[keep])
    i = np.concatenate(out_i).astype(np.int64)
    j = np.concatenate(out_j).astype(np.int64)
    if len(i) == 0:
        return i, j
    key = np.unique(i * (1 << 32) + j)
    return key >> 32, key & ((1 << 32) - 1)


def dense_distance_matrix(features: Features, indices) -> np.ndarray:
    """Brute force: the full distance matrix of the given features, by the same distance model.

    For tests and the baseline benchmark only: it needs n² memory.
    """
    idx = np.asarray(indices, dtype=np.int64)
    n = len(idx)
    a, b = np.triu_indices(n, 1)
    gi, gj = idx[a], idx[b]
    swap = gi > gj
    gi, gj = np.where(swap, gj, gi), np.where(swap, gi, gj)
    d = pair_distances(features, gi, gj)
    out = np.zeros((n, n))
    out[a, b] = d
    out[b, a] = d
    return out
