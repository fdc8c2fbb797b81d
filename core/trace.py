"""Traceability (issue 12): why each feature is in its cluster, from the result of a run alone.

A final cluster is held together by *links*: the edges of its processing group's minimum spanning
forest (the exact single linkage of :mod:`.linkage`) no longer than the group's chosen threshold
(ties within :data:`.linkage.TIE_TOLERANCE_M` join, as :meth:`.linkage.Forest.labels` cuts). A
cluster of k elements has exactly k - 1 links, a tree. From them:

- :func:`link_table`: the links (``ClusterResult.links()``); :func:`link_lines` draws each as the
  shortest connection of its two features, a great-circle line cut at ±180°.
- :func:`via_columns`: per element, the point with a primary commodity of its cluster that is
  nearest *along the links* (the chain that brought the commodity), the chain's length in links
  and its longest link (below that threshold the element loses this point).
- :func:`stable_range`: per element, the candidate thresholds over which its cluster's primary
  commodity set stays the one it has at its chosen threshold.
- :func:`concordance` (``ClusterResult.concordance()``): each element's cluster and primary
  commodities at every candidate threshold (the R implementation's concordance table, paper
  Fig. A.12).

:class:`Trace` is what a ``ClusterResult`` keeps for this: plain arrays, no geometry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import breadth_first_order, connected_components

from .commodities import join_names
from .features import LAYER_NAMES, POINT, Features
from .geodesy import EARTH_RADIUS_M
from .linkage import TIE_TOLERANCE_M, nearest_parts, nearest_points, pair_distances, split_parts, tiles
from .parallel import run_parallel
from .progress import stop_if_asked

#: Links per task of :func:`link_lines`.
_CHUNK = 20000
#: Pairs per task of the via distances (a task's projection holds ~5 kB per pair a while).
_VIA_CHUNK = 8192
#: Default spacing (metres) of the vertices of a link's great-circle line.
LINK_VERTEX_SPACING_M = 1000.0
#: Layer name of each element kind, as an array (index: features.POLYGON / POINT).
_LAYER = np.array([LAYER_NAMES[k] for k in sorted(LAYER_NAMES)], dtype=object)


@dataclass
class Trace:
    """What traceability needs of a run, per linkage element in the engine's element order
    (``Features`` order: polygons, then points, each by feature id and part). No geometry."""

    kind: np.ndarray             # int8: features.POLYGON or POINT
    feature_id: np.ndarray       # int64: the input feature id
    part: np.ndarray             # int32: part of a MultiPoint (0 otherwise)
    index: np.ndarray            # int64: position of the feature in the input list
    cluster_id: np.ndarray       # int64: final cluster, 1..K as in the result's tables
    chosen: np.ndarray           # int64: index into thresholds_m of the element's chosen threshold
    # (T, n) int32: cluster at each candidate threshold (the global cut), 0..k-1 numbered in order
    # of each cluster's first element
    cut_labels: np.ndarray
    forest_u: np.ndarray         # int64: ends of the forest's edges (elements), by weight
    forest_v: np.ndarray
    forest_weight_m: np.ndarray  # float64, ascending
    primary: sp.csr_matrix       # (n, n_commodities) bool: the points' primary commodities
    names: list                  # display name of each commodity code

    def __len__(self):
        return len(self.kind)


@dataclass
class LinkTable:
    """The links of the final clusters (see :func:`link_table`), one row per link, columns named as
    ``LINK_FIELDS``; ``from_element`` / ``to_element`` are the linked elements (engine order)."""

    cluster_id: np.ndarray
    from_layer: list
    from_fid: np.ndarray
    from_part: np.ndarray
    to_layer: list
    to_fid: np.ndarray
    to_part: np.ndarray
    distance_m: np.ndarray
    threshold_m: np.ndarray
    from_element: np.ndarray
    to_element: np.ndarray

    def __len__(self):
        return len(self.cluster_id)


@dataclass
class Concordance:
    """Each element's cluster and primary commodities at every candidate threshold.

    ``fields``: ((name, kind), ...) in column order, kind "int" or "string"; ``columns``: name ->
    column (numpy array for "int", list for "string", None for NULL). Columns are attributes too
    (``c.cluster_1000``), so a writer reads it like any other core table. ``element``: the engine
    element of each row; ``index``: the feature's position in the input list."""

    fields: tuple
    columns: dict
    element: np.ndarray
    index: np.ndarray

    def __getattr__(self, name):
        if name == "columns":           # not set yet (copy, unpickling)
            raise AttributeError(name)
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None

    def __len__(self):
        return len(self.element)


# --------------------------------------------------------------------------- links

def link_edges(trace: Trace, thresholds_m: np.ndarray) -> np.ndarray:
    """Indices of the forest edges that are links: no longer than the chosen threshold of their
    ends' group (+ the tie tolerance, exactly as a cut joins) and inside one final cluster."""
    u, v, w = trace.forest_u, trace.forest_v, trace.forest_weight_m
    if len(w) == 0:
        return np.zeros(0, dtype=np.int64)
    h = np.asarray(thresholds_m, dtype=float)[trace.chosen[u]]
    keep = (w <= h + TIE_TOLERANCE_M) & (trace.cluster_id[u] == trace.cluster_id[v])
    return np.flatnonzero(keep)


def link_table(trace: Trace, thresholds_m: np.ndarray) -> LinkTable:
    """The links of every final cluster: k - 1 per cluster of k elements.

    Each link joins its two elements in engine order (``from`` the one first in it: polygons before
    points, then by feature id and part); rows are sorted by cluster id, then distance, then the
    elements. ``distance_m`` is the forest's own edge weight (the engine's distance model),
    ``threshold_m`` the cluster's chosen threshold."""
    e = link_edges(trace, thresholds_m)
    u, v = trace.forest_u[e], trace.forest_v[e]
    a, b, w = np.minimum(u, v), np.maximum(u, v), trace.forest_weight_m[e]
    order = np.lexsort((b, a, w, trace.cluster_id[a]))
    a, b, w = a[order], b[order], w[order]
    return LinkTable(
        cluster_id=trace.cluster_id[a].copy(),
        from_layer=_LAYER[trace.kind[a]].tolist(), from_fid=trace.feature_id[a].copy(),
        from_part=trace.part[a].astype(np.int64), to_layer=_LAYER[trace.kind[b]].tolist(),
        to_fid=trace.feature_id[b].copy(), to_part=trace.part[b].astype(np.int64), distance_m=w.copy(),
        threshold_m=np.asarray(thresholds_m, dtype=float)[trace.chosen[a]], from_element=a, to_element=b)


# --------------------------------------------------------------------------- why: the via chain

def _rooted(n: int, a: np.ndarray, b: np.ndarray):
    """A forest on nodes 0..n-1 (edges a-b) rooted at the smallest node of each tree, walked
    breadth first: (parent of each node, -1 for a root; BFS order; bounds of its levels).

    One scipy BFS from a virtual node n joined to every root. In BFS order a level is a
    contiguous run and the parents' positions never decrease, so level L + 1 ends where the first
    node whose parent lies beyond level L begins. ``order[bounds[L]:bounds[L + 1]]`` is level L:
    level 0 the virtual node, level 1 the roots."""
    g = sp.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)).tocsr()
    comp = connected_components(g, directed=False)[1]
    roots = np.unique(comp, return_index=True)[1]
    rows = np.r_[a, b, np.full(len(roots), n)]
    cols = np.r_[b, a, roots]
    full = sp.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1))
    order, pred = breadth_first_order(full, n, directed=True, return_predecessors=True)
    pos = np.empty(n + 1, dtype=np.int64)
    pos[order] = np.arange(n + 1)
    parent_pos = np.r_[-1, pos[pred[order[1:]]]]
    bounds = [0, 1]
    while bounds[-1] < n + 1:
        bounds.append(int(np.searchsorted(parent_pos, bounds[-1], side="left")))
    parent = pred[:n].astype(np.int64)
    parent[parent == n] = -1
    return parent, order, bounds


def _better(d1, l1, s1, d2, l2, s2):
    """(d1, l1, s1) < (d2, l2, s2) lexicographically: shorter chain, then fewer links, then the
    source first in node order."""
    return (d1 < d2) | ((d1 == d2) & ((l1 < l2) | ((l1 == l2) & (s1 < s2))))


def nearest_sources(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, is_source: np.ndarray,
                    should_stop=None):
    """For every node of a forest (edges a-b of length w), its nearest source along the forest.

    "Nearest": the smallest sum of edge lengths on the tree path; ties: fewest edges, then the
    source first in node order. Returns (source node, -1 where its tree has none; path length;
    number of edges; longest edge on the path), a source itself having 0 edges and 0.0.

    Exact on trees in two vectorised sweeps over the BFS levels: up (children before parents),
    each node gets the best source of its own subtree; down (parents before children), the better
    of that and its parent's best one edge further. A parent's best that lies in the child's own
    subtree comes back no shorter and with two more edges, so it never wins. A path length is
    always summed from its source outwards, so both sweeps add the same numbers in the same order.
    """
    dist = np.where(is_source, 0.0, np.inf)
    links = np.where(is_source, 0, np.iinfo(np.int64).max // 2).astype(np.int64)
    src = np.where(is_source, np.arange(n), -1).astype(np.int64)
    big = np.where(is_source, 0.0, np.nan)
    if n == 0 or not is_source.any() or len(a) == 0:
        return src, dist, links, big
    parent, order, bounds = _rooted(n, a, b)
    up = np.zeros(n)                         # length of each node's edge to its parent
    child = np.where(parent[a] == b, a, b)
    up[child] = w
    levels = [order[bounds[k]:bounds[k + 1]] for k in range(2, len(bounds) - 1)]  # below the roots

    def take(to, cd, cl, cs, cm):
        win = _better(cd, cl, cs, dist[to], links[to], src[to])
        to = to[win]
        dist[to], links[to], src[to], big[to] = cd[win], cl[win], cs[win], cm[win]

    for k, c in enumerate(reversed(levels)):        # up: each parent, its children's best
        if k % 64 == 0:
            stop_if_asked(should_stop)
        c = c[src[c] >= 0]
        p = parent[c]
        cd, cl, cs, cm = dist[c] + up[c], links[c] + 1, src[c], np.fmax(big[c], up[c])
        o = np.lexsort((cs, cl, cd, p))
        o = o[np.r_[True, p[o][1:] != p[o][:-1]]] if len(o) else o
        take(p[o], cd[o], cl[o], cs[o], cm[o])
    for k, c in enumerate(levels):                  # down: each child, its parent's best
        if k % 64 == 0:
            stop_if_asked(should_stop)
        p = parent[c]
        c, p = c[src[p] >= 0], p[src[p] >= 0]
        take(c, dist[p] + up[c], links[p] + 1, src[p], np.fmax(big[p], up[c]))
    return src, dist, links, big


def via_columns(trace: Trace, thresholds_m: np.ndarray, features: Features, parts=None, tile_info=None,
                should_stop=None, own=None) -> dict:
    """Per element (engine order), the chain to a primary commodity: ``via_element`` (-1: none),
    ``via_point_fid`` (list, None: none), ``via_distance_m`` (NaN: none), ``via_links`` (list,
    None: none), ``via_max_link_m`` (NaN: none), ``via_path_m`` (the chain's summed links).

    The via point is the point with a primary commodity of the element's final cluster nearest
    along the cluster's links (:func:`nearest_sources`: shortest chain, then fewest links, then
    the point first in engine order, i.e. smallest feature id, then part). ``via_distance_m`` is
    the distance of the element and that point by the engine's model
    (:func:`.linkage.pair_distances`), 0 for the point itself, whose chain has 0 links and a
    longest link of 0. ``parts`` / ``tile_info`` / ``own``: as :func:`.linkage.pair_distances`."""
    n = len(trace)
    e = link_edges(trace, thresholds_m)
    is_source = (trace.kind == POINT) & (np.diff(trace.primary.indptr) > 0)
    src, path, links, big = nearest_sources(n, trace.forest_u[e], trace.forest_v[e],
                                            trace.forest_weight_m[e], is_source, should_stop)
    has = src >= 0
    direct = np.where(has, 0.0, np.nan)
    far = np.flatnonzero(has & (src != np.arange(n)))
    if len(far):
        parts = split_parts(features) if parts is None else parts
        chunks = [far[k:k + _VIA_CHUNK] for k in range(0, len(far), _VIA_CHUNK)]
        done = run_parallel(chunks, lambda r: pair_distances(features, r, src[r], parts, tile_info, own),
                            should_stop)
        for r, d in zip(chunks, done):
            direct[r] = d
    return dict(via_element=src, via_point_fid=_nullable(trace.feature_id[np.maximum(src, 0)], has),
                via_distance_m=direct, via_links=_nullable(links, has),
                via_max_link_m=np.where(has, big, np.nan), via_path_m=np.where(has, path, np.nan))


def _nullable(values, present) -> list:
    """An int column as a list of Python ints, None where not ``present``."""
    out = np.asarray(values).astype(object)
    out[~np.asarray(present, dtype=bool)] = None
    return out.tolist()


# --------------------------------------------------------------------------- why: stability

def stable_range(cut_labels: np.ndarray, n_primary: list, chosen: np.ndarray, thresholds_m: np.ndarray):
    """(stable_from_m, stable_to_m) of every element: the smallest and largest candidate threshold
    at which the primary commodity set of its cluster (the global cut at that threshold) is the
    one it has at its chosen threshold. ``n_primary[k]``: the number of distinct primaries of each
    cluster of ``cut_labels[k]``.

    Why counting is enough: the cuts of one single-linkage forest are nested (a cut at h joins
    every link <= h, so the cluster of an element at h lies inside its cluster at any h' > h), and
    a cluster's primary set is a union over its points, so it can only grow with h: set(h) is a
    subset of set(h'). A subset with as many elements is the same set; so the set at h equals the
    one at the chosen h exactly where the counts are equal, and those h form one run of
    candidates round the chosen one."""
    t = np.asarray(thresholds_m, dtype=float)
    T, n = cut_labels.shape
    rows = np.arange(n)
    base = np.empty(n, dtype=np.int64)
    for k in range(T):
        sel = rows[chosen == k]
        base[sel] = n_primary[k][cut_labels[k, sel]]
    first = np.full(n, T, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    for k in range(T):
        same = n_primary[k][cut_labels[k]] == base
        first = np.where(same & (first == T), k, first)
        last = np.where(same, k, last)
    return t[first], t[last]


# --------------------------------------------------------------------------- concordance

def threshold_name(h: float) -> str:
    """A field-name-safe spelling of a threshold in metres: "1000" for 1000.0, "1500_5" for
    1500.5 (repr's digits with "." as "_", "+" dropped, "-" as "m")."""
    h = float(h)
    if h.is_integer() and abs(h) < 1e15:
        return str(int(h))
    return repr(h).replace(".", "_").replace("+", "").replace("-", "m")


def cluster_primaries(labels: np.ndarray, primary: sp.csr_matrix, names: list) -> np.ndarray:
    """Primary commodities (sorted comma list as ``join_names``, None for none) of each cluster
    0..k-1 of ``labels``, as an object array."""
    n = len(labels)
    k = int(labels.max()) + 1 if n else 0
    onehot = sp.csr_matrix((np.ones(n, dtype=np.int32), (labels, np.arange(n))), shape=(k, n))
    m = (onehot @ primary.astype(np.int32)).tocsr()
    m.eliminate_zeros()
    return names_of_rows(m, names)


def names_of_rows(m: sp.csr_matrix, names: list) -> np.ndarray:
    """The commodity names of each row of a (rows, commodities) count matrix with no stored
    zeros, as ``join_names`` gives them (sorted comma list, None for none), an object array; a
    row of one commodity, most of them, is looked up without a Python loop."""
    count = np.diff(m.indptr)
    out = np.full(m.shape[0], None, dtype=object)
    one = np.flatnonzero(count == 1)
    if len(one):
        out[one] = np.asarray(names, dtype=object)[m.indices[m.indptr[one]]]
    for r in np.flatnonzero(count > 1):
        out[r] = join_names(names[c] for c in m.indices[m.indptr[r]:m.indptr[r + 1]])
    return out


def concordance(trace: Trace, thresholds_m: np.ndarray, should_stop=None) -> Concordance:
    """Each element's cluster and primary commodities at every candidate threshold (the R
    implementation's concordance table, paper Fig. A.12): rows polygons then points in input
    order (per part for MultiPoints); fields ``layer``, ``feature_id``, ``part``, ``cluster_<h>`` for
    every candidate h, then ``primary_<h>`` for every h (h spelled by :func:`threshold_name`).
    ``feature_id``, not ``fid``: a GeoPackage takes a field named fid for its unique feature id,
    which the parts of a MultiPoint share.
    ``cluster_<h>`` is the element's cluster in the global cut at h, 1..k numbered in engine order
    (polygons first, by feature id), one id one cluster within a column; ``primary_<h>`` that
    cluster's primary commodities."""
    t = np.asarray(thresholds_m, dtype=float)
    rows = np.lexsort((trace.part, trace.index, trace.kind))
    spelled = [threshold_name(h) for h in t]
    columns = {"layer": _LAYER[trace.kind[rows]].tolist(), "feature_id": trace.feature_id[rows].copy(),
               "part": trace.part[rows].astype(np.int64)}
    fields = [("layer", "string"), ("feature_id", "int"), ("part", "int")]
    for k, name in enumerate(spelled):
        columns[f"cluster_{name}"] = trace.cut_labels[k, rows].astype(np.int64) + 1
        fields.append((f"cluster_{name}", "int"))
    for k, name in enumerate(spelled):
        stop_if_asked(should_stop)
        per_cluster = cluster_primaries(trace.cut_labels[k], trace.primary, trace.names)
        columns[f"primary_{name}"] = per_cluster[trace.cut_labels[k, rows]].tolist()
        fields.append((f"primary_{name}", "string"))
    return Concordance(fields=tuple(fields), columns=columns, element=rows, index=trace.index[rows].copy())


# --------------------------------------------------------------------------- link geometry

def link_lines(result, features: Features, links: Optional[LinkTable] = None,
               spacing_m: float = LINK_VERTEX_SPACING_M, progress: Optional[Callable[[float], None]] = None,
               should_stop: Optional[Callable[[], bool]] = None) -> np.ndarray:
    """The shape of every link of ``result.links()`` (or of ``links``), in its row order: a shapely
    MultiLineString in lon/lat from the nearest point of the ``from`` feature to the nearest point
    of the ``to`` feature.

    The nearest points are found where the link's distance was measured (the azimuthal-
    equidistant plane of the pair's anchor tile, :func:`.linkage.nearest_points`; of a
    MultiPolygon, the part nearest the other feature) and taken back to lon/lat; the line between
    them follows the great circle, with a vertex at least every ``spacing_m`` metres, and is cut at
    ±180° into two parts so that it draws right across the antimeridian. A link of length 0
    (touching or overlapping features) is one part of two equal points, where they meet.
    ``features``: the ones the result was computed from. ``progress`` / ``should_stop`` as
    everywhere in the core."""
    trace = result.trace
    if (len(features) != len(trace) or not np.array_equal(features.feature_id, trace.feature_id)
            or not np.array_equal(features.kind, trace.kind)):
        raise ValueError("link_lines needs the Features the result was computed from.")
    if not np.isfinite(spacing_m) or spacing_m <= 0:
        raise ValueError(f"The vertex spacing must be a positive distance in metres, got {spacing_m}.")
    links = result.links() if links is None else links
    k = len(links)
    if k == 0:
        return np.empty(0, dtype=object)
    parts = split_parts(features)
    tile_info = tiles(parts)
    a, b = np.asarray(links.from_element), np.asarray(links.to_element)

    def work(r):
        pa, pb = nearest_parts(features, parts, a[r], b[r], tile_info)
        on_a, on_b = nearest_points(parts, pa, pb, tile_info)
        return great_circle_lines(on_a, on_b, spacing_m)

    chunks = [np.arange(s, min(k, s + _CHUNK)) for s in range(0, k, _CHUNK)]
    return np.concatenate(run_parallel(chunks, work, should_stop, progress))


def _unit(lon, lat) -> np.ndarray:
    lon, lat = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def great_circle_lines(start: np.ndarray, end: np.ndarray, spacing_m: float = LINK_VERTEX_SPACING_M) -> np.ndarray:
    """MultiLineStrings (lon/lat) along the great circle from each start to each end ((k, 2)
    lon/lat): ceil(length / spacing_m) equal steps (at least one), the ends exactly as given, cut
    at ±180° (:func:`_cut_at_antimeridian`)."""
    k = len(start)
    pa, pb = _unit(start[:, 0], start[:, 1]), _unit(end[:, 0], end[:, 1])
    omega = np.arctan2(np.linalg.norm(np.cross(pa, pb), axis=1), np.sum(pa * pb, axis=1))
    steps = np.maximum(1, np.ceil(omega * EARTH_RADIUS_M / spacing_m)).astype(np.int64)
    line = np.repeat(np.arange(k), steps + 1)
    first = np.r_[0, np.cumsum(steps + 1)[:-1]].astype(np.int64)
    t = (np.arange(len(line)) - first[line]) / steps[line]
    om = omega[line]
    s = np.sin(om)
    small = s < 1e-12                       # equal (or antipodal) ends: straight interpolation
    safe = np.where(small, 1.0, s)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * om) / safe)
    wb = np.where(small, t, np.sin(t * om) / safe)
    # each coordinate in its own contiguous array: numpy's vector loops over strided columns
    # gave results that differed in the last bit from run to run on threads
    x, y, z = (wa * pa[line, i] + wb * pb[line, i] for i in range(3))
    lon = np.degrees(np.arctan2(y, x))
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    last = first + steps
    lon[first], lat[first] = start[:, 0], start[:, 1]
    lon[last], lat[last] = end[:, 0], end[:, 1]
    return _cut_at_antimeridian(lon, lat, line, k)


def _cut_at_antimeridian(lon, lat, line, k) -> np.ndarray:
    """MultiLineStrings of k vertex runs (lon/lat within ±180°; ``line``: the run of each vertex,
    grouped). A step whose longitude changes by more than 180° crosses ±180° (drawn straight in
    lon/lat it would go round the world): it is cut where the great circle through its ends meets
    the antimeridian, the part on this side ends at ±180° and a new part begins on the other."""
    n = len(lon)
    same = line[1:] == line[:-1]
    dlon = np.diff(lon)
    cross = np.flatnonzero(same & (np.abs(dlon) > 180.0))
    start = np.r_[0, np.flatnonzero(~same) + 1]
    bump = np.zeros(n, dtype=np.int64)
    bump[cross + 1] = 1                      # a new part begins at the vertex after a crossing
    csum = np.cumsum(bump)
    part = csum - np.repeat(csum[start], np.diff(np.r_[start, n]))     # part of each vertex
    n_parts = part[np.r_[start[1:] - 1, n - 1]] + 1
    owner = np.r_[0, np.cumsum(n_parts)[:-1]][line] + part            # global part of each vertex
    x, y = lon, lat
    if len(cross):
        u = _unit(lon[cross], lat[cross])
        v = _unit(lon[cross + 1], lat[cross + 1])
        nrm = np.cross(u, v)
        # the circle's point of longitude 180, (-cos phi, 0, sin phi): n . X = 0, phi in [-90, 90]
        sign = np.where(nrm[:, 2] < 0, -1.0, 1.0)
        lat_c = np.degrees(np.arctan2(sign * nrm[:, 0], np.abs(nrm[:, 2])))
        east = dlon[cross] < 0                   # e.g. 179.9 -> -179.9: leaves at +180
        x = np.r_[lon, np.where(east, 180.0, -180.0), np.where(east, -180.0, 180.0)]
        y = np.r_[lat, lat_c, lat_c]
        key = np.r_[2 * np.arange(n), 2 * cross + 1, 2 * cross + 1]
        owner = np.r_[owner, owner[cross], owner[cross] + 1]
        o = np.lexsort((key, owner))
        x, y, owner = x[o], y[o], owner[o]
    pieces = shapely.linestrings(np.column_stack([x, y]), indices=owner)
    return shapely.multilinestrings(pieces, indices=np.repeat(np.arange(k), n_parts))
