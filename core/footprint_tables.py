"""Footprint tables: the schemas and the rows of each table (by commodity, by region, the paper's
Tables 2 and 3, the grid), built from the clustered polygons, the region allocation and the grid
split. Every table sums to the total polygon area. No qgis imports.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import shapely

from .errors import InputError
from .footprint_grid import EqualAreaGrid, grid_fractions
from .footprint_input import UNKNOWN, MinePolygons, _share_arrays, commodity_shares, split_commodities
from .footprint_regions import OUTSIDE, RegionAllocation, Regions, region_allocation
from .schema import (COMMODITY_FIELDS, GRID_BASE_FIELDS, REGION_FIELDS,  # noqa: F401  (re-exported)
                     TABLE2_FIELDS, TABLE3_FIELDS)


def commodity_field_name(commodity: str) -> str:
    """Attribute name for a commodity's area in the grid layer, e.g. 'Rare earths' -> 'km2_Rare_earths'."""
    return "km2_" + (re.sub(r"[^0-9A-Za-z]+", "_", commodity).strip("_") or "x")


def grid_fields(commodities: Sequence[str]) -> tuple:
    """Grid schema: the base fields then one area field per commodity (names made unique)."""
    names, used = [], {n for n, _ in GRID_BASE_FIELDS}
    for c in commodities:
        name, k = commodity_field_name(c), 2
        base = name
        while name.casefold() in {u.casefold() for u in used}:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append((name, "double"))
    return GRID_BASE_FIELDS + tuple(names)


def _pct(part, whole):
    return 100.0 * part / whole if whole > 0 else 0.0


def _commodity_order(area_by_commodity: dict) -> list:
    """Commodities by decreasing area, ties by name; Unknown last."""
    names = [c for c in area_by_commodity if c != UNKNOWN]
    names.sort(key=lambda c: (-area_by_commodity[c], c.casefold(), c))
    if UNKNOWN in area_by_commodity:
        names.append(UNKNOWN)
    return names


def commodity_table(polys: MinePolygons) -> list:
    """Area by primary commodity (km², % of the total), with polygon and cluster counts."""
    total = polys.total_area_m2
    area, npoly, nclus = {}, {}, {}
    for i, shares in enumerate(commodity_shares(polys)):
        for c, f in shares:
            area[c] = area.get(c, 0.0) + f * polys.area_m2[i]
            npoly[c] = npoly.get(c, 0) + 1
            nclus.setdefault(c, set()).add(int(polys.cluster_ids[i]))
    return [{"commodity": c, "area_km2": area[c] / 1e6, "area_pct": _pct(area[c], total),
             "n_polygons": npoly[c], "n_clusters": len(nclus[c])} for c in _commodity_order(area)]


def region_table(polys: MinePolygons, regs: Optional[Regions], allocation="intersection",
                 progress=None, should_stop=None, allocated: Optional[RegionAllocation] = None) -> list:
    """Area by region x commodity; the area outside every region is the region 'Outside'.

    Rows are ordered by decreasing region area ('Outside' last), then by commodity order.
    `area_pct` is of the total polygon area, `region_pct` of the region's mine area. Mine land
    where regions overlap is split equally between them (see `footprint_regions`).
    `allocated`: the `region_allocation` of these polygons and regions, when made already.
    """
    total = polys.total_area_m2
    shares = commodity_shares(polys)
    inside = np.zeros(len(polys))
    acc = {}
    if regs is not None and len(regs):
        if allocated is None:
            allocated = region_allocation(polys, regs, allocation, progress, should_stop)
        p, r, f = allocated.polygon, allocated.region, allocated.fraction
        for pi, ri, fr in zip(p.tolist(), r.tolist(), f.tolist()):
            a = fr * polys.area_m2[pi]
            inside[pi] += fr
            d = acc.setdefault(regs.names[ri], {})
            for c, cf in shares[pi]:
                d[c] = d.get(c, 0.0) + cf * a
    rest = np.clip(1.0 - inside, 0.0, 1.0) * polys.area_m2
    rest[inside >= 1.0 - 1e-12] = 0.0
    if rest.sum() > 0:
        d = acc.setdefault(OUTSIDE, {})
        for pi in np.flatnonzero(rest > 0).tolist():
            for c, cf in shares[pi]:
                d[c] = d.get(c, 0.0) + cf * rest[pi]
    # fix the floating-point drift so that the table sums to the total exactly enough
    reg_area = {k: sum(v.values()) for k, v in acc.items()}
    com_total = {}
    for v in acc.values():
        for c, a in v.items():
            com_total[c] = com_total.get(c, 0.0) + a
    corder = {c: k for k, c in enumerate(_commodity_order(com_total))}
    regions_sorted = sorted((k for k in acc if k != OUTSIDE),
                            key=lambda k: (-reg_area[k], k.casefold(), k))
    if OUTSIDE in acc:
        regions_sorted.append(OUTSIDE)
    rows = []
    for k in regions_sorted:
        for c in sorted(acc[k], key=lambda c: corder[c]):
            a = acc[k][c]
            if a <= 0:
                continue
            rows.append({"region": k, "commodity": c, "area_km2": a / 1e6,
                         "area_pct": _pct(a, total), "region_pct": _pct(a, reg_area[k])})
    return rows


def table2(polys: MinePolygons, point_cluster_ids=None, point_primary=None) -> list:
    """The paper's Table 2: assigned vs unassigned clusters (rows Assigned, Unassigned, Total).

    As the R implementation's `summary_tbl` (every clustered feature grouped by cluster), the
    table counts every cluster of the cluster output and every clustered point:

    - with the points (`point_cluster_ids`, one cluster id per point of the cluster algorithm's
      points output, and `point_primary`, the primary commodities written on each point), the
      clusters are those of the polygons and of the points, so a cluster of points only (no
      mine land, area 0) is counted, and `n_points` counts every point with a cluster id;
    - without them, the clusters are those holding polygons and the point columns are None.

    A cluster is assigned when it has a primary commodity (status "assigned" or "multiple");
    a cluster without polygons takes the assignment written on its points. The averages are
    over all the clusters of the row (points-only clusters count 0 km² and 0 polygons), as
    R's `mean()` over the grouped clusters: area/cluster = area / clusters, polygons/cluster
    = polygons / clusters, points/cluster = points / clusters; area/polygon = area / polygons.
    """
    assigned = np.array([s != "unassigned" for s in polys.status], dtype=bool)
    cl_status = {}
    for cid, a in zip(polys.cluster_ids.tolist(), assigned.tolist()):
        if cl_status.setdefault(cid, a) != a:
            raise InputError(f"Cluster {cid} of the clustered polygons is both assigned and "
                             f"unassigned in field 'status'; use the cluster algorithm's output "
                             f"unchanged.")
    pts = None
    if point_cluster_ids is not None:
        pids = [None if c is None or (isinstance(c, float) and math.isnan(c)) else int(c)
                for c in point_cluster_ids]
        _check_len_points(point_primary, len(pids))
        pt_status, parsed = {}, {}
        for k, c in enumerate(pids):
            if c is None:
                continue
            if point_primary is None:
                if c not in cl_status:
                    raise InputError(
                        f"Cluster {c} has points but no polygon; give the points' primary "
                        f"commodities to tell whether it is assigned.")
                continue
            text = point_primary[k]
            if text not in parsed:
                parsed[text] = bool(split_commodities(text))
            a = parsed[text]
            if c in cl_status and cl_status[c] != a:
                raise InputError(
                    f"Cluster {c} is {'un' if not cl_status[c] else ''}assigned in the clustered "
                    f"polygons but {'un' if not a else ''}assigned in the clustered points; use "
                    f"the polygons and points output of one run of the cluster algorithm.")
            if pt_status.setdefault(c, a) != a:
                raise InputError(f"Cluster {c} of the clustered points is both assigned and "
                                 f"unassigned in field 'primary_commodities'; use the cluster "
                                 f"algorithm's output unchanged.")
        for c, a in pt_status.items():
            cl_status.setdefault(c, a)
        pts = {True: 0, False: 0}
        for c in pids:
            if c is not None:
                pts[cl_status[c]] += 1
    tot_area = polys.total_area_m2
    tot_cl = len(cl_status)
    tot_pol = len(polys)
    tot_pts = None if pts is None else pts[True] + pts[False]
    rows = []
    for label, flag in (("Assigned", True), ("Unassigned", False), ("Total", None)):
        m = np.ones(len(polys), bool) if flag is None else (assigned == flag)
        area = float(polys.area_m2[m].sum())
        ncl = tot_cl if flag is None else sum(1 for v in cl_status.values() if v == flag)
        npol = int(m.sum())
        npt = None if pts is None else (tot_pts if flag is None else pts[flag])
        rows.append({
            "status": label, "area_km2": area / 1e6, "area_pct": _pct(area, tot_area),
            "n_clusters": ncl, "clusters_pct": _pct(ncl, tot_cl),
            "n_polygons": npol, "polygons_pct": _pct(npol, tot_pol),
            "n_points": npt, "points_pct": None if pts is None else _pct(npt, tot_pts),
            "cluster_area_km2": area / 1e6 / ncl if ncl else None,
            "polygons_per_cluster": npol / ncl if ncl else None,
            "points_per_cluster": (npt / ncl if ncl else None) if pts is not None else None,
            "polygon_area_km2": area / 1e6 / npol if npol else None,
        })
    return rows


def _check_len_points(values, n):
    if values is not None and len(values) != n:
        raise InputError(f"The clustered points have {n} cluster ids but {len(values)} values of "
                         f"'primary_commodities'; give one value per point.")


def table3(polys: MinePolygons) -> list:
    """The paper's Table 3: polygons by assignment status x data-source combination.

    Rows: Assigned then Unassigned, each by decreasing area. Empty when there are no sources.
    """
    if polys.sources is None:
        return []
    total, n = polys.total_area_m2, len(polys)
    acc = {}
    for i in range(n):
        key = ("Unassigned" if polys.status[i] == "unassigned" else "Assigned", polys.sources[i])
        a, k = acc.get(key, (0.0, 0))
        acc[key] = (a + polys.area_m2[i], k + 1)
    keys = sorted(acc, key=lambda k: (k[0] != "Assigned", -acc[k][0], k[1]))
    return [{"status": s, "sources": src, "area_km2": acc[(s, src)][0] / 1e6,
             "area_pct": _pct(acc[(s, src)][0], total), "n_polygons": acc[(s, src)][1],
             "polygons_pct": _pct(acc[(s, src)][1], n),
             "polygon_area_km2": acc[(s, src)][0] / 1e6 / acc[(s, src)][1]} for s, src in keys]


@dataclass
class GridTable:
    grid: EqualAreaGrid
    commodities: list                       # commodity order of the per-commodity fields
    fields: tuple                           # schema (GRID_BASE_FIELDS + one per commodity)
    rows: list                              # dicts keyed by the schema names
    cells: list = field(default_factory=list)   # (row, col) per row, for cell_geometry()

    def geometries(self):
        """The rows' cells as lon/lat polygons (as `EqualAreaGrid.cell_geometry`), at once."""
        if not self.cells:
            return []
        b = np.array([self.grid.cell_bounds(r, c) for r, c in self.cells], dtype=float)
        return list(shapely.segmentize(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), 0.5))


def grid_table(polys: MinePolygons, cell_size_m=50000.0, progress=None, should_stop=None) -> GridTable:
    """Mine area per commodity in each equal-area cell holding mine land, and the dominant one.

    The dominant commodity is the one with the largest area in the cell ('Unknown' included, as
    in the paper's Fig. 10); ties go to the commodity first in the overall order.
    """
    grid = EqualAreaGrid(cell_size_m)
    p, r, c, f = grid_fractions(polys, grid, progress, should_stop)
    sp, sc, sf, names = _share_arrays(polys)
    n = len(polys)
    # join the cell fractions with the commodity shares of each polygon
    start = np.searchsorted(sp, np.arange(n + 1))
    count = np.diff(start)
    rep = np.repeat(np.arange(len(p)), count[p])
    within = np.arange(len(rep)) - np.repeat(np.cumsum(count[p]) - count[p], count[p])
    si = start[p][rep] + within
    cell_key = grid.offsets[r] + c                       # the cell id
    cells, cell_of_pair = np.unique(cell_key, return_inverse=True)
    ncom = len(names)
    area = np.bincount(cell_of_pair[rep] * ncom + sc[si],
                       weights=polys.area_m2[p[rep]] * f[rep] * sf[si],
                       minlength=len(cells) * ncom).reshape(len(cells), ncom)
    npol = np.bincount(cell_of_pair, minlength=len(cells))
    totals = dict(zip(names, area.sum(axis=0).tolist()))
    # commodities with mine area; all of them when every polygon has zero area
    order = _commodity_order({k: v for k, v in totals.items() if v > 0} or totals)
    col = [names.index(name) for name in order]
    fields = grid_fields(order)
    cnames = [nm for nm, _ in fields[len(GRID_BASE_FIELDS):]]
    rows_of = np.searchsorted(grid.offsets, cells, side="right") - 1
    rows, keys = [], []
    a_sorted = area[:, col] if col else np.zeros((len(cells), 0))
    for k in range(len(cells)):
        vals = a_sorted[k]
        mine = float(vals.sum())
        j = int(np.argmax(vals))                         # first maximum = first in the order
        rr = int(rows_of[k])
        cc = int(cells[k] - grid.offsets[rr])
        row = {"cell_id": int(cells[k]), "row": rr, "col": cc,
               "cell_area_km2": grid.cell_area_m2(rr) / 1e6, "mine_area_km2": mine / 1e6,
               "dominant": order[j], "dominant_km2": float(vals[j]) / 1e6,
               "dominant_pct": _pct(float(vals[j]), mine), "n_polygons": int(npol[k])}
        for fname, v in zip(cnames, vals.tolist()):
            row[fname] = v / 1e6
        rows.append(row)
        keys.append((rr, cc))
    return GridTable(grid, order, fields, rows, keys)
