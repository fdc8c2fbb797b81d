"""Mine land footprint by primary commodity, region and equal-area grid cell.

Input: the clustered polygons (one record per polygon: geometry in lon/lat EPSG:4326, cluster id,
primary commodities as a comma list, status, area in m²; optionally the data sources). Output:
plain tables (lists of dicts keyed by the schemas below) that always reconcile:

- the area of a polygon whose cluster has n primary commodities is split equally among them
  (as the R implementation does); a polygon without a primary commodity counts as "Unknown";
- regions (countries, biomes): by default a polygon's area is split by its intersection with the
  regions (fractions of its spherical area), the part outside every region is "Outside"; the
  paper's rule ("centroid") gives the whole polygon to the region nearest its centroid;
- grid: equal-area latitude-band cells (see `EqualAreaGrid`); a polygon's area is split by its
  intersection with the cells.

So the commodity, region and grid tables each sum to the total polygon area. No qgis imports.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import shapely

from .errors import InputError
from .commodities import Vocabulary, parse_commodities
from .geodesy import EARTH_RADIUS_M, haversine_m, polygon_area_m2
from .geometry import make_valid_polygonal, polygonal, polygonal_all, present, read_polygons, valid_parts
from .progress import report, span, stop_if_asked, ticker

UNKNOWN = "Unknown"
OUTSIDE = "Outside"
NO_NAME = "(no name)"
NO_SOURCE = "(no source)"
ALLOCATIONS = ("intersection", "centroid")
STATUSES = ("assigned", "unassigned", "multiple")
_UNKNOWN_VALUES = {"", "na", "n/a", "null", "none", "nan"}   # for sources

COMMODITY_FIELDS = (
    ("commodity", "string"), ("area_km2", "double"), ("area_pct", "double"),
    ("n_polygons", "int"), ("n_clusters", "int"),
)
REGION_FIELDS = (
    ("region", "string"), ("commodity", "string"), ("area_km2", "double"),
    ("area_pct", "double"), ("region_pct", "double"),
)
TABLE2_FIELDS = (
    ("status", "string"), ("area_km2", "double"), ("area_pct", "double"),
    ("n_clusters", "int"), ("clusters_pct", "double"),
    ("n_polygons", "int"), ("polygons_pct", "double"),
    ("n_points", "int"), ("points_pct", "double"),
    ("cluster_area_km2", "double"), ("polygons_per_cluster", "double"),
    ("points_per_cluster", "double"), ("polygon_area_km2", "double"),
)
TABLE3_FIELDS = (
    ("status", "string"), ("sources", "string"), ("area_km2", "double"),
    ("area_pct", "double"), ("n_polygons", "int"), ("polygons_pct", "double"),
    ("polygon_area_km2", "double"),
)
GRID_BASE_FIELDS = (
    ("cell_id", "int"), ("row", "int"), ("col", "int"), ("cell_area_km2", "double"),
    ("mine_area_km2", "double"), ("dominant", "string"), ("dominant_km2", "double"),
    ("dominant_pct", "double"), ("n_polygons", "int"),
)


def split_commodities(text) -> tuple:
    """Commodity names of a comma list (unknown values dropped), as `parse_commodities` reads them."""
    return parse_commodities(text)


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


# ----------------------------------------------------------------------------- input records

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


@dataclass
class Regions:
    """Named region polygons (countries, biomes, ecoregions) in lon/lat, as small pieces.

    Each input region is repaired (invalid parts through `make_valid`) and cut by a quadtree of
    rectangles into pieces of at most `MAX_PIECE_VERTICES` vertices, so that every intersection
    test and clip works on a small geometry. Pieces keep their region's name; the tables add
    them up by name (several features with one name are one region).
    """
    geoms: np.ndarray
    names: list

    def __len__(self):
        return len(self.names)

    @property
    def region_names(self):
        return sorted(set(self.names))


MAX_PIECE_VERTICES = 256


def _subdivide(g, max_vertices=MAX_PIECE_VERTICES, depth=0):
    """Valid pieces of a valid polygon, cut along the longer side of the box until small."""
    if shapely.get_num_coordinates(g) <= max_vertices or depth >= 40:
        return [g]
    x0, y0, x1, y1 = shapely.bounds(g)
    if x1 - x0 >= y1 - y0:
        m = 0.5 * (x0 + x1)
        boxes = ((x0, y0, m, y1), (m, y0, x1, y1))
    else:
        m = 0.5 * (y0 + y1)
        boxes = ((x0, y0, x1, m), (x0, m, x1, y1))
    out = []
    for b in boxes:
        try:
            piece = shapely.clip_by_rect(g, *b)
        except shapely.errors.GEOSException:
            piece = shapely.intersection(g, shapely.box(*b))
        for q in valid_parts(polygonal(piece)):
            out.extend(_subdivide(q, max_vertices, depth + 1))
    return out


def regions(geoms, names, should_stop=None) -> Regions:
    """Region polygons with their names; NULL names become '(no name)', invalid rings are
    repaired, and large regions are cut into small pieces (see `Regions`)."""
    geoms = list(geoms)
    _check_len("region name", names, len(geoms))
    pieces, piece_names = [], []
    for g, v in zip(geoms, names):
        stop_if_asked(should_stop)
        if g is None or shapely.is_empty(g):
            continue
        v = "" if v is None else str(v).strip()
        for part in valid_parts(polygonal(g)):
            for p in _subdivide(part):
                pieces.append(p)
                piece_names.append(v or NO_NAME)
    return Regions(np.asarray(pieces, dtype=object), piece_names)


# ----------------------------------------------------------------------------- helpers

def commodity_shares(polys: MinePolygons):
    """Per polygon, the list of (commodity, fraction): 1/n to each of n primaries, else Unknown.
    (Made once per MinePolygons: every table asks for it.)"""
    if polys._shares is None:
        polys._shares = [[(c, 1.0 / len(p)) for c in p] if p else [(UNKNOWN, 1.0)]
                         for p in polys.primary]
    return polys._shares


NEAREST_SEARCH_DEG = 1.0


def _lonlat_centroids(geoms):
    """Centroids in lon/lat; a polygon split at ±180° (a box wider than 180°) is unwrapped first,
    so its centroid lies on the antimeridian, not near 0° longitude."""
    geoms = np.asarray(geoms, dtype=object)
    cent = shapely.centroid(geoms)
    b = shapely.bounds(geoms)
    wide = np.flatnonzero((b[:, 2] - b[:, 0]) > 180.0)
    if len(wide):
        shifted = shapely.transform(
            geoms[wide], lambda c: np.column_stack([np.where(c[:, 0] < 0.0, c[:, 0] + 360.0, c[:, 0]),
                                                    c[:, 1]]))
        c = shapely.centroid(shifted)
        x = shapely.get_x(c)
        cent[wide] = shapely.points(np.where(x > 180.0, x - 360.0, x), shapely.get_y(c))
    return cent


def _nearest_to_centroids(geoms, idx, regs, tree, should_stop=None):
    """The paper's rule: each polygon to the region containing its centroid, else the nearest.

    Nearest is measured on the Earth (haversine from the centroid to the nearest point of each
    candidate piece, ties to the lowest piece index); candidates are the pieces within the
    planar nearest distance stretched by 1/cos(latitude). A centroid more than
    NEAREST_SEARCH_DEG degrees from every region (far out at sea) takes the planar nearest.
    """
    stop_if_asked(should_stop)
    cent = _lonlat_centroids(geoms)
    pi, ri = tree.query(cent, predicate="intersects")
    region = np.full(len(geoms), -1, dtype=np.int64)
    order = np.lexsort((ri, pi))
    pi, ri = pi[order], ri[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    region[pi[first]] = ri[first]
    out = np.flatnonzero(region < 0)
    if len(out):
        q, near, d0 = (lambda r: (r[0][0], r[0][1], r[1]))(
            tree.query_nearest(cent[out], return_distance=True, all_matches=False))
        region[out[q]] = near
        close = d0 <= NEAREST_SEARCH_DEG
        k = out[q[close]]
        if len(k):
            x, y = shapely.get_x(cent[k]), shapely.get_y(cent[k])
            d = d0[close]
            lat = np.minimum(np.abs(y) + d, 89.9)
            w = d / np.maximum(np.cos(np.radians(lat)), 0.05) + 1e-9
            boxes = shapely.box(x - w, y - d - 1e-9, x + w, y + d + 1e-9)
            bq, br = tree.query(boxes)
            line = shapely.shortest_line(regs.geoms[br], cent[k][bq])
            end = shapely.get_coordinates(shapely.get_point(line, 0))
            dist = haversine_m(x[bq], y[bq], end[:, 0], end[:, 1])
            o = np.lexsort((br, dist, bq))
            best = np.ones(len(o), dtype=bool)
            best[1:] = bq[o][1:] != bq[o][:-1]
            region[k[bq[o][best]]] = br[o][best]
    keep = region >= 0
    return idx[keep], region[keep], np.ones(int(keep.sum()), float)


#: A polygon's part outside every region (share of its lon/lat area) below this, or below
#: OUTSIDE_TOLERANCE_M2 m², is noise, not mine land outside the regions. The shares are taken in
#: lon/lat, where clipping is exact up to rounding: a piece's vertices on the cut are rounded
#: to ~1e-16 of a coordinate, so a covered polygon's pieces add up to its area within ~1e-12
#: (measured on the sample: at most 2.5e-14 with the 10m countries, 7e-16 with the biomes),
#: while a polygon really outside leaves a share far above 1e-9 (1 m² of a 1 km² polygon is
#: 1e-6). (The spherical areas of the pieces add up as well, the area model's edges being the
#: clip's: straight in lon/lat.) 1e-3 m² is below any table's precision.
OUTSIDE_TOLERANCE = 1e-9
OUTSIDE_TOLERANCE_M2 = 1e-3


def region_fractions(polys: MinePolygons, regs: Regions, allocation="intersection",
                     progress=None, should_stop=None):
    """(polygon index, region index, fraction) triples; fractions of a polygon sum to <= 1.

    "intersection": the spherical area of the polygon's intersection with each region over the
    polygon's spherical area (scaled down if overlapping regions give more than 1). A polygon
    that the regions cover (its part outside them is below `OUTSIDE_TOLERANCE`, see there) has
    fractions scaled to sum to exactly 1: the leftover is measurement noise, folded into the
    regions it was clipped against in proportion to their pieces, so no spurious 'Outside'.
    "centroid": the whole polygon to the region containing its centroid, else to the region
    nearest to it on the Earth (nearest boundary point by planar lon/lat search, measured with
    the haversine formula).
    """
    if allocation not in ALLOCATIONS:
        raise InputError(f"Unknown region allocation '{allocation}'; use one of "
                         f"{', '.join(ALLOCATIONS)}.")
    n = len(polys)
    if n == 0 or len(regs) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, float)
    tree = shapely.STRtree(regs.geoms)
    shapely.prepare(regs.geoms)
    has_geom = present(polys.geoms)
    idx = np.flatnonzero(has_geom)
    geoms = polys.geoms[idx]
    if allocation == "centroid":
        out = _nearest_to_centroids(geoms, idx, regs, tree, should_stop)
        report(progress, 1.0)
        return out
    # box pairs, then the prepared regions' contains_properly, then intersects for the rest
    # (3 times faster than the tree's "intersects" predicate followed by contains_properly)
    pi, ri = tree.query(geoms)
    inside = shapely.contains_properly(regs.geoms[ri], geoms[pi])
    hit = inside.copy()
    hit[~inside] = shapely.intersects(regs.geoms[ri[~inside]], geoms[pi[~inside]])
    pi, ri, inside = pi[hit], ri[hit], inside[hit]
    order = np.lexsort((ri, pi))
    pi, ri, inside = pi[order], ri[order], inside[order]
    frac = np.where(inside, 1.0, 0.0)
    flat = np.where(inside, 1.0, 0.0)        # the same share of the lon/lat (planar) area
    todo = np.flatnonzero(~inside)
    # areas in few calls (one call per piece started threads for every piece)
    need = np.unique(pi[todo])
    whole = np.zeros(len(geoms))
    flat_whole = np.zeros(len(geoms))
    if len(need):
        whole[need] = polygon_area_m2(geoms[need])
        flat_whole[need] = shapely.area(geoms[need])
    todo = todo[whole[pi[todo]] > 0]
    pieces = np.empty(len(todo), dtype=object)
    tick = ticker(progress, should_stop, 0.0, 0.9, len(todo))
    for k in range(0, len(todo), 1024):
        tick(k)
        j = todo[k:k + 1024]
        pieces[k:k + len(j)] = polygonal_all(shapely.intersection(geoms[pi[j]], regs.geoms[ri[j]]))
    stop_if_asked(should_stop)
    if len(todo):
        frac[todo] = polygon_area_m2(pieces) / whole[pi[todo]]
        fw = flat_whole[pi[todo]]
        flat[todo] = np.divide(np.nan_to_num(shapely.area(pieces)), fw,
                               out=np.zeros(len(todo)), where=fw > 0)
    # a polygon properly inside one region takes it whole; overlapping regions are scaled down;
    # a polygon the regions cover (in lon/lat, where the clip is exact) is scaled up to 1
    tot = np.bincount(pi, weights=frac, minlength=len(geoms))
    left = 1.0 - np.bincount(pi, weights=flat, minlength=len(geoms))
    area = polys.area_m2[idx]
    covered = (left * area < OUTSIDE_TOLERANCE_M2) | (left < OUTSIDE_TOLERANCE)
    scale = np.where((tot > 1.0) | (covered & (tot > 0)),
                     1.0 / np.where(tot > 0, tot, 1.0), 1.0)
    frac = np.minimum(frac * scale[pi], 1.0)
    keep = frac > 0
    return idx[pi[keep]], ri[keep], frac[keep]


def _expand(owner, start, count):
    """(owner, value) pairs: for each i, `count[i]` consecutive values from `start[i]`."""
    count = np.maximum(np.asarray(count, dtype=np.int64), 0)
    first = np.cumsum(count) - count
    step = np.arange(int(count.sum())) - np.repeat(first, count)
    return np.repeat(owner, count), np.repeat(start, count) + step


# ----------------------------------------------------------------------------- equal-area grid

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


# ----------------------------------------------------------------------------- tables

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
                 progress=None, should_stop=None) -> list:
    """Area by region x commodity; the area outside every region is the region 'Outside'.

    Rows are ordered by decreasing region area ('Outside' last), then by commodity order.
    `area_pct` is of the total polygon area, `region_pct` of the region's mine area.
    """
    total = polys.total_area_m2
    shares = commodity_shares(polys)
    inside = np.zeros(len(polys))
    acc = {}
    if regs is not None and len(regs):
        p, r, f = region_fractions(polys, regs, allocation, progress, should_stop)
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


# ----------------------------------------------------------------------------- all at once

@dataclass
class FootprintSummary:
    total_area_m2: float
    commodity_rows: list
    country_rows: list
    biome_rows: list
    table2_rows: list
    table3_rows: list
    grid: Optional[GridTable]
    allocation: str
    cell_size_m: Optional[float]

    @property
    def assigned_area_pct(self) -> float:
        return self.table2_rows[0]["area_pct"] if self.table2_rows else 0.0


def summarise(polys: MinePolygons, countries: Optional[Regions] = None,
              biomes: Optional[Regions] = None, allocation="intersection", cell_size_m=50000.0,
              point_cluster_ids=None, progress=None, should_stop=None,
              point_primary=None) -> FootprintSummary:
    """Every footprint table; `cell_size_m=None` skips the grid; the points for Table 2 as in
    `table2`. Raises InputError, Cancelled."""
    if len(polys) == 0:
        raise InputError("The clustered polygons layer has no polygon; run the cluster "
                         "algorithm on mine polygons first.")
    if allocation not in ALLOCATIONS:
        raise InputError(f"Unknown region allocation '{allocation}'; use one of "
                         f"{', '.join(ALLOCATIONS)}.")

    part = functools.partial(span, progress)
    stop_if_asked(should_stop)
    com = commodity_table(polys)
    t2 = table2(polys, point_cluster_ids, point_primary)
    t3 = table3(polys)
    ctry = region_table(polys, countries, allocation, part(0.0, 0.4), should_stop)
    biom = region_table(polys, biomes, allocation, part(0.4, 0.8), should_stop)
    grid = None
    if cell_size_m:
        grid = grid_table(polys, cell_size_m, part(0.8, 1.0), should_stop)
    report(progress, 1.0)
    return FootprintSummary(polys.total_area_m2, com, ctry, biom, t2, t3, grid, allocation,
                            cell_size_m)
