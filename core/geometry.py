"""Reading user geometry into the core: the one set of rules every operation applies.

Harmonise (polygons and points), cluster (``prepare_features``), footprint (``mine_polygons``)
and validate (both layers) read their lon/lat (EPSG:4326) shapely geometries through this module,
so a coordinate or a shape gets the same decision everywhere, and footprint's ``regions``
(countries, biomes) too; the cluster unions take its polygonal parts and repair, and live here
(:func:`cluster_polygons`, :func:`cluster_polygons_wkb`: the shape of each cluster of a
``ClusterResult``). Nothing else in the core calls ``shapely.make_valid`` or picks the polygons
out of a collection.

The coordinate rule (core/API.md, "Geometry rules"):

- NaN or infinite coordinate: refused (:class:`InputError`, one sentence naming the feature and
  the coordinate; an infinite one is a feature outside its layer's CRS). ``POINT (NaN NaN)`` is
  no coordinate but the WKB of an empty point: GEOS reads it as ``POINT EMPTY`` (empty geometry).
- Latitude: -90..90; beyond by more than :data:`COORD_TOLERANCE_DEG` (1e-9°, reprojection
  noise): refused.
- Longitude: -360..360 (the same tolerance); beyond: refused. A longitude beyond ±180° is the
  same meridian one turn of 360° away: a point is wrapped into -180..180 (180 itself stays 180),
  a polygon is cut at ±180° and its outer pieces moved by 360° (as for a ring across ±180°).
- Pole: a vertex within :data:`POLE_TOLERANCE_DEG` of ±90° is on the pole and has no longitude
  (a reprojection gives it one, e.g. -170 from EPSG:3035): each run of pole vertices of a ring is
  replaced by two pole vertices at the longitudes of the ring's neighbours, so the edges to the
  pole are meridians (:func:`settle_ring_at_poles`). A point on a pole is kept as it is.
- Antimeridian: a ring whose longitude jumps by more than 180° between two vertices (after the
  poles are settled, so a pole vertex's longitude is no jump), or that leaves -180..180, crosses
  ±180°: it is drawn continuously, cut at ±180° and the pieces beyond moved back by 360°, giving a
  MultiPolygon with every part inside -180..180 (:func:`fix_antimeridian`). A ring that so drawn
  winds once round the Earth encloses a pole, and its steps along that pole (a shapefile closes
  Antarctica from (180, -90) to (-180, -90)) are the pole's edge, no crossing.

The shape rule, in the order :func:`read_polygons` applies it:

1. 2D: Z and M are dropped.
2. Polygonal parts: a Polygon or MultiPolygon is itself; a GeometryCollection is read as the
   polygons it holds at any depth (lines and points in it are ignored); a geometry with no
   polygon is "not a polygon" (each operation says what it does with one: harmonise drops it,
   the clustering refuses it).
3. The coordinate rule above (so that no NaN reaches GEOS).
4. Poles settled, then the antimeridian cut (a ring across ±180° is read as drawn, before any
   repair: ``make_valid`` in the lon/lat plane would read it as a band round the globe).
5. Repair: an invalid polygon (a bow-tie, a self-touching ring) is replaced by the polygons of
   ``shapely.make_valid`` (a bow-tie keeps both lobes); when nothing with an area is left (a
   line drawn as a polygon), it has no polygon ("lost").

Its output is a fixed point: reading a read geometry again changes nothing, bit for bit, so that
an area measured in one step of the pipeline is the area the next step measures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from shapely.geometry import MultiPolygon, Polygon, box

from .errors import InputError
from .parallel import Beside, run_parallel

#: Coordinates this far beyond the lon/lat limits (degrees, ~0.1 mm) are reprojection noise.
COORD_TOLERANCE_DEG = 1e-9
#: A vertex this close to a pole (degrees of latitude, ~0.1 mm) is on it: it has no longitude.
POLE_TOLERANCE_DEG = 1e-9
#: Longitudes up to this (one turn either way) are read modulo 360 degrees; beyond are refused.
MAX_ABS_LON = 360.0
#: Geometries per task of the checks run on threads.
_CHUNK = 20000
#: Cells (groups times padded width) of one call of the grouped unions (:func:`_unions`).
_UNION_CELLS = 8192
#: Clusters whose WKB is made at a time (:func:`cluster_polygons_wkb`).
_WKB_CLUSTERS = 10000
_POLYGON, _MULTIPOLYGON = 3, 6
#: Byte order (little-endian) and type (MultiPolygon) of a 2D WKB MultiPolygon.
_MULTIPOLYGON_HEADER = b"\x01\x06\x00\x00\x00"
#: The shape of a cluster piece with no polygon left.
_EMPTY = MultiPolygon()


# --------------------------------------------------------------------------- polygonal parts

def polygon_parts(geom) -> list:
    """The non-empty polygons of a geometry (collections searched at any depth; lines and
    points ignored)."""
    if geom is None or geom.is_empty:
        return []
    kind = geom.geom_type
    if kind == "Polygon":
        return [geom]
    if kind == "MultiPolygon":
        return [g for g in geom.geoms if not g.is_empty]
    if kind == "GeometryCollection":
        out = []
        for g in geom.geoms:
            out.extend(polygon_parts(g))
        return out
    return []


def polygonal(geom):
    """The geometry itself when it is a non-empty Polygon or MultiPolygon, else its polygons
    (a Polygon, or a MultiPolygon when there are several); None when it has none."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = polygon_parts(geom)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def polygonal_all(geoms) -> np.ndarray:
    """:func:`polygonal` of every geometry of an array (None where it has no polygon)."""
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    if len(geoms) == 0:
        return out
    kind = shapely.get_type_id(geoms)
    ok = present(geoms)
    keep = ok & np.isin(kind, (_POLYGON, _MULTIPOLYGON))
    out[keep] = geoms[keep]
    for i in np.flatnonzero(ok & ~keep):
        out[i] = polygonal(geoms[i])
    return out


def object_array(values) -> np.ndarray:
    """A sequence as a 1-D object array of the same objects, whatever they are (numpy's slot
    assignment, ``arr[:] = values``, asks every item whether it is a sequence: 0.1 s for 200,000
    geometries; ``np.fromiter`` does not, from numpy 1.23)."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    try:
        return np.fromiter(values, dtype=object, count=len(values))
    except (ValueError, TypeError):     # numpy < 1.23: no object arrays from iterators
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out


def present(geoms) -> np.ndarray:
    """True for each geometry that is neither missing (None) nor empty."""
    geoms = np.asarray(geoms, dtype=object)
    return ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))


# --------------------------------------------------------------------------- coordinates

def check_coordinates(geoms, ids, feature: str = "Feature {fid}") -> None:
    """InputError for the first feature (in input order) with a coordinate the rule refuses: NaN
    or infinite (named first when the feature has both kinds), else a latitude beyond ±90° or a
    longitude beyond ±360°. ``feature`` names a feature in the message: a format string with
    ``{fid}``, e.g. "The polygons layer's feature {fid}" or "Feature {fid} of the clustered
    polygons". Checked in chunks on threads."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return

    def first_bad(rows):
        coords, owner = shapely.get_coordinates(geoms[rows], return_index=True)
        finite = np.isfinite(coords).all(axis=1)
        with np.errstate(invalid="ignore"):
            out = ((np.abs(coords[:, 0]) > MAX_ABS_LON + COORD_TOLERANCE_DEG)
                   | (np.abs(coords[:, 1]) > 90.0 + COORD_TOLERANCE_DEG))
        bad = np.flatnonzero(~finite | out)
        if not len(bad):
            return None
        mine = owner == owner[bad[0]]
        nan = np.flatnonzero(mine & ~finite)
        k = nan[0] if len(nan) else bad[0]
        return rows[owner[k]], coords[k], bool(len(nan))

    chunks = [np.arange(k, min(n, k + _CHUNK)) for k in range(0, n, _CHUNK)]
    found = run_parallel(chunks, first_bad) if len(chunks) > 1 else [first_bad(chunks[0])]
    found = [f for f in found if f is not None]
    if not found:
        return
    row, (x, y), not_finite = found[0]
    who = feature.replace("{fid}", str(ids[row]))
    if not_finite and (np.isnan(x) or np.isnan(y)):
        raise InputError(f"{who} has a coordinate that is not a number ({x}, {y}); fix or remove "
                         f"that feature.")
    if not_finite:
        raise InputError(f"{who} has the infinite coordinate ({x}, {y}) in longitude/latitude, so "
                         f"it lies outside the domain of its layer's CRS; fix its coordinates or the "
                         f"layer's CRS.")
    raise InputError(f"{who} has the coordinate ({x}, {y}) outside longitude -360..360 / latitude "
                     f"-90..90; give lon/lat in degrees (EPSG:4326).")


def wrap_points(geoms) -> np.ndarray:
    """Points (or multipoints) with every longitude beyond ±180° moved by 360° into -180..180
    (checked geometries: see :func:`check_coordinates`); the others returned as they are."""
    geoms = np.asarray(geoms, dtype=object).copy()
    if len(geoms) == 0:
        return geoms
    with np.errstate(invalid="ignore"):
        b = shapely.bounds(geoms)
        beyond = np.flatnonzero((b[:, 0] < -180.0) | (b[:, 2] > 180.0))
    if len(beyond):
        geoms[beyond] = shapely.transform(geoms[beyond], _wrap_xy)
    return geoms


def _wrap_xy(xy):
    x = xy[:, 0]
    return np.column_stack([np.where(np.abs(x) > 180.0, (x + 180.0) % 360.0 - 180.0, x), xy[:, 1]])


# --------------------------------------------------------------------------- poles

def settle_ring_at_poles(xy: np.ndarray):
    """A closed ring (n x 2, lon/lat) with each run of vertices on a pole replaced by two
    vertices on that pole, at the longitudes of the run's neighbours (the meridians the ring
    comes in and leaves by); None when the ring has no vertex on a pole, only such vertices, or
    is settled already (so that settling twice changes nothing)."""
    ring = xy[:-1]
    on_pole = np.abs(ring[:, 1]) >= 90.0 - POLE_TOLERANCE_DEG
    if not on_pole.any() or on_pole.all():
        return None
    first = int(np.flatnonzero(~on_pole)[0])     # start off the pole: runs do not wrap
    ring, on_pole = np.roll(ring, -first, axis=0), np.roll(on_pole, -first)
    out, k, n, settled = [], 0, len(ring), True
    while k < n:
        if not on_pole[k]:
            out.append(ring[k])
            k += 1
            continue
        j = k
        while j < n and on_pole[j]:
            j += 1
        before, after = ring[k - 1, 0], ring[j % n, 0]     # k >= 1: ring[0] is off the pole
        settled = settled and j - k <= 2 and ring[k, 0] == before and ring[j - 1, 0] == after
        out.append((before, ring[k, 1]))
        out.append((after, ring[j - 1, 1]))                # j == n: back to ring[0]
        k = j
    if settled:
        return None
    out.append(out[0])
    return np.asarray(out, dtype=float)


def settle_poles(geoms) -> np.ndarray:
    """The polygons with the vertices on a pole given their neighbours' longitudes
    (:func:`settle_ring_at_poles`); polygons with no such vertex are returned as they are."""
    geoms = np.asarray(geoms, dtype=object).copy()
    if len(geoms) == 0:
        return geoms
    ok = present(geoms)
    bounds = np.full((len(geoms), 4), np.nan)
    bounds[ok] = shapely.bounds(geoms[ok])
    with np.errstate(invalid="ignore"):
        near = (bounds[:, 1] <= -90.0 + POLE_TOLERANCE_DEG) | (bounds[:, 3] >= 90.0 - POLE_TOLERANCE_DEG)
    for i in np.flatnonzero(near):
        parts, changed = [], False
        for p in polygon_parts(geoms[i]):
            rings = [shapely.get_coordinates(r) for r in (p.exterior, *p.interiors)]
            settled = [settle_ring_at_poles(r) for r in rings]
            if any(r is not None for r in settled):
                changed = True
                rings = [r if t is None else t for r, t in zip(rings, settled)]
                p = Polygon(rings[0], rings[1:])
            parts.append(p)
        if changed:
            geoms[i] = parts[0] if geoms[i].geom_type == "Polygon" else MultiPolygon(parts)
    return geoms


# --------------------------------------------------------------------------- antimeridian

def _along_a_pole(coords: np.ndarray) -> np.ndarray:
    """Per step of a ring: whether both its ends lie on one pole."""
    at = np.abs(np.abs(coords[:, 1]) - 90.0) <= POLE_TOLERANCE_DEG
    return at[:-1] & at[1:] & (np.sign(coords[:-1, 1]) == np.sign(coords[1:, 1]))


def _ring_shifts(coords: np.ndarray) -> np.ndarray:
    """Per step of a ring, the multiple of 360 degrees that makes its longitudes continuous.

    A ring that, so drawn, winds once round the Earth encloses a pole: its steps along that pole
    (a ring closed round the pole runs (180, -90) -> (-180, -90)) are the pole's edge, no crossing
    of the antimeridian, and keep their jump. Any other ring winds zero times and every jump is a
    crossing."""
    shift = -360.0 * np.round(np.diff(coords[:, 0]) / 360.0)
    if shift.any():
        pole = _along_a_pole(coords)
        if pole.any() and shift.sum() != 0.0:
            shift[pole] = 0.0
    return shift


def _unwrap_ring(coords: np.ndarray) -> np.ndarray:
    """Longitudes made continuous along a ring (no jump over 180 degrees; see _ring_shifts)."""
    lon = coords[:, 0].copy()
    lon[1:] += np.cumsum(_ring_shifts(coords))
    out = coords.copy()
    out[:, 0] = lon
    return out


def _needs_unwrap(poly: Polygon) -> bool:
    for ring in (poly.exterior, *poly.interiors):
        coords = np.asarray(ring.coords)
        if len(coords) and (_ring_shifts(coords).any() or coords[:, 0].min() < -180.0
                            or coords[:, 0].max() > 180.0):
            return True
    return False


def _fix_antimeridian_polygon(poly: Polygon):
    """A polygon whose ring jumps across the antimeridian (or leaves [-180, 180]) drawn
    continuously, then cut at ±180° and the outer pieces shifted back by 360°: a MultiPolygon,
    None when nothing with an area is left."""
    shell = _unwrap_ring(np.asarray(poly.exterior.coords))
    if shell[:, 0].mean() < -180.0 or shell[:, 0].mean() > 180.0:  # keep the centre inside
        shell[:, 0] -= 360.0 * np.round(shell[:, 0].mean() / 360.0)
    holes = []
    for ring in poly.interiors:
        h = _unwrap_ring(np.asarray(ring.coords))
        h[:, 0] -= 360.0 * np.round((h[:, 0].mean() - shell[:, 0].mean()) / 360.0)  # the shell's sheet
        holes.append(h)
    cont = Polygon(shell, holes)
    if not cont.is_valid:
        cont = make_valid_polygonal(cont)
        if cont is None:
            return None
    pieces = []
    for offset in (-360.0, 0.0, 360.0):
        piece = cont.intersection(box(-180.0 - offset, -90.0, 180.0 - offset, 90.0))
        if piece.is_empty:
            continue
        piece = shapely.transform(piece, lambda c, o=offset: c + np.array([o, 0.0]))
        pieces.extend(polygon_parts(piece))
    return MultiPolygon(pieces) if pieces else None


def fix_antimeridian(geoms) -> tuple[np.ndarray, np.ndarray]:
    """(geometries, mask of the ones changed): polygons crossing the antimeridian or lying
    beyond it are cut at ±180° into a MultiPolygon with every part inside -180..180; the others
    (a polygon already cut there too) are returned as they are."""
    geoms = np.asarray(geoms, dtype=object).copy()
    changed = np.zeros(len(geoms), dtype=bool)
    if len(geoms) == 0:
        return geoms, changed
    with np.errstate(invalid="ignore"):
        bounds = shapely.bounds(geoms)
        candidates = np.flatnonzero((bounds[:, 2] - bounds[:, 0] > 180.0)
                                    | (bounds[:, 0] < -180.0) | (bounds[:, 2] > 180.0))
    for i in candidates:
        polys = polygon_parts(geoms[i])
        if not any(_needs_unwrap(p) for p in polys):
            continue
        fixed = []
        for p in polys:
            if _needs_unwrap(p):
                g = _fix_antimeridian_polygon(p)
                if g is not None:
                    fixed.extend(g.geoms)
            else:
                fixed.append(p)
        geoms[i] = MultiPolygon(fixed) if fixed else None
        changed[i] = True
    return geoms, changed


# --------------------------------------------------------------------------- repair

def make_valid_polygonal(geom):
    """The polygons of ``shapely.make_valid(geom)`` (:func:`polygonal`), None when it has none."""
    return polygonal(shapely.make_valid(geom))


def repair(geoms, should_stop=None, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """(geometries, mask of the ones repaired): each invalid polygonal geometry replaced by
    :func:`make_valid_polygonal` of it (None when no polygon is left); valid, missing and empty
    ones returned as they are. ``valid``, optional: a mask of geometries known to be valid
    (checked or repaired before, :func:`known_shapes`), not checked again. Runs on threads;
    ``should_stop()`` raises ``Cancelled``."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    n = len(geoms)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return out, bad
    ok = present(geoms)
    check = ok if valid is None else ok & ~np.asarray(valid, dtype=bool)
    todo = np.flatnonzero(check)
    chunks = [todo[k:k + _CHUNK] for k in range(0, len(todo), _CHUNK)]
    found = np.ones(n, dtype=bool)
    if chunks:
        found[todo] = np.concatenate(run_parallel(chunks, lambda r: shapely.is_valid(geoms[r]),
                                                  should_stop))
    bad = ok & ~found
    idx = np.flatnonzero(bad)
    if len(idx):
        fixed = run_parallel(np.array_split(idx, min(8, len(idx))),
                             lambda r: polygonal_all(shapely.make_valid(geoms[r])), should_stop)
        out[idx] = np.concatenate(fixed)
    return out, bad


def valid_parts(geom) -> list:
    """The valid polygons of a polygonal geometry, part by part: valid parts as they are,
    invalid ones repaired. Parts are kept apart (not merged into one MultiPolygon, which could
    be invalid again where repaired parts touch or overlap)."""
    if geom is None or shapely.is_empty(geom):
        return []
    out = []
    for p in shapely.get_parts(geom):
        if shapely.is_empty(p):
            continue
        if shapely.is_valid(p):
            out.append(p)
        else:
            fixed = make_valid_polygonal(p)
            if fixed is not None:
                out.extend(q for q in shapely.get_parts(fixed) if not shapely.is_empty(q))
    return out


# --------------------------------------------------------------------------- the whole reading

def clean_polygons(geoms, should_stop=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 4 and 5 of the shape rule on polygonal geometries whose coordinates passed the
    rule: poles settled, the antimeridian cut, then repair. Returns (geometries, mask repaired,
    mask cut at the antimeridian); None where no polygon is left."""
    fixed, split = fix_antimeridian(settle_poles(geoms))
    fixed, repaired = repair(fixed, should_stop)
    return fixed, repaired, split


@dataclass
class PolygonReading:
    """What :func:`read_polygons` made of each input geometry (arrays in input order)."""
    geoms: np.ndarray        # the polygons as read (Polygon or MultiPolygon), None where none
    empty: np.ndarray        # None or an empty geometry
    not_polygon: np.ndarray  # a geometry with no polygon (a point, a line, a collection of them)
    repaired: np.ndarray     # invalid and repaired (its polygons are in ``geoms``, or it is lost)
    lost: np.ndarray         # a polygon with none left after the repair (a line drawn as one)
    split: np.ndarray        # cut at the antimeridian (or moved from beyond ±180°)
    drawn: np.ndarray        # the polygons before the repair (for a lost one: its shape as drawn)
    types: list              # the input's geometry type name where ``not_polygon`` (else None)
    alongside: object = None  # the value of read_polygons' ``alongside(drawn)``, if given


def read_polygons(geoms, ids, feature: str = "Feature {fid}", should_stop=None,
                  alongside=None) -> PolygonReading:
    """User polygons (lon/lat) read by the shape and coordinate rules (module docstring).

    Raises InputError for a coordinate the rule refuses, naming the feature (``feature``: see
    :func:`check_coordinates`); the other decisions are in the returned :class:`PolygonReading`.
    ``alongside(drawn)``, optional: work on the polygons before the repair, run in the calling
    thread while the repair runs on a thread of its own (its validity check holds the GIL, so
    work that releases it, such as numpy's, fills the other core); its value is ``alongside``."""
    if isinstance(geoms, np.ndarray) and geoms.dtype == object:
        arr = geoms.copy()
    else:
        arr = object_array(geoms)
    ok = present(arr)
    z = np.flatnonzero(ok & shapely.has_z(arr))
    if len(z):
        arr[z] = shapely.force_2d(arr[z])
    poly = polygonal_all(arr)
    has = ~shapely.is_missing(poly)
    not_polygon = ok & ~has
    types = [None] * len(arr)               # named where a decision needs it: no polygon
    for i in np.flatnonzero(not_polygon):
        types[i] = arr[i].geom_type
    ids = ids if isinstance(ids, np.ndarray) else np.asarray(ids, dtype=object)
    check_coordinates(poly[has], ids[has], feature)
    drawn, split = fix_antimeridian(settle_poles(poly))
    along = None
    if alongside is None:
        out, repaired = repair(drawn, should_stop)
    else:
        with Beside(lambda stopped: repair(drawn, stopped)) as repairing:
            along = alongside(drawn)
            out, repaired = repairing.result(should_stop)
    lost = has & shapely.is_missing(out)
    return PolygonReading(geoms=out, empty=~ok, not_polygon=not_polygon, repaired=repaired, lost=lost,
                          split=split, drawn=drawn, types=types, alongside=along)


# --------------------------------------------------------------------------- cluster unions

def cluster_polygons(result, geoms, should_stop=None):
    """Yield ``(cluster_id, MultiPolygon)`` for each cluster of ``result`` (a ``ClusterResult``)
    holding polygons: the union of its polygons. ``geoms`` is the polygon list given to
    ``prepare_features`` (lon/lat or any CRS). ``should_stop()`` is polled while the work runs on
    threads and raises ``Cancelled``.

    Only members that intersect each other are unioned (a union of disjoint polygons is just
    their collection), so the cost follows the overlaps, not the number of clusters.
    """
    merged, owner = _merged_pieces(result, geoms, should_stop)
    if merged is None:
        return
    parts, which = shapely.get_parts(merged, return_index=True)  # pieces are (Multi)Polygons
    owner = owner[which]
    ids, index = np.unique(owner, return_inverse=True)
    for cluster, multi in zip(ids, shapely.multipolygons(parts, indices=index)):
        yield int(cluster), multi


def known_shapes(features, geoms) -> np.ndarray:
    """What :func:`.features.prepare_features` made of each polygon of ``geoms`` (the polygon
    list it read) where the repair alone made it: the caller's object where it was taken as it
    is (checked valid), its repaired shape where it was invalid; None elsewhere (another step
    changed it, or it is not a polygon of that reading). A later :func:`repair` of the same
    objects gives these shapes: :func:`cluster_polygons_wkb` takes them (``known=``) instead of
    checking and repairing again."""
    out = np.full(len(geoms), None, dtype=object)
    if features.from_given is None:
        return out
    rows = np.flatnonzero(~shapely.is_missing(features.from_given))
    at = features.index[rows]
    same = np.fromiter((features.from_given[r] is geoms[i] for r, i in zip(rows.tolist(), at.tolist())),
                       dtype=bool, count=len(rows))
    out[at[same]] = features.geoms[rows[same]]
    return out


def cluster_polygons_wkb(result, geoms, should_stop=None, known=None, with_bounds=False) -> tuple:
    """The shapes of :func:`cluster_polygons` as ``(cluster ids, WKB)``: one little-endian 2D
    MultiPolygon per cluster, byte for byte ``shapely.to_wkb`` of that function's geometries.
    ``known``, optional: :func:`known_shapes` of ``geoms`` (those are not checked or repaired
    again). With ``with_bounds``, a third item: the shapes' boxes (an array of minx, miny, maxx,
    maxy rows, as ``shapely.bounds`` gives them), for a writer's spatial index.

    Built from the pieces' own WKB, without the copies of every polygon that shapely
    MultiPolygons cost (about the input's size again at planet scale): for writers."""
    merged, owner = _merged_pieces(result, geoms, should_stop, known)
    if merged is None:
        return ([], [], np.empty((0, 4))) if with_bounds else ([], [])
    ids, starts = np.unique(owner, return_index=True)
    ends = np.r_[starts[1:], len(owner)]
    out_ids, out, boxes = [], [], []
    # the WKB of a few thousand clusters' pieces at a time, let go (with the pieces) once joined:
    # all of it at once was twice the clusters' size in memory (the peak of a dense run)
    for c0 in range(0, len(ids), _WKB_CLUSTERS):
        c1 = min(len(ids), c0 + _WKB_CLUSTERS)
        p0, p1 = int(starts[c0]), int(ends[c1 - 1])
        pieces = merged[p0:p1].copy()
        merged[p0:p1] = None
        kind = shapely.get_type_id(pieces)
        count = np.where(kind == _POLYGON, 1, shapely.get_num_geometries(pieces))
        body = shapely.to_wkb(pieces, output_dimension=2, byte_order=1).tolist()
        box = shapely.bounds(pieces) if with_bounds else None
        del pieces
        for k in np.flatnonzero(kind == _MULTIPOLYGON).tolist():
            body[k] = memoryview(body[k])[9:]  # a MultiPolygon's parts, without its header
        a, b = starts[c0:c1] - p0, ends[c0:c1] - p0
        n = np.add.reduceat(count, a)  # the clusters' polygons (their pieces are not empty)
        # a cluster whose pieces all lost their area to make_valid has no shape
        shaped = np.flatnonzero(n > 0)
        if with_bounds:  # an empty piece's box is NaN: left out by fmin and fmax
            boxes.append(np.column_stack([np.fmin.reduceat(box[:, :2], a, axis=0),
                                          np.fmax.reduceat(box[:, 2:], a, axis=0)])[shaped])
        a, b, n = a[shaped], b[shaped], n[shaped]
        # the headers made by numpy and the bodies joined where a cluster has several pieces:
        # no Python step per cluster beyond one concatenation (the unions' thread holds the GIL
        # in such steps, and the writing of the other outputs waits for it)
        heads = np.empty((len(n), 9), np.uint8)
        heads[:, :5] = np.frombuffer(_MULTIPOLYGON_HEADER, np.uint8)
        heads[:, 5:] = n.astype("<u4").view(np.uint8).reshape(-1, 4)
        heads = heads.tobytes()
        one = (b - a == 1).tolist()
        out += [heads[9 * k:9 * k + 9] + (body[i] if single else b"".join(body[i:j]))
                for k, (i, j, single) in enumerate(zip(a.tolist(), b.tolist(), one))]
        out_ids += ids[c0:c1][shaped].tolist()
    if with_bounds:
        return out_ids, out, np.concatenate(boxes) if boxes else np.empty((0, 4))
    return out_ids, out


def _unions(g, order, starts, groups, should_stop=None):
    """The union of each group k of ``groups``: of ``g[order[starts[k]:starts[k + 1]]]``, as
    ``shapely.union_all`` of that array gives it.

    ``groups`` ascending. Groups of similar size are unioned by one call, a row each (padded
    with None, which the union leaves out): one call per group took the GIL back after every
    group, and beside a busy Python thread (the writing of the other outputs) each wait for it
    cost more than the union (28 s instead of 2.7 s for the planet's clusters)."""
    size = starts[groups + 1] - starts[groups]
    width = 2 ** np.ceil(np.log2(size)).astype(np.int64)      # groups of sizes up to a power of 2
    tasks = []
    for w in np.unique(width).tolist():
        rows = groups[width == w]
        step = max(1, _UNION_CELLS // w)
        tasks += [rows[k:k + step] for k in range(0, len(rows), step)]

    def union(rows):
        n = starts[rows + 1] - starts[rows]
        table = np.full((len(rows), int(n.max())), None, dtype=object)
        row = np.repeat(np.arange(len(rows)), n)
        col = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        table[row, col] = g[order[np.repeat(starts[rows], n) + col]]
        return shapely.union_all(table, axis=1)

    out = np.empty(len(groups), dtype=object)
    for rows, done in zip(tasks, run_parallel(tasks, union, should_stop)):
        out[np.searchsorted(groups, rows)] = done
    return out


def _merged_pieces(result, geoms, should_stop, known=None):
    """The clusters' polygons with overlapping ones unioned: (pieces, cluster id of each),
    sorted by cluster; (None, None) without polygons. ``known``: :func:`known_shapes`."""
    geoms = object_array(geoms)
    cid = result.polygons.cluster_id
    if len(cid) == 0:
        return None, None
    # a collection's polygons, invalid ones repaired (any CRS: no lon/lat rule here)
    index = result.polygons.index
    g = polygonal_all(geoms[index])
    done = None
    if known is not None:
        shapes = np.asarray(known, dtype=object)[index]
        done = ~shapely.is_missing(shapes)
        g[done] = shapes[done]
    g = repair(g, should_stop, done)[0]
    g[shapely.is_missing(g)] = _EMPTY        # nothing left with an area: no shape
    n = len(g)
    tree = shapely.STRtree(g)
    # the predicate only for the polygons whose box meets the box of another of their cluster
    # (a third of the planet's): the boxes are cheap, the predicate is not
    a, b = tree.query(g)
    near = np.unique(np.concatenate([a, b])[np.tile((a != b) & (cid[a] == cid[b]), 2)])
    chunks = [near[k:k + _CHUNK] for k in range(0, len(near), _CHUNK)]
    found = run_parallel(chunks, lambda r: tree.query(g[r], predicate="intersects"), should_stop)
    a = np.concatenate([chunk[f[0]] for chunk, f in zip(chunks, found)] or [np.zeros(0, np.int64)])
    b = np.concatenate([f[1] for f in found] or [np.zeros(0, np.int64)])
    keep = (a < b) & (cid[a] == cid[b])
    pieces = sp.coo_matrix((np.ones(int(keep.sum()), np.int8), (a[keep], b[keep])), shape=(n, n))
    _, piece = connected_components(pieces, directed=False)
    order = np.argsort(piece, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(piece[order])) + 1, n]
    first = order[starts[:-1]]
    merged, owner = g[first], cid[first]
    joint = np.flatnonzero(np.diff(starts) > 1)
    if len(joint):
        merged[joint] = _unions(g, order, starts, joint, should_stop)
    other = np.flatnonzero(~np.isin(shapely.get_type_id(merged), (_POLYGON, _MULTIPOLYGON)))
    if len(other):  # a union left a collection (or nothing): its polygons, at any depth
        polys = polygonal_all(merged[other])
        merged[other] = [_EMPTY if p is None else MultiPolygon([p]) if p.geom_type == "Polygon" else p
                         for p in polys]
    by_cluster = np.argsort(owner, kind="stable")
    return merged[by_cluster], owner[by_cluster]
