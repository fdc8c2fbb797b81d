"""Footprint grid: equal-area cells on the sphere (`EqualAreaGrid`) and the split of each mine
polygon's area between the cells (`grid_fractions`). No qgis imports.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from .errors import InputError
from .footprint_input import MinePolygons
from .geodesy import EARTH_RADIUS_M, polygon_area_m2
from .geometry import make_valid_polygonal, polygonal_all, present
from .progress import stop_if_asked, ticker


def _expand(owner, start, count):
    """(owner, value) pairs: for each i, `count[i]` consecutive values from `start[i]`."""
    count = np.maximum(np.asarray(count, dtype=np.int64), 0)
    first = np.cumsum(count) - count
    step = np.arange(int(count.sum())) - np.repeat(first, count)
    return np.repeat(owner, count), np.repeat(start, count) + step


class EqualAreaGrid:
    """Equal-area cells on the sphere (R = 6,371,008.8 m), bounded by parallels and meridians.

    Latitude bands are built from the equator towards each pole; a band at latitude phi holds
    n = round(2 pi R cos(phi) / s) cells of equal longitude width, and its height is chosen so
    that every cell has exactly the area s² (s = cell size). Cells are therefore equal-area and
    close to s x s on the ground at every latitude (unlike a cylindrical grid, whose cells
    stretch towards the poles). The polar band takes what is left of the cap, split into cells
    as close to s² as possible. Cells are lon/lat rectangles, so the layer is exact in EPSG:4326
    and polygons are split between cells with a rectangle clip; no projection library is needed.
    """

    def __init__(self, cell_size_m: float):
        s = float(cell_size_m)
        if not s >= 1000.0:
            raise InputError(f"The grid cell size must be at least 1000 m, got {cell_size_m} m.")
        if s > 2000000.0:
            raise InputError(f"The grid cell size must be at most 2,000,000 m, got {cell_size_m} m.")
        self.cell_size_m = s
        R = EARTH_RADIUS_M
        step = s * s / (2 * math.pi * R * R)     # change of sin(lat) per cell of area s²
        edges, counts = [0.0], []
        while True:
            s0 = edges[-1]
            mid = math.asin(min(s0, 1.0)) + 0.5 * s / R
            n = max(1, int(round(2 * math.pi * R * math.cos(min(mid, math.pi / 2)) / s)))
            s1 = s0 + n * step
            rest = 1.0 - s1
            if rest <= 0.5 * step or s1 >= 1.0:
                n_last = max(1, int(round((1.0 - s0) / step)))
                counts.append(n_last)
                edges.append(1.0)
                break
            counts.append(n)
            edges.append(s1)
        north = np.degrees(np.arcsin(np.clip(np.asarray(edges), -1, 1)))
        north[-1] = 90.0
        # rows from the south pole to the north pole
        self.lat_edges = np.concatenate([-north[::-1], north[1:]])
        self.counts = np.concatenate([np.asarray(counts[::-1]), np.asarray(counts)]).astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    @property
    def n_rows(self):
        return len(self.counts)

    def row_of_lat(self, lat):
        r = np.searchsorted(self.lat_edges, lat, side="right") - 1
        return np.clip(r, 0, self.n_rows - 1)

    def col_of_lon(self, row, lon):
        n = self.counts[row]
        c = np.floor((np.asarray(lon, float) + 180.0) / 360.0 * n).astype(np.int64)
        return np.clip(c, 0, n - 1)

    def cell_bounds(self, row, col):
        n = int(self.counts[row])
        w = 360.0 / n
        return (-180.0 + col * w, float(self.lat_edges[row]),
                -180.0 + (col + 1) * w if col < n - 1 else 180.0, float(self.lat_edges[row + 1]))

    def cell_id(self, row, col):
        return int(self.offsets[row] + col)

    def cell_area_m2(self, row):
        R = EARTH_RADIUS_M
        s0, s1 = (math.sin(math.radians(v)) for v in self.lat_edges[row:row + 2])
        return 2 * math.pi * R * R * (s1 - s0) / int(self.counts[row])

    def cell_geometry(self, row, col, max_segment_deg=0.5):
        """The cell as a lon/lat polygon, edges densified every `max_segment_deg` degrees."""
        return shapely.segmentize(shapely.box(*self.cell_bounds(row, col)), max_segment_deg)


def _clip(g, bounds):
    """The part of g inside a lon/lat rectangle (an exact intersection where the fast clip
    fails on a degenerate ring)."""
    try:
        return shapely.clip_by_rect(g, *bounds)
    except shapely.errors.GEOSException:
        return shapely.intersection(make_valid_polygonal(g), shapely.box(*bounds))


def grid_fractions(polys: MinePolygons, grid: EqualAreaGrid, progress=None, should_stop=None):
    """(polygon index, row, col, fraction) arrays: each polygon's area split between cells.

    A polygon inside one cell (most of them) takes it whole; the others are cut part by part
    (so a polygon split at the antimeridian only visits the cells of its parts) with a rectangle
    clip per cell, and their fractions are the pieces' spherical areas over the sum of them.
    Ordered by polygon, then cell.
    """
    idx = np.flatnonzero(present(polys.geoms))
    b = shapely.bounds(polys.geoms[idx]) if len(idx) else np.empty((0, 4))
    r0, r1 = grid.row_of_lat(b[:, 1]), grid.row_of_lat(b[:, 3])
    c0, c1 = grid.col_of_lon(r0, b[:, 0]), grid.col_of_lon(r0, b[:, 2])
    single = (r0 == r1) & (c0 == c1)
    P = [idx[single]]
    Rw = [r0[single]]
    C = [c0[single]]
    F = [np.ones(int(single.sum()))]
    multi = idx[~single]
    # every (part, cell) whose box meets the part's box, by polygon, part, row, column
    parts, owner = shapely.get_parts(polys.geoms[multi], return_index=True)
    nonempty = ~shapely.is_empty(parts)      # an EMPTY part of a MultiPolygon has no box
    parts, owner = parts[nonempty], multi[owner[nonempty]]
    pb = shapely.bounds(parts) if len(parts) else np.empty((0, 4))
    r0 = grid.row_of_lat(pb[:, 1])
    pr, rows = _expand(np.arange(len(parts)), r0, grid.row_of_lat(pb[:, 3]) - r0 + 1)
    c0 = grid.col_of_lon(rows, pb[pr, 0])
    at, cols = _expand(np.arange(len(rows)), c0, grid.col_of_lon(rows, pb[pr, 2]) - c0 + 1)
    pc, rows = pr[at], rows[at]
    n = grid.counts[rows]
    w = 360.0 / n                            # the cell bounds as in `cell_bounds`
    x0 = (-180.0 + cols * w).tolist()
    x1 = np.where(cols < n - 1, -180.0 + (cols + 1) * w, 180.0).tolist()
    y0, y1 = grid.lat_edges[rows].tolist(), grid.lat_edges[rows + 1].tolist()
    tick = ticker(progress, should_stop, 0.0, 0.9, len(pc))
    clipped = np.empty(len(pc), dtype=object)
    for k, q in enumerate(pc.tolist()):
        tick(k)
        clipped[k] = _clip(parts[q], (x0[k], y0[k], x1[k], y1[k]))
    pieces = polygonal_all(clipped)
    got = np.flatnonzero(~shapely.is_missing(pieces))
    owner = owner[pc[got]].tolist()
    cells = list(zip(rows[got].tolist(), cols[got].tolist()))
    pieces = pieces[got]
    stop_if_asked(should_stop)
    # the pieces' areas in one call (one call per polygon started threads ~30,000 times)
    areas = polygon_area_m2(pieces).tolist() if len(pieces) else []
    per = {}
    for i, cell, a in zip(owner, cells, areas):
        acc = per.setdefault(i, {})
        acc[cell] = acc.get(cell, 0.0) + a
    for i in multi.tolist():
        acc = per.get(i, {})
        tot = sum(acc.values())
        if tot <= 0:           # degenerate (zero-area) polygon: the cell of its centroid
            x0, y0, x1, y1 = shapely.bounds(polys.geoms[i])   # its box centre (a centroid
            r = int(grid.row_of_lat(0.5 * (y0 + y1)))          # of no area is EMPTY)
            acc, tot = {(r, int(grid.col_of_lon(r, 0.5 * (x0 + x1)))): 1.0}, 1.0
        keys = sorted(k2 for k2 in acc if acc[k2] > 0)
        P.append(np.full(len(keys), i, dtype=np.int64))
        Rw.append(np.array([k2[0] for k2 in keys], dtype=np.int64))
        C.append(np.array([k2[1] for k2 in keys], dtype=np.int64))
        F.append(np.array([acc[k2] / tot for k2 in keys]))
    P, Rw, C, F = (np.concatenate(x) if x else np.empty(0) for x in (P, Rw, C, F))
    order = np.lexsort((C, Rw, P))
    return (P[order].astype(np.int64), Rw[order].astype(np.int64), C[order].astype(np.int64),
            F[order].astype(float))
