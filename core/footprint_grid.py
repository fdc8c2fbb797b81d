"""Footprint grids and the split of each mine polygon's area between their cells
(`grid_fractions`): equal-area cells on the sphere (`EqualAreaGrid`, the grid table) and regular
lon/lat cells on the global lattice anchored at (-180°, 90°) (`LonLatGrid`, the commodity raster).
No qgis imports.
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


#: The smallest raster cell: one arc second (a 1″ lattice has 648,000 rows).
MIN_CELL_DEG = 1.0 / 3600.0
#: Cell sizes named when a size is refused: customary ones that divide 180° into whole cells.
CUSTOMARY_CELL_DEG = (1 / 3600, 1 / 1200, 1 / 120, 1 / 60, 0.025, 0.05, 1 / 12, 0.1, 0.125, 0.25,
                      0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 15.0, 30.0, 45.0, 90.0)


def deg_text(value: float) -> str:
    """A cell size as a user can type it back (0.5, 0.0833333333333333)."""
    return f"{value:.15g}"


def check_cell_deg(cell_deg) -> int:
    """The number of rows (180 / cell_deg, a whole number) of a lon/lat lattice of `cell_deg`
    degrees; InputError, in one sentence saying what to choose, for a size that is not a number,
    not above 0, above 90°, below one arc second, or that does not divide 180° into whole cells
    within float noise (a relative 1e-9: 0.0833333333333 is 180/2160, 0.7 is refused)."""
    try:
        d = float(cell_deg)
    except (TypeError, ValueError):
        d = float("nan")
    if not d > 0:
        raise InputError(f"The raster cell size must be more than 0°, got {cell_deg}; choose e.g. "
                         f"0.5° (the default) or another size that divides 180° into whole cells.")
    if d > 90.0:
        raise InputError(f"The raster cell size must be at most 90°, got {deg_text(d)}°; choose "
                         f"a size that divides 180° into whole cells, e.g. 0.5° (the default).")
    if d < MIN_CELL_DEG * (1 - 1e-9):
        raise InputError(f"The raster cell size must be at least one arc second (1/3600 = "
                         f"{deg_text(MIN_CELL_DEG)}°), got {deg_text(d)}°; choose e.g. 0.5° (the "
                         f"default) or 0.00833333333333333 (30″).")
    n = 180.0 / d
    rows = int(round(n))
    if abs(n - rows) > 1e-9 * rows:
        lower = max([c for c in CUSTOMARY_CELL_DEG if c < d], default=CUSTOMARY_CELL_DEG[0])
        upper = min([c for c in CUSTOMARY_CELL_DEG if c > d], default=CUSTOMARY_CELL_DEG[-1])
        raise InputError(f"The raster cell size {deg_text(d)}° does not divide 180° into whole "
                         f"cells (180 / {deg_text(d)} = {n:.10g}); choose one that does, such as "
                         f"{deg_text(lower)}° or {deg_text(upper)}°, or 180/n° for a whole "
                         f"number n.")
    return rows


class LonLatGrid:
    """Regular lon/lat cells of `cell_deg` degrees on the global lattice anchored at (-180°, 90°):
    180/cell_deg rows by 360/cell_deg columns (`check_cell_deg` refuses a size that does not
    divide 180° into whole cells; `cell_deg` is then exactly 180 / rows).

    It offers what `grid_fractions` asks of a grid (`row_of_lat`, `col_of_lon`, `counts`,
    `lat_edges`, `cell_bounds`, `cell_area_m2`), so polygons are split between its cells by the
    same code (and area model) as between the equal-area cells. Rows are numbered from the south
    pole up, as in `EqualAreaGrid`; a north-up raster's row is `raster_row(row)`.
    """

    def __init__(self, cell_deg: float):
        self.n_rows = check_cell_deg(cell_deg)
        self.n_cols = 2 * self.n_rows
        self.cell_deg = 180.0 / self.n_rows
        # -90 + k 180/n as (2k - n) 90 / n: one rounding, so an edge is the float nearest to
        # its value (23.9, not 23.899999999999991) and the poles are exactly ±90
        k = np.arange(self.n_rows + 1, dtype=np.int64)
        self.lat_edges = (2 * k - self.n_rows) * 90.0 / self.n_rows
        self.counts = np.full(self.n_rows, self.n_cols, dtype=np.int64)
        self.offsets = np.arange(self.n_rows + 1, dtype=np.int64) * self.n_cols

    def row_of_lat(self, lat):
        r = np.searchsorted(self.lat_edges, lat, side="right") - 1
        return np.clip(r, 0, self.n_rows - 1)

    def col_of_lon(self, row, lon):
        # as EqualAreaGrid: the column bounds of grid_fractions are -180 + col * 360 / n
        c = np.floor((np.asarray(lon, float) + 180.0) / 360.0 * self.n_cols).astype(np.int64)
        return np.clip(c, 0, self.n_cols - 1)

    def lon_edge(self, col):
        """The western edge of column `col` (`n_cols` gives 180°), one rounding as `lat_edges`
        (grid_fractions clips at -180 + col 360/n, the same within 1e-13°)."""
        return (2 * int(col) - self.n_cols) * 180.0 / self.n_cols

    def cell_bounds(self, row, col):
        return (self.lon_edge(col), float(self.lat_edges[row]), self.lon_edge(col + 1),
                float(self.lat_edges[row + 1]))

    def cell_id(self, row, col):
        return int(self.offsets[row] + col)

    def cell_area_m2(self, row):
        """The cells' exact area on the sphere in row `row`: R² Δλ (sin φ1 - sin φ0)."""
        R = EARTH_RADIUS_M
        s0, s1 = (math.sin(math.radians(v)) for v in self.lat_edges[row:row + 2])
        return R * R * math.radians(self.cell_deg) * (s1 - s0)

    def raster_row(self, row):
        """The row of a north-up raster of the whole lattice (0 = the cells along 90°N)."""
        return self.n_rows - 1 - np.asarray(row)

    def cell_geometry(self, row, col, max_segment_deg=0.5):
        return shapely.segmentize(shapely.box(*self.cell_bounds(row, col)), max_segment_deg)


#: Polygon-cell pairs clipped at a time by `grid_fractions`.
_CLIP_CHUNK = 65536


def _clip(g, bounds):
    """The part of g inside a lon/lat rectangle (an exact intersection where the fast clip
    fails on a degenerate ring)."""
    try:
        return shapely.clip_by_rect(g, *bounds)
    except shapely.errors.GEOSException:
        return shapely.intersection(make_valid_polygonal(g), shapely.box(*bounds))


def grid_fractions(polys: MinePolygons, grid, progress=None, should_stop=None):
    """(polygon index, row, col, fraction) arrays: each polygon's area split between the cells
    of `grid` (an `EqualAreaGrid` or a `LonLatGrid`).

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
    tick = ticker(progress, should_stop, 0.0, 0.9, len(pc))
    per = {}
    # in chunks of pairs, so that memory holds one chunk's pieces, not every pair's (a fine
    # lattice has millions of pairs); the pieces' areas in one call per chunk (one call per
    # polygon started threads ~30,000 times); the sums run in pair order, as in one pass
    for k0 in range(0, len(pc), _CLIP_CHUNK):
        sl = slice(k0, k0 + _CLIP_CHUNK)
        r_, c_ = rows[sl], cols[sl]
        n = grid.counts[r_]
        w = 360.0 / n                        # the cell bounds as in `cell_bounds`
        x0 = (-180.0 + c_ * w).tolist()
        x1 = np.where(c_ < n - 1, -180.0 + (c_ + 1) * w, 180.0).tolist()
        y0, y1 = grid.lat_edges[r_].tolist(), grid.lat_edges[r_ + 1].tolist()
        clipped = np.empty(len(r_), dtype=object)
        for k, q in enumerate(pc[sl].tolist()):
            tick(k0 + k)
            clipped[k] = _clip(parts[q], (x0[k], y0[k], x1[k], y1[k]))
        pieces = polygonal_all(clipped)
        del clipped
        got = np.flatnonzero(~shapely.is_missing(pieces))
        if not len(got):
            continue
        areas = polygon_area_m2(pieces[got]).tolist()
        del pieces
        cells = zip(r_[got].tolist(), c_[got].tolist())
        for i, cell, a in zip(owner[pc[sl][got]].tolist(), cells, areas):
            acc = per.setdefault(i, {})
            acc[cell] = acc.get(cell, 0.0) + a
    stop_if_asked(should_stop)
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
