"""Footprint input: the clustered polygons (`MinePolygons`, read by `mine_polygons`) and the split
of each polygon's area among its primary commodities (`commodity_shares`).

A polygon whose cluster has n primary commodities gives 1/n of its area to each (as the R
implementation does); one without a primary commodity counts as "Unknown". No qgis imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .commodities import Vocabulary, parse_commodities
from .errors import InputError
from .geodesy import polygon_area_m2
from .geometry import present, read_polygons

UNKNOWN = "Unknown"
NO_SOURCE = "(no source)"
STATUSES = ("assigned", "unassigned", "multiple")
_UNKNOWN_VALUES = {"", "na", "n/a", "null", "none", "nan"}   # for sources


def split_commodities(text) -> tuple:
    """Commodity names of a comma list (unknown values dropped), as `parse_commodities` reads them."""
    return parse_commodities(text)


@dataclass
class MinePolygons:
    """The clustered polygons, in input order (see `mine_polygons`)."""
    geoms: np.ndarray              # shapely geometries (lon/lat), object array
    feature_ids: np.ndarray        # int64
    cluster_ids: np.ndarray        # int64
    primary: list                  # tuple of commodity names per polygon (empty = unassigned)
    status: list                   # "assigned" | "unassigned" | "multiple"
    area_m2: np.ndarray            # float64
    sources: Optional[list] = None
    _shares: Optional[list] = field(default=None, repr=False, compare=False)

    def __len__(self):
        return len(self.feature_ids)

    @property
    def total_area_m2(self) -> float:
        return float(self.area_m2.sum())


def _check_len(name, values, n):
    if values is not None and len(values) != n:
        raise InputError(f"The clustered polygons have {n} geometries but {len(values)} values of "
                         f"'{name}'; give one value per polygon.")


def mine_polygons(geoms, feature_ids, cluster_ids, primary, status=None, area_m2=None,
                  sources=None, layer="clustered polygons") -> MinePolygons:
    """Check and normalise the clustered polygons.

    `primary`: comma lists (None/""/"NA" = no primary commodity). `status`: None derives it from
    `primary`. `area_m2`: None, or values with None/NaN where the spherical area should be
    computed. Raises InputError naming the feature and the field.
    """
    geoms = np.asarray(list(geoms), dtype=object)
    n = len(geoms)
    for name, values in (("feature id", feature_ids), ("cluster_id", cluster_ids),
                         ("primary_commodities", primary), ("status", status),
                         ("area_m2", area_m2), ("sources", sources)):
        _check_len(name, values, n)
    fids = np.asarray(list(feature_ids), dtype=np.int64)
    cids = np.empty(n, dtype=np.int64)
    for i, c in enumerate(cluster_ids):
        if c is None or (isinstance(c, float) and math.isnan(c)):
            raise InputError(f"Feature {fids[i]} of the {layer} has no 'cluster_id'; use the "
                             f"polygons output of the cluster algorithm.")
        cids[i] = int(c)
    # names differing only in case are one commodity, shown in one spelling for the whole
    # layer (as the cluster algorithm's Vocabulary); the output repeats a few hundred lists
    vocab, parsed = Vocabulary(), {}
    keys = [parsed[p] if p in parsed else parsed.setdefault(p, vocab.parse(p)) for p in primary]
    shown, code = vocab.freeze()
    named = {k: tuple(shown[code[c]] for c in k) for k in set(keys)}
    prim = [named[k] for k in keys]
    stat = []
    for i in range(n):
        s = None if status is None else status[i]
        if s is None or (isinstance(s, str) and not s.strip()):
            s = "unassigned" if not prim[i] else ("multiple" if len(prim[i]) > 1 else "assigned")
        s = str(s).strip().lower()
        if s not in STATUSES:
            raise InputError(f"Feature {fids[i]} of the {layer} has status '{s}' in field "
                             f"'status'; expected one of {', '.join(STATUSES)}.")
        if s == "unassigned" and prim[i]:
            raise InputError(f"Feature {fids[i]} of the {layer} is 'unassigned' in field 'status' "
                             f"but has primary commodities '{','.join(prim[i])}'.")
        stat.append(s)
    # the core's one reading of user polygons (core/geometry.py): the coordinate rule, a
    # collection's polygons, poles settled, the antimeridian cut, invalid ones repaired (a line
    # drawn as a polygon has none left: area 0); a geometry with no polygon has no shape here
    ok = present(geoms)
    geoms = read_polygons(geoms, fids, f"Feature {{fid}} of the {layer}").geoms
    bad = np.flatnonzero(~present(geoms)).tolist()
    if area_m2 is None:
        areas = np.full(n, np.nan)
    else:
        areas = np.array([np.nan if a is None else float(a) for a in area_m2], dtype=float)
    need = np.isnan(areas)
    for i in bad:
        if need[i] and ok[i]:
            areas[i] = 0.0      # a degenerate polygon (a line once repaired) has no area
            need[i] = False
        elif need[i]:
            raise InputError(f"Feature {fids[i]} of the {layer} has no geometry and no "
                             f"'area_m2'; remove it or fill its area.")
    inf = np.flatnonzero(np.isinf(areas))
    if len(inf):
        raise InputError(f"Feature {fids[inf[0]]} of the {layer} has an infinite 'area_m2'; "
                         f"fill a finite area in m² or leave it empty.")
    if need.any():
        areas[need] = polygon_area_m2(geoms[need])
    neg = np.flatnonzero(areas < 0)
    if len(neg):
        raise InputError(f"Feature {fids[neg[0]]} of the {layer} has a negative 'area_m2' "
                         f"({areas[neg[0]]}).")
    src = None
    if sources is not None:
        src = []
        for s in sources:
            s = "" if s is None else str(s).strip()
            src.append(s if s and s.casefold() not in _UNKNOWN_VALUES else NO_SOURCE)
    return MinePolygons(geoms, fids, cids, prim, stat, areas, src)


def commodity_shares(polys: MinePolygons):
    """Per polygon, the list of (commodity, fraction): 1/n to each of n primaries, else Unknown.
    (Made once per MinePolygons: every table asks for it.)"""
    if polys._shares is None:
        polys._shares = [[(c, 1.0 / len(p)) for c in p] if p else [(UNKNOWN, 1.0)]
                         for p in polys.primary]
    return polys._shares


def _share_arrays(polys: MinePolygons):
    """Commodity shares as arrays: (polygon index, commodity code, fraction), and the names."""
    names, code = [], {}
    sp, sc, sf = [], [], []
    for i, shares in enumerate(commodity_shares(polys)):
        for c, f in shares:
            if c not in code:
                code[c] = len(names)
                names.append(c)
            sp.append(i)
            sc.append(code[c])
            sf.append(f)
    return (np.asarray(sp, np.int64), np.asarray(sc, np.int64), np.asarray(sf, float), names)
