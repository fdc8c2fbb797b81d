"""Mine clusters: cuts at every candidate threshold, global and local Pareto optima, H_max
meta-optimisation (METHOD.md), on the exact single-linkage forest of :mod:`.linkage`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .features import POINT, POLYGON, Features
from .geometry import object_array
from .linkage import single_linkage_forest
from .optimise import choose, pareto_distance
from .progress import stop_if_asked
from .schema import SENSITIVITY_FIELDS
from .trace import (Concordance, LinkTable, Trace, concordance, link_table, names_of_rows, stable_range,
                    via_columns)

ASSIGNED, UNASSIGNED, MULTIPLE = "assigned", "unassigned", "multiple"
METHODS = ("local", "global")
FORMULAS = ("eq1", "r")


@dataclass
class Curve:
    """A_u %, A_m % and E over candidate thresholds (global) or H_max values (local)."""

    threshold_m: np.ndarray
    area_unassigned_pct: np.ndarray
    area_multi_pct: np.ndarray
    distance: np.ndarray
    chosen_index: int

    @property
    def chosen_threshold_m(self) -> float:
        return float(self.threshold_m[self.chosen_index])


@dataclass
class ElementTable:
    """One row per polygon feature or per point part, in input order (see core/API.md)."""

    feature_id: np.ndarray
    part: np.ndarray
    index: np.ndarray
    cluster_id: np.ndarray
    threshold_m: np.ndarray
    primary_commodities: list
    commodities: list
    status: list
    area_m2: np.ndarray
    # Why the element is in its cluster (core/trace.py; None / NaN where the cluster has no
    # primary commodity): the point with a primary commodity nearest along the cluster's links,
    # the element's distance to it, the links on that chain and the longest of them; and the
    # candidate thresholds between which its cluster's primary set stays as it is.
    via_point_fid: list = None
    via_distance_m: np.ndarray = None
    via_links: list = None
    via_max_link_m: np.ndarray = None
    stable_from_m: np.ndarray = None
    stable_to_m: np.ndarray = None

    def __len__(self):
        return len(self.feature_id)


@dataclass
class ClusterTable:
    cluster_id: np.ndarray
    threshold_m: np.ndarray
    primary_commodities: list
    commodities: list
    status: list
    n_polygons: np.ndarray
    n_points: np.ndarray
    area_m2: np.ndarray

    def __len__(self):
        return len(self.cluster_id)


@dataclass
class GroupTable:
    """Processing groups of the final run and the threshold each chose."""

    group_id: np.ndarray
    chosen_threshold_m: np.ndarray
    area_m2: np.ndarray
    n_polygons: np.ndarray
    n_points: np.ndarray

    def __len__(self):
        return len(self.group_id)


@dataclass
class ClusterResult:
    polygons: ElementTable
    points: ElementTable
    clusters: ClusterTable
    groups: GroupTable
    global_curve: Curve
    local_curve: Curve
    max_threshold_m: float
    global_threshold_m: float
    area_unassigned_pct: float
    area_multi_pct: float
    total_area_m2: float
    method: str
    weight: float
    formula: str
    thresholds_m: np.ndarray
    h_limit_m: float
    dropped: list
    timings: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    trace: Trace = None      # what links() and concordance() need (core/trace.py): no geometry

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    def links(self) -> LinkTable:
        """The links that hold each final cluster together (``LINK_FIELDS``; core/trace.py): the
        edges of each processing group's minimum spanning forest no longer than its chosen
        threshold, k - 1 per cluster of k elements, sorted by cluster, distance, elements."""
        return link_table(self.trace, self.thresholds_m)

    def concordance(self, should_stop: Optional[Callable[[], bool]] = None) -> Concordance:
        """Each element's cluster (``cluster_<h>``) and primary commodities (``primary_<h>``) at
        every candidate threshold h; rows and fields as core/trace.py's ``concordance``."""
        return concordance(self.trace, self.thresholds_m, should_stop)

    def sensitivity_rows(self) -> list:
        """Rows of the sensitivity table (keys of ``SENSITIVITY_FIELDS``): global then local curve."""
        rows = []
        for name, curve in (("global", self.global_curve), ("local", self.local_curve)):
            for k in range(len(curve.threshold_m)):
                rows.append(dict(zip([f for f, _ in SENSITIVITY_FIELDS], (
                    name, float(curve.threshold_m[k]), float(curve.area_unassigned_pct[k]),
                    float(curve.area_multi_pct[k]), float(curve.distance[k]),
                    int(k == curve.chosen_index)))))
        return rows


def candidate_thresholds(h_limit_m: float, thresholds_m=None, threshold_step_m: float = 1000.0) -> np.ndarray:
    """The sorted candidate thresholds (metres), checked against ``h_limit_m``."""
    if not np.isfinite(h_limit_m) or h_limit_m <= 0:
        raise InputError(f"The pre-grouping limit H_limit must be a positive distance in metres, got {h_limit_m}.")
    if thresholds_m is None:
        if not np.isfinite(threshold_step_m) or threshold_step_m <= 0:
            raise InputError(f"The threshold step must be a positive distance in metres, got {threshold_step_m}.")
        k = int(np.floor(h_limit_m / threshold_step_m + 1e-9))
        if k < 1:
            raise InputError(f"The threshold step ({threshold_step_m} m) is larger than H_limit ({h_limit_m} m); "
                             f"no candidate threshold is left.")
        return threshold_step_m * np.arange(1, k + 1, dtype=float)
    t = np.asarray(list(thresholds_m), dtype=float)
    if len(t) == 0:
        raise InputError("Give at least one candidate threshold.")
    for h in t:
        if not np.isfinite(h) or h <= 0:
            raise InputError(f"Candidate thresholds must be positive distances in metres, got {h}.")
        if h > h_limit_m * (1 + 1e-12):
            raise InputError(f"The candidate threshold {h:g} m is above the pre-grouping limit H_limit "
                             f"({h_limit_m:g} m); raise H_limit or drop that threshold.")
    return np.unique(t)


_STATUS = np.array([UNASSIGNED, ASSIGNED, MULTIPLE], dtype=object)   # by number of primaries, 2 for more


def _cluster_primaries(labels, k, P):
    """Number of distinct primary commodities of each of the k clusters (``P``: the elements'
    primaries, a CSR matrix without stored zeros)."""
    element = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    stored = P.data != 0
    pairs = np.unique(labels[element[stored]].astype(np.int64) * P.shape[1] + P.indices[stored])  # (cluster, commodity)
    return np.bincount(pairs // max(P.shape[1], 1), minlength=k)


def _first_of_each(labels):
    """Index of the first element of each cluster 0..k-1, for labels numbered in order of each
    cluster's first element (as :meth:`.linkage.Forest.labels` numbers them): where a label
    exceeds every one before it."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.maximum.accumulate(labels)
    return np.flatnonzero(np.r_[True, top[1:] > top[:-1]])


def _relabel_by_first(labels):
    """Labels renumbered 0..k-1 in order of each cluster's first element, and k."""
    uniq, first = np.unique(labels, return_index=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[np.searchsorted(uniq, labels)], len(uniq)


def cluster_mines(features: Features, h_limit_m: float = 20000.0, thresholds_m=None,
                  threshold_step_m: float = 1000.0, max_threshold_m: Optional[float] = None,
                  method: str = "local", weight: float = 0.5, formula: str = "eq1",
                  progress: Optional[Callable[[float], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None) -> ClusterResult:
    """Cluster mine features and attribute commodities (METHOD.md). See core/API.md."""
    t0 = time.perf_counter()
    timings, stats = {}, {}
    thresholds = candidate_thresholds(float(h_limit_m), thresholds_m, float(threshold_step_m))
    if method not in METHODS:
        raise InputError(f"The method must be one of {', '.join(METHODS)}, got {method!r}.")
    if formula not in FORMULAS:
        raise InputError(f"The formula must be one of {', '.join(FORMULAS)}, got {formula!r}.")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise InputError(f"The weight w must be a number between 0 and 1, got {weight!r}.") from None
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"The weight w must be between 0 and 1, got {weight}.")
    fixed = None
    if max_threshold_m is not None:
        hit = np.flatnonzero(np.isclose(thresholds, float(max_threshold_m), rtol=1e-9, atol=1e-6))
        if len(hit) == 0:
            raise InputError(f"The maximum threshold H_max = {max_threshold_m:g} m is not one of the candidate "
                             f"thresholds ({', '.join(f'{h:g}' for h in thresholds)} m).")
        fixed = int(hit[0])

    def report(a, b):
        def f(r):
            if progress is not None:
                progress(a + (b - a) * min(max(r, 0.0), 1.0))
        return f

    def check():
        stop_if_asked(should_stop)

    n = len(features)
    check()
    forest = single_linkage_forest(features, float(h_limit_m), report(0.0, 0.85), should_stop, stats, timings)
    check()
    pre = forest.labels(float(h_limit_m))
    stats["elements"] = n
    stats["pregroups"] = int(pre.max() + 1) if n else 0
    stats["largest_pregroup"] = int(np.bincount(pre).max()) if n else 0
    check()

    # Cuts at every candidate threshold.
    t = time.perf_counter()
    area = features.area_m2
    total_area = float(area.sum())
    P = features.primary.astype(np.int32)
    T = len(thresholds)
    labels = np.empty((T, n), dtype=np.int32)
    reps, au_c, am_c, n_pri = [], [], [], []
    for k, cut in enumerate(forest.cuts(thresholds)):       # thresholds ascend
        check()
        labels[k] = cut
        nk = int(labels[k].max() + 1) if n else 0
        reps.append(_first_of_each(labels[k]))
        npri = _cluster_primaries(labels[k], nk, P)
        n_pri.append(npri)
        carea = np.bincount(labels[k], weights=area, minlength=nk)
        au_c.append(np.where(npri == 0, carea, 0.0))
        am_c.append(carea * np.maximum(npri - 1, 0))
    timings["cuts"] = time.perf_counter() - t
    report(0.85, 0.9)(1.0)

    # Optimisation: global curve, local optimum for every H_max, meta-optimisation.
    t = time.perf_counter()
    pct = (lambda x: 100.0 * np.asarray(x) / total_area) if total_area > 0 else (lambda x: 0.0 * np.asarray(x))
    g_au = np.array([c.sum() for c in au_c])
    g_am = np.array([c.sum() for c in am_c])
    g_e = pareto_distance(g_au, g_am, weight, formula)
    g_best = 0 if total_area <= 0 else int(choose(g_e)[0])
    global_curve = Curve(thresholds.copy(), pct(g_au), pct(g_am), g_e, g_best)

    l_au, l_am, local_choice = np.zeros(T), np.zeros(T), []
    for m in range(T):
        check()
        gm = labels[m]
        ng = int(gm.max() + 1) if n else 0
        AU = np.zeros((ng, m + 1))
        AM = np.zeros((ng, m + 1))
        for k in range(m + 1):
            owner = gm[reps[k]]
            AU[:, k] = np.bincount(owner, weights=au_c[k], minlength=ng)
            AM[:, k] = np.bincount(owner, weights=am_c[k], minlength=ng)
        # A group without area has E = 0 at every h: the tie rule gives it the smallest h. So
        # does a group that is one cluster at every h (one at the smallest, the cuts being
        # nested): its row is the same at every h. Only the other rows are weighed.
        best = np.zeros(ng, dtype=np.int64)
        varies = np.flatnonzero(np.bincount(gm[reps[0]], minlength=ng) > 1)
        if len(varies):
            best[varies] = choose(pareto_distance(AU[varies], AM[varies], weight, formula))
        rows = np.arange(ng)
        l_au[m] = AU[rows, best].sum()
        l_am[m] = AM[rows, best].sum()
        local_choice.append(best)
        report(0.9, 0.97)((m + 1) / T)
    l_e = pareto_distance(l_au, l_am, weight, formula)
    l_best = fixed if fixed is not None else (0 if total_area <= 0 else int(choose(l_e)[0]))
    local_curve = Curve(thresholds.copy(), pct(l_au), pct(l_am), l_e, l_best)
    timings["optimisation"] = time.perf_counter() - t

    # Final clusters.
    if method == "local":
        groups = labels[l_best]
        chosen_k = local_choice[l_best][groups]
    else:
        groups = np.zeros(n, dtype=np.int64)
        chosen_k = np.full(n, g_best, dtype=np.int64)
    raw = chosen_k * max(n, 1) + labels[chosen_k, np.arange(n)] if n else np.zeros(0, np.int64)
    final, K = _relabel_by_first(raw) if n else (np.zeros(0, np.int64), 0)

    # Why each element is where it is (core/trace.py).
    t = time.perf_counter()
    check()
    trace = Trace(kind=features.kind, feature_id=features.feature_id, part=features.part, index=features.index,
                  cluster_id=final + 1, chosen=chosen_k, cut_labels=labels, forest_u=forest.u,
                  forest_v=forest.v, forest_weight_m=forest.weight_m, primary=features.primary,
                  names=list(features.names))
    why = via_columns(trace, thresholds, features, forest.parts, forest.tile_info, should_stop, forest.own)
    forest.own = None    # the projected parts: no longer needed
    why["stable_from_m"], why["stable_to_m"] = stable_range(labels, n_pri, chosen_k, thresholds)
    timings["trace"] = time.perf_counter() - t
    report(0.97, 1.0)(0.5)

    result = _tables(features, thresholds, final, K, groups, chosen_k, why)
    result.update(global_curve=global_curve, local_curve=local_curve,
                  max_threshold_m=float(thresholds[l_best]), global_threshold_m=float(thresholds[g_best]),
                  total_area_m2=total_area, method=method, weight=weight, formula=formula,
                  thresholds_m=thresholds, h_limit_m=float(h_limit_m), dropped=list(features.dropped))
    res = ClusterResult(**result, timings=timings, stats=stats, trace=trace)
    timings["total"] = time.perf_counter() - t0
    if progress is not None:
        progress(1.0)
    return res


def _tables(features: Features, thresholds, final, K, groups, chosen_k, why) -> dict:
    n = len(features)
    area = features.area_m2
    is_poly = features.kind == POLYGON
    onehot = sp.csr_matrix((np.ones(n, dtype=np.int32), (final, np.arange(n))), shape=(K, n))
    prim = (onehot @ features.primary.astype(np.int32)).tocsr()
    comm = (onehot @ features.commodities.astype(np.int32)).tocsr()
    prim.eliminate_zeros()
    comm.eliminate_zeros()
    names = features.names

    c_prim, c_comm = names_of_rows(prim, names).tolist(), names_of_rows(comm, names).tolist()
    n_pri = np.diff(prim.indptr)
    c_status = _STATUS[np.minimum(n_pri, 2)].tolist()
    c_thr = np.zeros(K)
    c_thr[final] = thresholds[chosen_k]
    clusters = ClusterTable(
        cluster_id=np.arange(1, K + 1, dtype=np.int64), threshold_m=c_thr,
        primary_commodities=c_prim, commodities=c_comm, status=c_status,
        n_polygons=np.bincount(final, weights=is_poly, minlength=K).astype(np.int64),
        n_points=np.bincount(final, weights=~is_poly, minlength=K).astype(np.int64),
        area_m2=np.bincount(final, weights=area, minlength=K))

    def elements(mask):
        rows = np.flatnonzero(mask)
        rows = rows[np.lexsort((features.part[rows], features.index[rows]))]
        f = final[rows]
        return ElementTable(
            feature_id=features.feature_id[rows].copy(), part=features.part[rows].copy(),
            index=features.index[rows].copy(), cluster_id=f + 1, threshold_m=thresholds[chosen_k[rows]],
            primary_commodities=per_cluster[0][f].tolist(), commodities=per_cluster[1][f].tolist(),
            status=per_cluster[2][f].tolist(), area_m2=area[rows].copy(),
            via_point_fid=per_element[0][rows].tolist(), via_distance_m=why["via_distance_m"][rows],
            via_links=per_element[1][rows].tolist(), via_max_link_m=why["via_max_link_m"][rows],
            stable_from_m=why["stable_from_m"][rows], stable_to_m=why["stable_to_m"][rows])

    # Lists as object arrays, for taking rows without a Python loop (the same objects).
    per_cluster = [object_array(c) for c in (c_prim, c_comm, c_status)]
    per_element = [object_array(why["via_point_fid"]), object_array(why["via_links"])]

    g, G = _relabel_by_first(groups) if n else (np.zeros(0, np.int64), 0)
    g_thr = np.zeros(G)
    g_thr[g] = thresholds[chosen_k]
    group_table = GroupTable(
        group_id=np.arange(1, G + 1, dtype=np.int64), chosen_threshold_m=g_thr,
        area_m2=np.bincount(g, weights=area, minlength=G),
        n_polygons=np.bincount(g, weights=is_poly, minlength=G).astype(np.int64),
        n_points=np.bincount(g, weights=features.kind == POINT, minlength=G).astype(np.int64))
    total = float(area.sum())
    au = sum(clusters.area_m2[n_pri == 0].tolist())   # in cluster order, one by one
    am = float((clusters.area_m2 * np.maximum(n_pri - 1, 0)).sum())
    return dict(polygons=elements(is_poly), points=elements(~is_poly), clusters=clusters, groups=group_table,
                area_unassigned_pct=100.0 * au / total if total > 0 else 0.0,
                area_multi_pct=100.0 * am / total if total > 0 else 0.0)
