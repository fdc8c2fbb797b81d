"""Footprint regions: named region polygons (countries, biomes) read and cut into small pieces
(`regions`), and the allocation of each mine polygon's area to them (`region_allocation`): by
intersection (the default) or by the paper's centroid rule, with the overlaps between regions
found and reported (`RegionOverlap`) rather than scaled away. No qgis imports.

Reading. Region polygons are read by the core's one geometry rule (core/geometry.py), as the mine
polygons are: the polygons of a collection, Z dropped, the coordinate rule (a NaN or infinite
coordinate, a latitude beyond ±90° or a longitude beyond ±360° refused, naming the feature),
the poles settled and the antimeridian cut, before the pieces are cut. A ring drawn across ±180°
(as GDAL and QGIS hand over Natural Earth's Russia, Fiji and Antarctica from the 10m and 50m
TopoJSON) so becomes parts on both sides of ±180°, not a band round the globe through Alaska;
a ring beyond ±180° (0..360 data) is moved one turn back. Invalid parts are then repaired part
by part (`valid_parts`).

Overlaps. Regions ought to tile the Earth, but layers overlap (two editions of a border, a
disputed area, slivers of a simplification). Mine land in an overlap is split equally between
the overlapping regions, so every table still sums to the total mine area:

- "intersection": each point of a mine polygon covered by m regions gives 1/m of its area to
  each of them (the polygon is cut into the faces of the regions' overlay, each face's area is
  split equally between the regions holding it);
- "centroid": a polygon whose centroid lies inside m regions gives 1/m of its area to each.

Several features with one name are one region: where they overlap nothing is split or reported.
Each overlapping pair of regions is reported with the mine area in both (`RegionOverlap`), in
the measure of the tables (the polygons' `area_m2`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np
import shapely

from .errors import InputError
from .footprint_grid import _expand
from .footprint_input import MinePolygons
from .geodesy import haversine_m, polygon_area_m2
from .geometry import (check_coordinates, fix_antimeridian, polygonal, polygonal_all, present, settle_poles,
                       valid_parts)
from .progress import report, stop_if_asked, ticker

OUTSIDE = "Outside"
NO_NAME = "(no name)"
ALLOCATIONS = ("intersection", "centroid")


@dataclass
class Regions:
    """Named region polygons (countries, biomes, ecoregions) in lon/lat, as small pieces.

    Each input region is read by the core's geometry rule (module docstring), repaired part by
    part (invalid parts through `make_valid`) and cut by a quadtree of rectangles into pieces of
    at most `MAX_PIECE_VERTICES` vertices, so that every intersection test and clip works on a
    small geometry. Pieces keep their region's name; the tables add them up by name (several
    features with one name are one region). `parts` numbers, per piece, the valid polygon it was
    cut from (the pieces of one part tile it; pieces of different parts may overlap);
    `cut_at_antimeridian` names the regions the rule cut at ±180° (sorted).
    """
    geoms: np.ndarray
    names: list
    parts: Optional[np.ndarray] = None
    cut_at_antimeridian: tuple = ()

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


def regions(geoms, names, should_stop=None, ids=None, layer="region polygons") -> Regions:
    """Region polygons with their names, read by the core's geometry rule (module docstring);
    NULL names become '(no name)', invalid parts are repaired, and large regions are cut into
    small pieces (see `Regions`).

    `ids` name the features in an error (default: their positions in `geoms`, from 0); `layer`
    names the layer, e.g. "countries layer 'ne_10m'". Raises InputError, one sentence naming
    the feature and the coordinate, for a coordinate the rule refuses; Cancelled.
    """
    geoms = list(geoms)
    n = len(geoms)
    if names is None or len(names) != n:
        raise InputError(f"The {layer} have {n} geometries but {0 if names is None else len(names)} "
                         f"names; give one name per region.")
    arr = np.empty(n, dtype=object)
    arr[:] = geoms
    ids = np.arange(n) if ids is None else np.asarray(list(ids), dtype=object)
    if len(ids) != n:
        raise InputError(f"The {layer} have {n} geometries but {len(ids)} feature ids.")
    poly = polygonal_all(arr)
    has = ~shapely.is_missing(poly)
    z = np.flatnonzero(has & shapely.has_z(poly))
    if len(z):
        poly[z] = shapely.force_2d(poly[z])
    # the rule of core/geometry.py, in its order: coordinates, poles, antimeridian; the repair
    # then part by part (a whole-region make_valid would merge every island: 3 times slower)
    check_coordinates(poly[has], ids[has], f"Feature {{fid}} of the {layer}")
    stop_if_asked(should_stop)
    drawn, split = fix_antimeridian(settle_poles(poly))
    pieces, piece_names, piece_parts, cut = [], [], [], set()
    k = 0
    for g, v, was_cut in zip(drawn, names, split):
        stop_if_asked(should_stop)
        if g is None or shapely.is_empty(g):
            continue
        v = "" if v is None else str(v).strip()
        v = v or NO_NAME
        if was_cut:
            cut.add(v)
        for part in valid_parts(g):
            for p in _subdivide(part):
                pieces.append(p)
                piece_names.append(v)
                piece_parts.append(k)
            k += 1
    out = np.empty(len(pieces), dtype=object)
    out[:] = pieces
    return Regions(out, piece_names, np.asarray(piece_parts, dtype=np.int64),
                   tuple(sorted(cut, key=_name_key)))


def _name_key(name):
    return (name.casefold(), name)


# ----------------------------------------------------------------------------- allocation

class RegionOverlap(NamedTuple):
    """Two regions that overlap where there is mine land, and that mine land.

    `regions`: the layer ("countries", "biomes"; "" from `region_allocation` alone);
    `region_a` < `region_b` (by case-folded name); `area_m2`: the mine area in both (by
    intersection: of the polygons' parts inside both regions; by centroid: of the polygons whose
    centroid lies inside both), in the measure of the tables (the polygons' `area_m2`), half of
    it counted in each region's rows; `n_polygons`: the polygons with mine land in both.
    """
    regions: str
    region_a: str
    region_b: str
    area_m2: float
    n_polygons: int


@dataclass
class RegionAllocation:
    """Each polygon's area split between regions: `fraction` of polygon `polygon` (index in the
    MinePolygons) to the region of piece `region` (index in the Regions; one piece per region
    name and polygon), ordered by polygon then piece; a polygon's fractions sum to <= 1 (the
    rest is outside every region). `overlaps`: the overlapping pairs of regions, by decreasing
    area (see `RegionOverlap`)."""
    polygon: np.ndarray
    region: np.ndarray
    fraction: np.ndarray
    overlaps: list = field(default_factory=list)


NEAREST_SEARCH_DEG = 1.0

#: A polygon's part outside every region (share of its lon/lat area) below this, or below
#: OUTSIDE_TOLERANCE_M2 m², is noise, not mine land outside the regions. The shares are taken in
#: lon/lat, where clipping is exact up to rounding: a piece's vertices on the cut are rounded
#: to ~1e-16 of a coordinate, so a covered polygon's pieces add up to its area within ~1e-12
#: (measured on the sample: at most 2.5e-14 with the 10m countries, 7e-16 with the biomes),
#: while a polygon really outside leaves a share far above 1e-9 (1 m² of a 1 km² polygon is
#: 1e-6). (The spherical areas of the pieces add up as well, the area model's edges being the
#: clip's: straight in lon/lat.) 1e-3 m² is below any table's precision. An overlap of regions
#: below the same tolerances is split like any other but not reported.
OUTSIDE_TOLERANCE = 1e-9
OUTSIDE_TOLERANCE_M2 = 1e-3


def check_allocation(allocation) -> None:
    if allocation not in ALLOCATIONS:
        raise InputError(f"Unknown region allocation '{allocation}'; use one of "
                         f"{', '.join(ALLOCATIONS)}.")


def region_allocation(polys: MinePolygons, regs: Optional[Regions], allocation="intersection",
                      progress=None, should_stop=None) -> RegionAllocation:
    """Each polygon's area split between the regions, and the overlaps between regions.

    "intersection": the spherical area of the polygon's intersection with each region over the
    polygon's spherical area; where regions overlap, each face of their overlay inside the
    polygon is split equally between the regions holding it (module docstring). A polygon that
    the regions cover (its part outside them is below `OUTSIDE_TOLERANCE`, see there) has
    fractions scaled to sum to exactly 1: the leftover is measurement noise, folded into the
    regions it was clipped against in proportion to their pieces, so no spurious 'Outside'.
    "centroid": the whole polygon to the region containing its centroid (split equally when the
    centroid is inside several regions), else to the region nearest to it on the Earth
    (nearest boundary point by planar lon/lat search, measured with the haversine formula).
    """
    check_allocation(allocation)
    empty = RegionAllocation(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, float), [])
    if len(polys) == 0 or regs is None or len(regs) == 0:
        return empty
    tree = shapely.STRtree(regs.geoms)
    shapely.prepare(regs.geoms)
    idx = np.flatnonzero(present(polys.geoms))
    if allocation == "centroid":
        p, r, f, over = _by_centroid(polys, idx, regs, tree, should_stop)
        report(progress, 1.0)
    else:
        p, r, f, over = _by_intersection(polys, idx, regs, tree, progress, should_stop)
    order = np.lexsort((r, p))
    overlaps = [RegionOverlap("", a, b, area, len(owners))
                for (a, b), (area, owners) in over.items() if len(owners)]
    overlaps.sort(key=lambda o: (-o.area_m2, _name_key(o.region_a), _name_key(o.region_b)))
    return RegionAllocation(p[order].astype(np.int64), r[order].astype(np.int64),
                            f[order].astype(float), overlaps)


def region_fractions(polys: MinePolygons, regs: Regions, allocation="intersection",
                     progress=None, should_stop=None):
    """(polygon index, region index, fraction) arrays of `region_allocation` (see there);
    fractions of a polygon sum to <= 1."""
    a = region_allocation(polys, regs, allocation, progress, should_stop)
    return a.polygon, a.region, a.fraction


def _add_overlap(over, names, area_m2, owner, counted=True):
    """Adds ``area_m2`` of polygon ``owner`` to every pair of ``names`` (distinct region names).
    Not ``counted`` (an overlap below the tolerances): the area adds up but the polygon is not
    counted, and a pair with no polygon counted is not reported."""
    names = sorted(names, key=_name_key)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            acc = over.setdefault((names[i], names[j]), [0.0, set()])
            acc[0] += area_m2
            if counted:
                acc[1].add(owner)


def _by_centroid(polys, idx, regs, tree, should_stop=None):
    """The paper's rule: each polygon to the region containing its centroid, else the nearest.

    A region contains the centroid when one of its pieces holds it in its interior, or when it
    lies on the edges of two of its pieces (a cut between them). Inside several regions (they
    overlap there): split equally between them, and reported. On the border of regions that
    contain it in none of their pieces' interiors (a shared border): to the region of the lowest
    piece index. Nearest is measured on the Earth (haversine from the centroid to the nearest
    point of each candidate piece, ties to the lowest piece index); candidates are the pieces
    within the planar nearest distance stretched by 1/cos(latitude). A centroid more than
    NEAREST_SEARCH_DEG degrees from every region (far out at sea) takes the planar nearest.
    """
    stop_if_asked(should_stop)
    geoms = polys.geoms[idx]
    cent = _lonlat_centroids(geoms)
    pi, ri = tree.query(cent, predicate="intersects")
    region = np.full(len(geoms), -1, dtype=np.int64)
    order = np.lexsort((ri, pi))
    pi, ri = pi[order], ri[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    region[pi[first]] = ri[first]
    over, extra = {}, []
    # polygons whose centroid meets pieces of several names: inside one region or several?
    start = np.flatnonzero(first)
    count = np.diff(np.r_[start, len(pi)])
    code = _name_codes(regs)
    several = [(s, c) for s, c in zip(start.tolist(), count.tolist())
               if c > 1 and len(set(code[ri[s:s + c]].tolist())) > 1]
    for s, c in several:
        i = int(pi[s])
        rows = ri[s:s + c]
        inside = shapely.contains_properly(regs.geoms[rows], cent[i])
        by_name = {}
        for r, holds in zip(rows.tolist(), inside.tolist()):
            by_name.setdefault(regs.names[r], []).append((r, holds))
        holding = {nm: min(r for r, _ in hits) for nm, hits in by_name.items()
                   if any(h for _, h in hits) or len(hits) > 1}
        if len(holding) == 1:
            region[i] = next(iter(holding.values()))
        elif len(holding) > 1:
            region[i] = -2                                  # split below
            share = 1.0 / len(holding)
            extra.extend((i, r, share) for r in holding.values())
            m2 = float(polys.area_m2[idx[i]])
            _add_overlap(over, holding, m2, int(idx[i]), counted=m2 >= OUTSIDE_TOLERANCE_M2)
    out = np.flatnonzero(region == -1)
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
    keep = np.flatnonzero(region >= 0)
    p = np.r_[idx[keep], np.asarray([idx[i] for i, _, _ in extra], dtype=np.int64)]
    r = np.r_[region[keep], np.asarray([r for _, r, _ in extra], dtype=np.int64)]
    f = np.r_[np.ones(len(keep)), np.asarray([s for _, _, s in extra], dtype=float)]
    return p, r, f, over


def _name_codes(regs) -> np.ndarray:
    """An integer per piece, equal for pieces of one region name."""
    return np.unique(np.asarray(regs.names, dtype=object).astype(str), return_inverse=True)[1].ravel()


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


def _by_intersection(polys, idx, regs, tree, progress=None, should_stop=None):
    """The intersection rule (`region_allocation`): (polygon, piece, fraction) arrays and the
    overlaps {(name a, name b): [area m², polygons]}."""
    geoms = polys.geoms[idx]
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
    # each pair's part of its polygon (the polygon itself where a piece holds it properly)
    clipped = np.full(len(pi), None, dtype=object)
    clipped[inside] = geoms[pi[inside]]
    clipped[todo] = pieces
    over = {}
    cand = _overlapping(pi, ri, clipped, regs)
    area = polys.area_m2[idx]
    if len(cand):
        new_p, new_r, new_f = _split_overlaps(cand, geoms, idx, pi, ri, clipped, regs, area, over,
                                              should_stop)
        drop = np.isin(pi, cand)
        pi, ri, frac, flat = pi[~drop], ri[~drop], frac[~drop], flat[~drop]
    # a polygon properly inside one region takes it whole; pieces of one part that overlap by
    # rounding are scaled down; a polygon the regions cover (in lon/lat, where the clip is
    # exact) is scaled up to 1
    tot = np.bincount(pi, weights=frac, minlength=len(geoms))
    left = 1.0 - np.bincount(pi, weights=flat, minlength=len(geoms))
    covered = (left * area < OUTSIDE_TOLERANCE_M2) | (left < OUTSIDE_TOLERANCE)
    scale = np.where((tot > 1.0) | (covered & (tot > 0)),
                     1.0 / np.where(tot > 0, tot, 1.0), 1.0)
    frac = np.minimum(frac * scale[pi], 1.0)
    if len(cand):
        pi, ri, frac = np.r_[pi, new_p], np.r_[ri, new_r], np.r_[frac, new_f]
    keep = frac > 0
    return idx[pi[keep]], ri[keep], frac[keep], over


def _overlapping(pi, ri, clipped, regs) -> np.ndarray:
    """The polygons (local indices, sorted) two of whose clipped pieces, cut from different
    parts of the regions, share area (their interiors meet): the regions overlap there. The
    pieces of one part tile it, so they are not compared."""
    n = len(pi)
    if n < 2:
        return np.empty(0, np.int64)
    end = np.r_[np.flatnonzero(np.diff(pi)) + 1, n]           # end of each polygon's run
    run_end = np.repeat(end, np.diff(np.r_[0, end]))
    a, b = _expand(np.arange(n), np.arange(n) + 1, run_end - np.arange(n) - 1)
    if not len(a):
        return np.empty(0, np.int64)
    parts = regs.parts if regs.parts is not None else np.arange(len(regs))
    ok = (parts[ri[a]] != parts[ri[b]]) & ~shapely.is_missing(clipped[a]) & ~shapely.is_missing(clipped[b])
    a, b = a[ok], b[ok]
    if not len(a):
        return np.empty(0, np.int64)
    meet = shapely.intersects(clipped[a], clipped[b]) & ~shapely.touches(clipped[a], clipped[b])
    return np.unique(pi[a[meet]])


def _faces(named):
    """The faces of the overlay of named polygons [(name, geometry)]: [(geometry, names)], the
    faces disjoint, each point of the union in exactly one face, with the names holding it."""
    faces = []
    for name, u in named:
        nxt = []
        for g, s in faces:
            both = polygonal(shapely.intersection(g, u))
            rest = polygonal(shapely.difference(g, u))
            if both is not None:
                nxt.append((both, s + (name,)))
            if rest is not None:
                nxt.append((rest, s))
        new = u if not faces else polygonal(shapely.difference(u, shapely.union_all([g for g, _ in faces])))
        if new is not None:
            nxt.append((new, (name,)))
        faces = nxt
    return faces


def _split_overlaps(cand, geoms, idx, pi, ri, clipped, regs, area, over, should_stop=None):
    """(polygon, piece, fraction) arrays for the polygons in `cand` (local indices), where
    regions overlap: their overlay's faces split equally between the regions holding them
    (pieces of one name united first); the overlaps are added to `over`."""
    whole = polygon_area_m2(geoms[cand])
    flat_whole = shapely.area(geoms[cand])
    start = np.searchsorted(pi, cand, side="left")
    stop = np.searchsorted(pi, cand, side="right")
    face_owner, face_geoms, face_names, rep = [], [], [], []
    out = []                                     # (polygon, piece, fraction)
    tick = ticker(None, should_stop, 0.0, 1.0, len(cand), every=64)
    for k, (c, s, e) in enumerate(zip(cand.tolist(), start.tolist(), stop.tolist())):
        tick(k)
        by_name = {}
        for row in range(s, e):
            if clipped[row] is not None:
                by_name.setdefault(regs.names[ri[row]], []).append(row)
        names = sorted(by_name, key=_name_key)
        rep.append({nm: int(min(ri[row] for row in by_name[nm])) for nm in names})
        if whole[k] <= 0:                    # no area to cut: split equally by name
            out.extend((c, rep[k][nm], 1.0 / len(names)) for nm in names)
            _add_overlap(over, names, float(area[c]), int(idx[c]), counted=area[c] >= OUTSIDE_TOLERANCE_M2)
            continue
        named = []
        for nm in names:
            rows = by_name[nm]
            g = clipped[rows[0]] if len(rows) == 1 else polygonal(shapely.union_all(clipped[rows]))
            if g is not None:
                named.append((nm, g))
        for g, s_names in _faces(named):
            face_owner.append(k)
            face_geoms.append(g)
            face_names.append(s_names)
    stop_if_asked(should_stop)
    fg = np.empty(len(face_geoms), dtype=object)
    fg[:] = face_geoms
    sph = polygon_area_m2(fg) if len(fg) else np.zeros(0)
    pla = shapely.area(fg) if len(fg) else np.zeros(0)
    shares = {}                                  # k -> {name: share}
    union = np.zeros(len(cand))
    for k, a, s_names in zip(face_owner, sph.tolist(), face_names):
        d = shares.setdefault(k, {})
        for nm in s_names:
            d[nm] = d.get(nm, 0.0) + a / whole[k] / len(s_names)
    np.add.at(union, np.asarray(face_owner, dtype=np.int64), pla)
    left = 1.0 - np.divide(union, flat_whole, out=np.zeros(len(cand)), where=flat_whole > 0)
    scale = np.ones(len(cand))
    for k, d in shares.items():
        tot = sum(d.values())
        c = cand[k]
        if tot > 0 and (tot > 1.0 or left[k] * area[c] < OUTSIDE_TOLERANCE_M2 or left[k] < OUTSIDE_TOLERANCE):
            scale[k] = 1.0 / tot
        out.extend((c, rep[k][nm], min(d[nm] * scale[k], 1.0)) for nm in sorted(d, key=_name_key))
    for k, a, p, s_names in zip(face_owner, sph.tolist(), pla.tolist(), face_names):
        if len(s_names) < 2:
            continue
        c = cand[k]
        m2 = a / whole[k] * scale[k] * float(area[c])
        noise = m2 < OUTSIDE_TOLERANCE_M2 or (flat_whole[k] > 0 and p / flat_whole[k] < OUTSIDE_TOLERANCE)
        _add_overlap(over, s_names, m2, int(idx[c]), counted=not noise)
    return (np.asarray([o[0] for o in out], dtype=np.int64), np.asarray([o[1] for o in out], dtype=np.int64),
            np.asarray([o[2] for o in out], dtype=float))
