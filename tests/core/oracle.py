"""Independent reference computations for the engine's tests.

Brute force: every pair's distance (dense matrix), fastcluster single linkage, a cut per threshold
(scipy's fcluster), and the optimisation of METHOD.md written as plain Python loops over sets.
"""
from __future__ import annotations

import math

import fastcluster
import numpy as np
from scipy.cluster.hierarchy import fcluster
from scipy.spatial.distance import squareform

from mine_clusters.core.linkage import dense_distance_matrix

#: METHOD.md: links at a threshold join (R's cutree(h=)); 1 µm absorbs float noise of the distances.
TIE_M = 1e-6


def canonical(labels):
    """A partition as a frozenset of frozensets of element positions."""
    groups = {}
    for e, lab in enumerate(labels):
        groups.setdefault(lab, set()).add(e)
    return frozenset(frozenset(g) for g in groups.values())


def brute_force_cuts(features, thresholds):
    """Partition at each threshold from a dense matrix + fastcluster single linkage."""
    n = len(features)
    if n == 1:
        return {h: [0] for h in thresholds}
    dist = dense_distance_matrix(features, np.arange(n))
    z = fastcluster.linkage(squareform(dist, checks=False), method="single")
    return {h: list(fcluster(z, t=h + TIE_M, criterion="distance")) for h in thresholds}


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
    """Final partition, each element's threshold, H*_max and the global threshold (METHOD.md)."""
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
