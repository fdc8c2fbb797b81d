"""Footprint raster: mine land per primary commodity in regular lon/lat cells (km² per cell), for
life-cycle and input-output models that take land use as a raster. No qgis or GDAL imports: the
wrapper writes the array (algorithms/layer_io.write_geotiff).

- Cells: the global lattice of `cell_deg` degrees anchored at (-180°, 90°) (`LonLatGrid`), so
  the rasters of different runs align cell on cell.
- Split: a polygon inside one cell goes whole to it; a polygon across cells is divided by the
  spherical areas of its pieces in the cells (`grid_fractions`, the grid table's split, and the
  project's one area model, `core.geodesy.polygon_area_m2`); polygons are in lon/lat, cut at
  ±180° by the core's geometry rule (`mine_polygons`), so a polygon across the antimeridian lands
  in the easternmost and the westernmost columns.
- Bands: one per row of the commodity table, in its order (by decreasing area, ties by name,
  "Unknown" last), and the area of a polygon is split among its cluster's primaries as the
  tables split it (`commodity_shares`: 1/n to each of n primaries, "Unknown" for none), so each
  band sums to the commodity table's `area_km2` and all bands to the total mine area.
- Extent: the data's bounding box snapped outward to the lattice; the whole globe when the
  lattice itself is small (at most `GLOBE_CELLS` cells a band, i.e. cells of 0.5° or more).
- Kept sparse (the cells holding mine land), so a fine global raster costs what its mine land
  costs; `CommodityRaster.array` makes the dense array, `CommodityRaster.blocks` its tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .errors import InputError
from .footprint_grid import CUSTOMARY_CELL_DEG, LonLatGrid, deg_text, grid_fractions
from .footprint_input import MinePolygons, _share_arrays
from .footprint_tables import commodity_table
from .geometry import present
from .progress import report, span, stop_if_asked

#: A lattice of at most this many cells a band is written whole (the 0.5° lattice: 360 x 720).
GLOBE_CELLS = 360 * 720
#: The most values (bands x rows x cols) a raster may have: 2^35, e.g. 35 bands of the global 30″
#: lattice (a GeoTIFF of at least ~0.3 GB: every empty 256 x 256 tile takes ~0.5 kB).
MAX_RASTER_CELLS = 2 ** 35


@dataclass
class CommodityRaster:
    """Mine land in km² per cell and primary commodity (see `commodity_raster`), kept sparse: the
    cells holding mine land, whatever the raster's size.

    `bands`: the commodity of each band, the commodity table's order. `shape`: (bands, rows,
    cols), north-up (row 0 along the top edge). `geotransform`: GDAL's (x of the left edge, cell,
    0, y of the top edge, 0, -cell) in degrees (EPSG:4326). `extent`: (xmin, ymin, xmax, ymax).
    `origin`: (row, col) of the top-left cell in the global lattice, rows counted from 90°N.
    `band`, `row`, `col`, `km2`: one entry per band and cell with mine land, ordered by band, row
    and column. `unplaced_km2`: the area of polygons without a geometry (an `area_m2` but no
    shape), which no cell can hold (0 for the cluster output). `array` is the dense float64
    (bands, rows, cols) array, 0 where there is no mine land (made on each call); `blocks` gives
    it tile by tile, only the tiles holding mine land (what the GeoTIFF writer takes).
    """
    bands: list
    shape: tuple
    geotransform: tuple
    extent: tuple
    cell_deg: float
    origin: tuple
    band: np.ndarray
    row: np.ndarray
    col: np.ndarray
    km2: np.ndarray
    unplaced_km2: float = 0.0

    dtype = np.dtype(np.float64)

    @property
    def array(self) -> np.ndarray:
        """The dense (bands, rows, cols) array in km² (bands x rows x cols x 8 bytes)."""
        out = np.zeros(self.shape)
        out[self.band, self.row, self.col] = self.km2
        return out

    @property
    def total_km2(self) -> float:
        return float(self.km2.sum())

    def band_sums_km2(self) -> dict:
        """{commodity: km² in its band}."""
        sums = np.bincount(self.band, weights=self.km2, minlength=len(self.bands))
        return dict(zip(self.bands, sums.tolist()))

    def _tiles(self, size):
        """The entries in tile order (band, tile row, tile column) and where each tile starts."""
        tiles_r, tiles_c = -(-self.shape[1] // size), -(-self.shape[2] // size)
        key = (self.band * tiles_r + self.row // size) * tiles_c + self.col // size
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0]) if len(key) else \
            np.empty(0, dtype=np.int64)
        return order, starts

    def n_blocks(self, size=256) -> int:
        """How many `size` x `size` tiles hold mine land (what `blocks` yields)."""
        return len(self._tiles(size)[1])

    def blocks(self, size=256):
        """(band, first row, first col, 2-D float64 block) of every tile of the `size` x `size`
        tiling (from the top-left corner) that holds mine land, by band, then row, then column;
        a tile at the right or bottom edge is cut to the raster."""
        order, starts = self._tiles(size)
        ends = np.r_[starts[1:], len(order)].astype(np.int64)
        rows, cols = self.shape[1:]
        for a, b in zip(starts.tolist(), ends.tolist()):
            at = order[a:b]
            band = int(self.band[at[0]])
            r0, c0 = int(self.row[at[0]]) // size * size, int(self.col[at[0]]) // size * size
            block = np.zeros((min(size, rows - r0), min(size, cols - c0)))
            block[self.row[at] - r0, self.col[at] - c0] = self.km2[at]
            yield band, r0, c0, block


def _window(grid: LonLatGrid, bounds) -> tuple:
    """(first row, last row, first col, last col), rows from the south, of the lattice cells
    that the box (xmin, ymin, xmax, ymax) meets, snapped outward; the whole lattice when small."""
    if grid.n_rows * grid.n_cols <= GLOBE_CELLS:
        return 0, grid.n_rows - 1, 0, grid.n_cols - 1
    xmin, ymin, xmax, ymax = bounds
    r0 = int(grid.row_of_lat(ymin))
    r1 = max(r0, min(grid.n_rows - 1, int(np.searchsorted(grid.lat_edges, ymax, side="left")) - 1))
    c0 = int(grid.col_of_lon(0, xmin))
    c1 = int(np.ceil((float(xmax) + 180.0) / 360.0 * grid.n_cols)) - 1
    return r0, r1, c0, max(c0, min(grid.n_cols - 1, c1))


def _n_values(window, n_bands):
    r0, r1, c0, c1 = window
    return (r1 - r0 + 1) * (c1 - c0 + 1) * max(n_bands, 1)


def _check_size(grid: LonLatGrid, window, n_bands, bounds):
    """InputError for a raster of more than MAX_RASTER_CELLS values, naming the smallest
    customary cell size whose raster of these data is small enough."""
    need = _n_values(window, n_bands)
    if need <= MAX_RASTER_CELLS:
        return
    fits = next((size for size in CUSTOMARY_CELL_DEG if size > grid.cell_deg and
                 _n_values(_window(LonLatGrid(size), bounds), n_bands) <= MAX_RASTER_CELLS), None)
    advice = f"cells of {deg_text(fits)}° or larger" if fits else "larger cells"
    r0, r1, c0, c1 = window
    raise InputError(f"A raster of {c1 - c0 + 1:,} x {r1 - r0 + 1:,} cells of "
                     f"{deg_text(grid.cell_deg)}° with {n_bands} commodity bands would hold "
                     f"{need:,} values, more than the {MAX_RASTER_CELLS:,} it may have; choose "
                     f"{advice}.")


def commodity_raster(polys: MinePolygons, cell_deg=0.5, progress=None, should_stop=None,
                     order=None) -> CommodityRaster:
    """Mine land in km² per `cell_deg`-degree lon/lat cell, one band per commodity of the
    commodity table (see the module's text). `order`: the commodity table's commodities, when
    made already (`summarise` passes them). Raises InputError (no polygon, no geometry, a cell
    size that does not divide 180° into whole cells, a raster over `MAX_RASTER_CELLS`), Cancelled.
    """
    if len(polys) == 0:
        raise InputError("The clustered polygons layer has no polygon; run the cluster "
                         "algorithm on mine polygons first.")
    grid = LonLatGrid(cell_deg)
    stop_if_asked(should_stop)
    if order is None:
        order = [r["commodity"] for r in commodity_table(polys)]
    placed = present(polys.geoms)
    if not placed.any():
        raise InputError(f"None of the {len(polys)} clustered polygons has a geometry, so no "
                         f"raster cell can hold their area; use the cluster algorithm's "
                         f"polygons output.")
    b = shapely.bounds(polys.geoms[placed])
    bounds = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
    r0, r1, c0, c1 = _window(grid, bounds)
    _check_size(grid, (r0, r1, c0, c1), len(order), bounds)

    p, r, c, f = grid_fractions(polys, grid, span(progress, 0.0, 0.9), should_stop)
    stop_if_asked(should_stop)
    if len(r):      # a box edge on a lattice line in float noise: every cell with area is kept
        r0, r1 = min(r0, int(r.min())), max(r1, int(r.max()))
        c0, c1 = min(c0, int(c.min())), max(c1, int(c.max()))
    # join the cell fractions with the commodity shares of each polygon (as grid_table)
    sp, sc, sf, names = _share_arrays(polys)
    start = np.searchsorted(sp, np.arange(len(polys) + 1))
    count = np.diff(start)
    rep = np.repeat(np.arange(len(p)), count[p])
    within = np.arange(len(rep)) - np.repeat(np.cumsum(count[p]) - count[p], count[p])
    si = start[p][rep] + within
    band_of = {name: k for k, name in enumerate(order)}
    band = np.array([band_of[name] for name in names], dtype=np.int64)[sc[si]] if len(si) else \
        np.empty(0, dtype=np.int64)
    rows, cols = r1 - r0 + 1, c1 - c0 + 1
    flat = (band * rows + (r1 - r[rep])) * cols + (c[rep] - c0)     # north-up rows
    # one entry per band and cell (the pairs summed in their order: by polygon, then cell)
    keys, at = np.unique(flat, return_inverse=True)
    km2 = np.bincount(at.ravel(), weights=polys.area_m2[p[rep]] * f[rep] * sf[si] / 1e6,
                      minlength=len(keys))
    band, rest = np.divmod(keys, rows * cols)
    row, col = np.divmod(rest, cols)
    d = grid.cell_deg
    top, left = float(grid.lat_edges[r1 + 1]), grid.lon_edge(c0)
    extent = (left, float(grid.lat_edges[r0]), grid.lon_edge(c1 + 1), top)
    report(progress, 1.0)
    return CommodityRaster(list(order), (len(order), rows, cols), (left, d, 0.0, top, 0.0, -d),
                           extent, d, (int(grid.raster_row(r1)), c0), band, row, col, km2,
                           float(polys.area_m2[~placed].sum()) / 1e6)
