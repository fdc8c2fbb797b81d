"""Turning user features (shapely geometries in lon/lat + attributes) into the engine's elements.

An *element* is one polygon feature (a Polygon or MultiPolygon) or one point: a MultiPoint gives
one element per part, each keeping its parent's id. Elements are sorted canonically (polygons
first, then by feature id and part), so results do not depend on input order.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import shapely

from .commodities import Vocabulary
from .errors import InputError
from .geodesy import bounds_centres, polygon_area_m2, unwrapped_bounds
from .geometry import check_coordinates, object_array, read_polygons, wrap_points
from .progress import checkpoint

POLYGON, POINT = 0, 1
LAYER_NAMES = {POLYGON: "polygons", POINT: "points"}
_POLY_TYPES = {"Polygon", "MultiPolygon", "GeometryCollection"}   # a collection: its polygons
_POINT_TYPES = {"Point", "MultiPoint"}


@dataclass
class Features:
    """Elements ready for clustering, in canonical order (see module docstring)."""

    kind: np.ndarray          # int8: POLYGON or POINT
    feature_id: np.ndarray    # int64: the caller's id
    part: np.ndarray          # int32: part number of a MultiPoint (0 otherwise)
    index: np.ndarray         # int64: position of the feature in the caller's list
    geoms: np.ndarray         # shapely geometries, lon/lat
    area_m2: np.ndarray       # float64, 0 for points
    bounds: np.ndarray        # (n, 4) lon/lat boxes, longitudes unwrapped across ±180
    ref_lon: np.ndarray       # box centre, [-180, 180)
    ref_lat: np.ndarray
    primary: sp.csr_matrix    # (n, n_commodities) bool: primary commodities of points
    commodities: sp.csr_matrix  # (n, n_commodities) bool: all commodities (primary included)
    names: list               # display name per commodity code
    dropped: list = field(default_factory=list)  # (layer, feature_id, reason)
    # object: the caller's polygon an element's geometry was made of by the repair alone (the
    # object itself, checked valid, or its repaired shape); None where another step changed it
    # (a collection, Z, a pole, the antimeridian), for points, or not known (core.geometry.known_shapes)
    from_given: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.kind)

    @property
    def n_polygons(self):
        return int(np.count_nonzero(self.kind == POLYGON))

    @property
    def n_points(self):
        return int(np.count_nonzero(self.kind == POINT))


def _as_list(values, n, what):
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise InputError(f"{what} has {len(values)} values for {n} features; give one per feature.")
    return values


def _ids(ids, n, layer):
    """Feature ids as int64: integers, integral floats (3.0) or integer strings ("12")."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = list(ids)
    if len(ids) != n:
        raise InputError(f"The {layer} layer has {n} geometries but {len(ids)} ids; give one id per feature.")
    arr = np.asarray(ids) if n else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "i" or (arr.dtype.kind == "u" and (not n or arr.max() < 2 ** 63)):
        return arr.astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    for k, v in enumerate(ids):
        try:
            value = operator.index(v)
        except TypeError:
            value = None
            if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
                value = int(v)
            elif isinstance(v, str):
                try:
                    value = int(v.strip())
                except ValueError:
                    pass
        if value is None or not -2 ** 63 <= value < 2 ** 63:
            raise InputError(f"The {layer} layer's feature id {v!r} (position {k} in the list) is not a "
                             f"64-bit integer; give integer feature ids.")
        out[k] = value
    return out


def _check_geoms(geoms, ids, layer, allowed):
    """Geometry array, mask of usable ones; drops (id, reason) for null and empty ones."""
    arr = object_array(geoms)
    dropped = []
    null = np.zeros(len(arr), dtype=bool)
    not_geometry = np.flatnonzero(~shapely.is_geometry(arr)) if len(arr) else null
    null[not_geometry] = [g is None for g in arr[not_geometry]]
    other = np.zeros(len(arr), dtype=bool)
    other[not_geometry] = ~null[not_geometry]
    if other.any():
        i = int(np.flatnonzero(other)[0])
        raise InputError(f"The {layer} layer's feature {ids[i]} is not a shapely geometry "
                         f"({type(arr[i]).__name__}).")
    keep = ~null
    for i in np.flatnonzero(null):
        dropped.append((layer, int(ids[i]), "null geometry"))
    if keep.any():
        sub = arr[keep]
        types = shapely.get_type_id(sub)
        names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                          "MultiLineString", "MultiPolygon", "GeometryCollection"])
        bad = ~np.isin(names[np.clip(types, 0, 7)], list(allowed))
        if bad.any():
            j = np.flatnonzero(keep)[np.flatnonzero(bad)[0]]
            raise InputError(
                f"The {layer} layer's feature {ids[j]} is a {arr[j].geom_type}; "
                f"the {layer} layer takes only {' and '.join(sorted(allowed))} geometries.")
        empty = shapely.is_empty(sub)
        for j in np.flatnonzero(keep)[empty]:
            keep[j] = False
            dropped.append((layer, int(ids[j]), "empty geometry"))
    return arr, keep, dropped


def _incidence(rows, n_rows, n_cols):
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=bool)
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))


def prepare_features(polygons: Sequence = (), polygon_ids: Optional[Sequence[int]] = None,
                     polygon_areas: Optional[Sequence[Optional[float]]] = None,
                     points: Sequence = (), point_ids: Optional[Sequence[int]] = None,
                     primary: Optional[Sequence[Optional[str]]] = None,
                     commodities: Optional[Sequence[Optional[str]]] = None,
                     harmonisation: Optional[Mapping[str, str]] = None,
                     progress: Optional[Callable[[float], None]] = None,
                     should_stop: Optional[Callable[[], bool]] = None) -> Features:
    """Check and convert features for :func:`cluster_mines` (see core/API.md).

    Raises :class:`InputError` with one sentence naming the layer, feature id and value for bad
    input. Null and empty geometries are dropped and listed in ``Features.dropped``.
    ``progress(fraction 0..1)`` and ``should_stop()`` (True raises :class:`Cancelled`) are
    optional; the area computation, the longest step, reports and checks as it goes.
    """
    def check(fraction):
        checkpoint(progress, should_stop, fraction)

    check(0.0)
    polygons = list(polygons) if polygons is not None else []
    points = list(points) if points is not None else []
    pid = _ids(polygon_ids, len(polygons), "polygons")
    qid = _ids(point_ids, len(points), "points")
    areas_in = _as_list(polygon_areas, len(polygons), "The polygon area list")
    primary = _as_list(primary, len(points), "The primary commodity list")
    commodities = _as_list(commodities, len(points), "The commodity list")

    pg, pkeep, dropped = _check_geoms(polygons, pid, "polygons", _POLY_TYPES)
    qg, qkeep, qdropped = _check_geoms(points, qid, "points", _POINT_TYPES)
    dropped += qdropped
    # The core's one reading of user geometry (core/geometry.py): the coordinate rule, then for
    # polygons a collection's polygons, poles settled, the antimeridian cut, invalid ones repaired.
    p_index = np.flatnonzero(pkeep)
    # Areas not given are measured on the polygons as drawn while the repair checks their
    # validity (it holds the GIL, the area arithmetic releases it); repaired ones again below.
    missing = np.array([k for k, i in enumerate(p_index) if areas_in[i] is None], dtype=np.int64)
    read = read_polygons(pg[p_index], pid[p_index], "The polygons layer's feature {fid}", should_stop,
                         alongside=(lambda drawn: polygon_area_m2(drawn[missing], lambda r: check(0.1 + 0.65 * r),
                                                                  should_stop)) if len(missing) else None)
    if read.not_polygon.any():
        k = int(np.flatnonzero(read.not_polygon)[0])
        raise InputError(f"The polygons layer's feature {pid[p_index[k]]} is a {read.types[k]} without a polygon; "
                         f"the polygons layer takes only MultiPolygon and Polygon geometries.")
    check_coordinates(qg[qkeep], qid[qkeep], "The points layer's feature {fid}")
    # a polygon the repair leaves without area (a line drawn as one) keeps its place, area 0
    p_geoms = np.where(read.lost, read.drawn, read.geoms)
    p_geoms = np.where(shapely.is_missing(p_geoms), pg[p_index], p_geoms)

    # Polygon areas: given values checked, missing ones computed on the sphere.
    area = np.empty(len(p_index))
    for k, i in enumerate(p_index):
        a = areas_in[i]
        if a is None:
            continue
        try:
            a = float(a)
        except (TypeError, ValueError):
            raise InputError(
                f"The polygons layer's feature {pid[i]} has the area {a!r}, which is not a number.") from None
        if not np.isfinite(a) or a < 0:
            raise InputError(
                f"The polygons layer's feature {pid[i]} has the area {a} m²; areas must be finite and not negative.")
        area[k] = a
    check(0.75)
    if len(missing):
        measured = read.alongside
        redo = np.flatnonzero(read.repaired[missing])
        measured[redo] = polygon_area_m2(read.geoms[missing[redo]], lambda r: check(0.75 + 0.05 * r), should_stop)
        area[missing] = measured
    check(0.8)

    # Points: one element per non-empty part.
    q_index = np.flatnonzero(qkeep)
    parts, owner = shapely.get_parts(qg[q_index], return_index=True)
    parts = wrap_points(parts)              # longitudes beyond ±180° one turn back
    part_no = np.zeros(len(owner), dtype=np.int32)  # the part's position in its MultiPoint
    if len(owner):
        starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
        part_no = (np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))).astype(np.int32)
    nonempty = ~shapely.is_empty(parts)
    parts, owner, part_no = parts[nonempty], owner[nonempty], part_no[nonempty]
    for k in np.setdiff1d(np.arange(len(q_index)), owner):
        dropped.append(("points", int(qid[q_index[k]]), "empty geometry"))

    vocab = Vocabulary(harmonisation)
    prim_keys = [vocab.parse(primary[i]) for i in q_index]
    union = {}          # (primary keys, commodities keys) -> their sorted union, made once

    def all_of(p, c):
        u = union.get((p, c))
        if u is None:
            u = union[(p, c)] = tuple(sorted(set(p) | set(c)))
        return u

    all_keys = [all_of(p, vocab.parse(commodities[i])) for p, i in zip(prim_keys, q_index)]
    names, code = vocab.freeze()
    check(0.9)

    n_p, n_q = len(p_index), len(parts)
    kind = np.r_[np.full(n_p, POLYGON, np.int8), np.full(n_q, POINT, np.int8)]
    feature_id = np.r_[pid[p_index], qid[q_index][owner]].astype(np.int64)
    part = np.r_[np.zeros(n_p, np.int32), part_no]
    index = np.r_[p_index, q_index[owner]].astype(np.int64)
    geoms = np.concatenate([p_geoms, parts]) if n_p + n_q else np.empty(0, dtype=object)
    areas = np.r_[area, np.zeros(n_q)]
    given = pg[p_index]
    # the repair alone made it: the object as drawn is the caller's (taken as it is where valid,
    # the repair returning the same object; else repaired from it)
    alone = np.fromiter((read.drawn[k] is given[k] for k in range(n_p)), dtype=bool, count=n_p) & ~read.lost
    from_given = np.full(n_p + n_q, None, dtype=object)
    from_given[:n_p][alone] = given[alone]
    prim_rows = [()] * n_p + [tuple(code[k] for k in prim_keys[o]) for o in owner]
    all_rows = [()] * n_p + [tuple(code[k] for k in all_keys[o]) for o in owner]

    # Canonical order: kind, id, part, then geometry bytes for duplicate ids.
    order = np.lexsort((part, feature_id, kind))
    dup = (np.diff(kind[order]) == 0) & (np.diff(feature_id[order]) == 0) & (np.diff(part[order]) == 0)
    if dup.any():
        wkb = shapely.to_wkb(geoms)
        order = np.array(sorted(range(len(kind)), key=lambda i: (kind[i], feature_id[i], part[i], wkb[i], index[i])),
                         dtype=np.int64)
    geoms = geoms[order]
    bounds = unwrapped_bounds(geoms) if len(geoms) else np.zeros((0, 4))
    ref_lon, ref_lat = bounds_centres(bounds)
    prim = _incidence([prim_rows[i] for i in order], len(order), len(names))
    comm = _incidence([all_rows[i] for i in order], len(order), len(names))
    out = Features(from_given=from_given[order],
                   kind=kind[order], feature_id=feature_id[order], part=part[order],
                   index=index[order], geoms=geoms, area_m2=areas[order], bounds=bounds,
                   ref_lon=ref_lon, ref_lat=ref_lat, primary=prim, commodities=comm,
                   names=names, dropped=dropped)
    check(1.0)
    return out
