"""Mine land footprint by primary commodity, region and equal-area grid cell.

Input: the clustered polygons (one record per polygon: geometry in lon/lat EPSG:4326, cluster id,
primary commodities as a comma list, status, area in m²; optionally the data sources). Output:
plain tables (lists of dicts keyed by the schemas below) that always reconcile:

- the area of a polygon whose cluster has n primary commodities is split equally among them
  (as the R implementation does); a polygon without a primary commodity counts as "Unknown";
- regions (countries, biomes), read by the core's geometry rule like the mine polygons (a ring
  across ±180° is cut there): by default a polygon's area is split by its intersection with the
  regions (fractions of its spherical area), the part outside every region is "Outside"; the
  paper's rule ("centroid") gives the whole polygon to the region nearest its centroid. Mine land
  where regions overlap is split equally between them and reported (`FootprintSummary.overlaps`,
  `FootprintSummary.overlap_lines`);
- grid: equal-area latitude-band cells (see `EqualAreaGrid`); a polygon's area is split by its
  intersection with the cells;
- raster (optional): km² per commodity in regular lon/lat cells of the global lattice (see
  `footprint_raster`), split between cells as the grid and among commodities as the tables.

So the commodity, region and grid tables and the raster's bands each sum to the total polygon
area. No qgis imports.

This module is the façade: the work is done by `footprint_input` (the clustered polygons and
their commodity shares), `footprint_regions` (region polygons and the allocation to them),
`footprint_grid` (the equal-area and the lon/lat grids), `footprint_tables` (the tables and
their schemas) and `footprint_raster` (the commodity raster); `summarise` makes every table at
once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

from .errors import InputError
from .footprint_grid import EqualAreaGrid, LonLatGrid, check_cell_deg, grid_fractions
from .footprint_input import (NO_SOURCE, STATUSES, UNKNOWN, MinePolygons, commodity_shares, mine_polygons,
                              split_commodities)
from .footprint_regions import (ALLOCATIONS, MAX_PIECE_VERTICES, NEAREST_SEARCH_DEG, NO_NAME, OUTSIDE,
                                OUTSIDE_TOLERANCE, OUTSIDE_TOLERANCE_M2, RegionAllocation, RegionOverlap,
                                Regions, check_allocation, region_allocation, region_fractions, regions)
from .footprint_raster import CommodityRaster, commodity_raster
from .footprint_tables import (COMMODITY_FIELDS, GRID_BASE_FIELDS, REGION_FIELDS, TABLE2_FIELDS,
                               TABLE3_FIELDS, GridTable, commodity_field_name, commodity_table, grid_fields,
                               grid_table, region_table, table2, table3)
from .progress import report, span, stop_if_asked

__all__ = [
    "ALLOCATIONS", "COMMODITY_FIELDS", "CommodityRaster", "EqualAreaGrid", "FootprintSummary",
    "GRID_BASE_FIELDS", "GridTable", "LonLatGrid", "MAX_PIECE_VERTICES", "MinePolygons",
    "NEAREST_SEARCH_DEG", "NO_NAME", "NO_SOURCE", "OUTSIDE", "OUTSIDE_TOLERANCE",
    "OUTSIDE_TOLERANCE_M2", "REGION_FIELDS", "RegionAllocation", "RegionOverlap", "Regions",
    "STATUSES", "TABLE2_FIELDS", "TABLE3_FIELDS", "UNKNOWN", "check_allocation", "check_cell_deg",
    "commodity_field_name", "commodity_raster", "commodity_shares", "commodity_table",
    "grid_fields", "grid_fractions", "grid_table", "mine_polygons", "region_allocation",
    "region_fractions", "region_table", "regions", "split_commodities", "summarise", "table2",
    "table3",
]


#: The table each region layer's overlaps are split in, for the log's sentences.
_TABLE_OF = {"countries": "country", "biomes": "biome"}


@dataclass
class FootprintSummary:
    """Every footprint table (see `summarise`). `overlaps`: the pairs of regions that overlap
    where there is mine land (`RegionOverlap`, countries first, then biomes, each by decreasing
    area); their mine land is split equally between them in the tables (`footprint_regions`).
    `raster`: the `CommodityRaster` (km² per lon/lat cell and commodity) when `summarise` was
    given `raster_cell_deg`, else None."""
    total_area_m2: float
    commodity_rows: list
    country_rows: list
    biome_rows: list
    table2_rows: list
    table3_rows: list
    grid: Optional[GridTable]
    allocation: str
    cell_size_m: Optional[float]
    overlaps: list = field(default_factory=list)
    raster: Optional[CommodityRaster] = None

    @property
    def assigned_area_pct(self) -> float:
        return self.table2_rows[0]["area_pct"] if self.table2_rows else 0.0

    def overlap_lines(self, max_pairs: int = 10) -> list:
        """One English sentence per overlapping pair of regions, for the log (a warning each):
        the `max_pairs` largest per region layer, then one sentence for the rest of that layer;
        empty when no regions overlap."""
        lines = []
        for layer in dict.fromkeys(o.regions for o in self.overlaps):
            pairs = [o for o in self.overlaps if o.regions == layer]
            table = _TABLE_OF.get(layer, "region")
            for o in pairs[:max_pairs]:
                n = f"{o.n_polygons} polygon{'s' if o.n_polygons != 1 else ''}"
                if self.allocation == "centroid":
                    lines.append(f"The {layer or 'regions'} '{o.region_a}' and '{o.region_b}' overlap at the "
                                 f"centroids of {n} with {_area_text(o.area_m2)} of mine land "
                                 f"({_pct_text(o.area_m2, self.total_area_m2)} of the total); the {table} "
                                 f"table splits their area equally between the two.")
                else:
                    lines.append(f"The {layer or 'regions'} '{o.region_a}' and '{o.region_b}' overlap on "
                                 f"{_area_text(o.area_m2)} of mine land in {n} "
                                 f"({_pct_text(o.area_m2, self.total_area_m2)} of the total); the {table} "
                                 f"table splits that area equally between the two.")
            rest = pairs[max_pairs:]
            if rest:
                a = rest[0].area_m2                 # the largest of the rest
                lines.append(f"{len(rest)} more pairs of overlapping {layer or 'regions'} share up to "
                             f"{_area_text(a)} of mine land each ({_pct_text(a, self.total_area_m2)} of "
                             f"the total); the {table} table splits it equally likewise.")
        return lines


def _area_text(m2: float) -> str:
    if m2 >= 1e4:
        return f"{m2 / 1e6:,.2f} km²"
    return f"{m2:,.0f} m²" if m2 >= 1.0 else f"{m2:.2g} m²"


def _pct_text(part: float, whole: float) -> str:
    pct = 100.0 * part / whole if whole > 0 else 0.0
    return f"{pct:.2f} %" if pct >= 0.01 else "under 0.01 %"


def summarise(polys: MinePolygons, countries: Optional[Regions] = None,
              biomes: Optional[Regions] = None, allocation="intersection", cell_size_m=50000.0,
              point_cluster_ids=None, progress=None, should_stop=None,
              point_primary=None, raster_cell_deg=None) -> FootprintSummary:
    """Every footprint table; `cell_size_m=None` skips the grid; the points for Table 2 as in
    `table2`; the overlaps between countries and between biomes in `overlaps` (log them with
    `overlap_lines`); `raster_cell_deg` (degrees, None: none) adds the commodity raster
    (`commodity_raster`, bands in the commodity table's order). Raises InputError, Cancelled."""
    if len(polys) == 0:
        raise InputError("The clustered polygons layer has no polygon; run the cluster "
                         "algorithm on mine polygons first.")
    check_allocation(allocation)
    if raster_cell_deg is not None:
        check_cell_deg(raster_cell_deg)      # before the long work

    part = functools.partial(span, progress)
    stop_if_asked(should_stop)
    com = commodity_table(polys)
    t2 = table2(polys, point_cluster_ids, point_primary)
    t3 = table3(polys)
    rows, overlaps = [], []
    for layer, regs, lo, hi in (("countries", countries, 0.0, 0.4), ("biomes", biomes, 0.4, 0.8)):
        alloc = region_allocation(polys, regs, allocation, part(lo, hi), should_stop)
        rows.append(region_table(polys, regs, allocation, allocated=alloc))
        overlaps.extend(o._replace(regions=layer) for o in alloc.overlaps)
    grid = raster = None
    mid = 1.0 if raster_cell_deg is None else (0.9 if cell_size_m else 0.8)
    if cell_size_m:
        grid = grid_table(polys, cell_size_m, part(0.8, mid), should_stop)
    if raster_cell_deg is not None:
        raster = commodity_raster(polys, raster_cell_deg, part(mid, 1.0), should_stop,
                                  order=[r["commodity"] for r in com])
    report(progress, 1.0)
    return FootprintSummary(polys.total_area_m2, com, rows[0], rows[1], t2, t3, grid, allocation,
                            cell_size_m, overlaps, raster)
