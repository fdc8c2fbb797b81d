"""The Pareto distance of METHOD.md (Eq. 1) and the choice of thresholds."""
from __future__ import annotations

import numpy as np

#: Floor of the normalising maximum (METHOD.md).
NORM_FLOOR = 1e-12
#: E values closer than this (relative) are ties, decided by the smallest threshold.
TIE_RELATIVE = 1e-9


def normalise(x: np.ndarray) -> np.ndarray:
    """x / max(x) along the last axis, the maximum floored at 1e-12."""
    x = np.asarray(x, dtype=float)
    return x / np.maximum(x.max(axis=-1, keepdims=True), NORM_FLOOR)


def pareto_distance(a_u: np.ndarray, a_m: np.ndarray, weight: float = 0.5, formula: str = "eq1") -> np.ndarray:
    """E over candidate thresholds (last axis), normalised within each row.

    ``formula="eq1"``: sqrt(((1-w) norm(A_u))² + (w norm(A_m))²), the paper's Eq. 1.
    ``formula="r"``: norm(A_m) + norm(A_u)², what the published R code computes (w is not used).

    The R code (github.com/vwmaus/mining-spatial-data-integration, 02-optimize-cluster-threshold.R
    at commit ee6c1f1, line 89 for the global curve and the same line in the local one):
        distances = sqrt(perc_area_multi_count/max(c(perc_area_multi_count, 1e-12)))^2
                    + (perc_area_unknown/max(c(perc_area_unknown, 1e-12)))^2
    sqrt(x)^2 = x, so a = A_m (area_multi_count: area x (n_primary - 1)) and b = A_u
    (area_unknown). Its percentages of one total normalise like areas; only its 1e-12 floor
    applies to a fraction there and to m² here, as METHOD.md defines norm().
    """
    u, m = normalise(a_u), normalise(a_m)
    if formula == "eq1":
        return np.sqrt(((1.0 - weight) * u) ** 2 + (weight * m) ** 2)
    if formula == "r":
        return m + u ** 2
    raise ValueError(f"unknown formula {formula!r}")


def choose(e: np.ndarray) -> np.ndarray:
    """Index of the smallest E along the last axis; ties (relative 1e-9) go to the smallest index."""
    e = np.atleast_2d(np.asarray(e, dtype=float))
    best = e.min(axis=-1, keepdims=True)
    tie = (e - best) <= TIE_RELATIVE * np.maximum(np.abs(e), np.abs(best))
    return np.argmax(tie, axis=-1)
