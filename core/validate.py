"""Validation of the commodity attribution against reference polygons (the paper's Table 4).

Every clustered polygon that intersects a reference polygon forms a pair; the pair compares the
polygon's primary commodities A with the reference's expert commodities B (names compared as
`parse_commodities` reads them: trimmed, case-insensitive, optionally harmonised):

- Jaccard |A∩B| / |A∪B|; Dice 2|A∩B| / (|A| + |B|); overlap coefficient |A∩B| / min(|A|, |B|);
  identifier overlap 1 when A and B share a commodity, else 0;
- match "full" when A = B (Jaccard 1), "none" when they share nothing, else "partial".

Pairs whose reference has no commodity are skipped (nothing to compare with). An unassigned
clustered polygon (A empty) shares nothing: Jaccard 0, Dice 0 and match "none" (|A∪B| and
|A| + |B| are not zero), but its overlap coefficient (min(|A|, |B|) = 0) and so its identifier
overlap are undefined: NULL, left out of that metric's Mean, SD and Median and counted in the
summary's "Undefined" row. So does the R implementation (`R/accuracy_metrics.R`: NA for the
overlap coefficient of an empty set; `03-validate-cluster-results.R`: `idoverlap = overlapcoeff >
0`, means with `na.rm = TRUE`, an NA pair counted as "no match" among all pairs), which gives the
paper's Table 4. The option `include_unassigned=False` leaves such pairs out altogether. SD is
the sample standard deviation (n - 1), as R's `sd()`. No qgis imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import shapely

from .commodities import normalise_key, parse_commodities, split_tokens
from .errors import InputError
from .geometry import read_polygons
from .harmonise import DEFAULT_NON_COMMODITIES, read_harmonisation_table
from .progress import report, ticker
from .schema import PAIR_FIELDS, SUMMARY_FIELDS  # noqa: F401  (re-exported)

METRICS = ("jaccard", "dice", "overlap", "id_overlap")
MATCHES = ("full", "partial", "none")


def reference_harmonisation(path: Optional[str] = None) -> dict:
    """The table that reads reference commodities like the harmonised cluster output: the CSV at
    `path`, by default the table the harmonise algorithms ship (core/data/
    commodity_harmonisation.csv), as {raw name: harmonised name}. Values the harmonise
    algorithms treat as non-commodities ("Not relevant", "Processing") map to "", so such a
    name is dropped, as it is from the clustered points. Raises InputError for an unreadable
    table."""
    non = {normalise_key(v) for v in DEFAULT_NON_COMMODITIES}
    table = {k: ",".join(t for t in split_tokens(v) if normalise_key(t) not in non)
             for k, v in read_harmonisation_table(path).items()}
    for v in non:
        table.setdefault(v, "")
    return table


@dataclass(frozen=True)
class SetMetrics:
    jaccard: float
    dice: float
    overlap: Optional[float]        # None when a set is empty
    id_overlap: Optional[int]       # None when a set is empty
    match: str


def set_metrics(a, b) -> SetMetrics:
    """Similarity of two commodity sets (iterables of names, compared case-insensitively).

    The overlap coefficient and the identifier overlap are None (undefined) when one set is
    empty; Jaccard and Dice are then 0.

    >>> set_metrics({"Coal"}, {"Coal", "Gold"})
    SetMetrics(jaccard=0.5, dice=0.6666666666666666, overlap=1.0, id_overlap=1, match='partial')
    >>> set_metrics(set(), {"Coal"})
    SetMetrics(jaccard=0.0, dice=0.0, overlap=None, id_overlap=None, match='none')
    """
    a = {normalise_key(x) for x in a}
    b = {normalise_key(x) for x in b}
    if not a and not b:
        raise InputError("Two empty commodity sets cannot be compared.")
    inter = len(a & b)
    union = len(a | b)
    jac = inter / union
    dice = 2.0 * inter / (len(a) + len(b))
    small = min(len(a), len(b))
    ovl = inter / small if small else None
    idv = int(inter > 0) if small else None
    match = "full" if a == b else ("none" if inter == 0 else "partial")
    return SetMetrics(jac, dice, ovl, idv, match)


@dataclass
class ValidationResult:
    pairs: list          # dicts keyed by PAIR_FIELDS names, plus "index" (clustered polygon position)
    summary: list        # dicts keyed by SUMMARY_FIELDS names: Mean, SD, Median, Count,
    #                      Proportion, Undefined (see `summarise_pairs`)
    n_skipped_reference: int      # intersecting pairs whose reference has no commodity
    n_skipped_unassigned: int     # pairs left out because the clustered polygon is unassigned

    @property
    def n_pairs(self):
        return len(self.pairs)

    def stat(self, statistic: str) -> dict:
        for row in self.summary:
            if row["statistic"] == statistic:
                return row
        raise KeyError(statistic)


def _defined(x):
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _stats(values):
    v = np.asarray([x for x in values if _defined(x)], dtype=float)
    if len(v) == 0:
        return None, None, None
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return float(v.mean()), sd, float(np.median(v))


def summarise_pairs(pairs) -> list:
    """Table 4 rows: Mean, SD, Median of each metric; Count and Proportion (%) of each match;
    then "Undefined": per metric, the number of pairs whose value is undefined (NULL/NaN: the
    overlap coefficient and identifier overlap of an unassigned polygon), which the Mean, SD and
    Median leave out. Proportions are of all pairs (an unassigned pair is a "no match")."""
    rows = []
    stats = {m: _stats([p[m] for p in pairs]) for m in METRICS}
    empty = {"full_match": None, "partial_match": None, "no_match": None}
    for k, label in enumerate(("Mean", "SD", "Median")):
        row = {"statistic": label}
        row.update({m: stats[m][k] for m in METRICS})
        row.update(empty)
        rows.append(row)
    n = len(pairs)
    counts = {m: sum(1 for p in pairs if p["match"] == m) for m in MATCHES}
    for label, scale in (("Count", None), ("Proportion", 100.0)):
        row = {"statistic": label}
        row.update({m: None for m in METRICS})
        for key, m in (("full_match", "full"), ("partial_match", "partial"), ("no_match", "none")):
            row[key] = float(counts[m]) if scale is None else (scale * counts[m] / n if n else None)
        rows.append(row)
    row = {"statistic": "Undefined"}
    row.update({m: float(sum(1 for p in pairs if not _defined(p[m]))) for m in METRICS})
    row.update(empty)
    rows.append(row)
    return rows


def validate(cluster_geoms, feature_ids, cluster_ids, primary, ref_geoms, ref_ids,
             ref_commodities, harmonisation=None, include_unassigned=True, progress=None,
             should_stop=None, layer="clustered polygons layer",
             reference_layer="reference polygons layer", reference_names=None) -> ValidationResult:
    """Compare every clustered polygon with every reference polygon it intersects.

    Geometries in lon/lat (EPSG:4326). `primary`: the clustered polygons' primary commodities
    (comma lists); `ref_commodities`: the reference's expert commodities (comma lists), read
    through `harmonisation` when given. Pairs are ordered by feature id then reference id.
    `layer` and `reference_layer` name the two layers in error messages; `reference_names` (one
    text per reference polygon, or None) fills each pair's reference_name. Both layers are read by
    the core's geometry rule (core/geometry.py); a coordinate it refuses is an InputError.
    """
    cg = np.asarray(list(cluster_geoms), dtype=object)
    rg = np.asarray(list(ref_geoms), dtype=object)
    n, m = len(cg), len(rg)
    for name, vals, k in (("feature ids", feature_ids, n), ("cluster ids", cluster_ids, n),
                          ("primary commodities", primary, n), ("reference ids", ref_ids, m),
                          ("reference commodities", ref_commodities, m),
                          ("reference names", reference_names if reference_names is not None
                           else [None] * m, m)):
        if len(vals) != k:
            raise InputError(f"Expected {k} {name}, got {len(vals)}; give one per feature.")
    if n == 0:
        raise InputError("The clustered polygons layer has no polygon to validate.")
    if m == 0:
        raise InputError("The reference polygons layer has no polygon to compare with.")
    fids = [int(x) for x in feature_ids]
    rids = [int(x) for x in ref_ids]
    # the core's one reading of user polygons (core/geometry.py) on both sides: the coordinate
    # rule, a collection's polygons, poles settled, a ring drawn across the antimeridian
    # (179.99 -> -179.99) or beyond ±180 (185 = -175) cut at ±180, invalid ones repaired; a
    # geometry with no polygon (or none left) shares no area and forms no pair
    cg = read_polygons(cg, fids, f"Feature {{fid}} of the {layer}").geoms
    rgv = read_polygons(rg, rids, f"Feature {{fid}} of the {reference_layer}").geoms
    ok_c, ok_r = ~shapely.is_missing(cg), ~shapely.is_missing(rgv)
    ci = np.flatnonzero(ok_c)
    ri = np.flatnonzero(ok_r)
    tree = shapely.STRtree(rgv[ri])
    qa, qb = tree.query(cg[ci], predicate="intersects")
    pa, pb = ci[qa], ri[qb]
    order = sorted(range(len(pa)), key=lambda k: (fids[pa[k]], rids[pb[k]], pa[k], pb[k]))
    ref_sets = [parse_commodities(x, harmonisation) for x in ref_commodities]
    prim_sets = [parse_commodities(x) for x in primary]
    pairs, skip_ref, skip_un = [], 0, 0
    tick = ticker(progress, should_stop, 0.0, 1.0, len(order))
    for k, j in enumerate(order):
        tick(k)
        i, r = int(pa[j]), int(pb[j])
        b = ref_sets[r]
        if not b:
            skip_ref += 1
            continue
        a = prim_sets[i]
        if not a and not include_unassigned:
            skip_un += 1
            continue
        met = set_metrics(a, b)
        cid = cluster_ids[i]
        pairs.append({
            "feature_id": fids[i],
            "cluster_id": None if cid is None or (isinstance(cid, float) and math.isnan(cid))
            else int(cid),
            "reference_id": rids[r],
            "primary_commodities": ",".join(a) or None,
            "reference_commodities": ",".join(b),
            "jaccard": met.jaccard, "dice": met.dice, "overlap": met.overlap,
            "id_overlap": met.id_overlap, "match": met.match,
            "reference_name": None if reference_names is None else reference_names[r], "index": i,
        })
    report(progress, 1.0)
    return ValidationResult(pairs, summarise_pairs(pairs), skip_ref, skip_un)


#: `validate` under the name the package exports (``mine_clusters.core.validate`` is this module).
validate_clusters = validate
