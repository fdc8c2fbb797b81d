"""Harmonise the inputs of the clustering (Maus 2025, section 2.3.1).

Two independent steps, both pure Python (numpy, scipy, shapely; never qgis):

- :func:`merge_polygons`: land-use polygons from several named sources are merged so that no
  area counts twice. Polygons that overlap or touch, within or across sources, form one output
  polygon (the union of a connected component of the "intersects" graph); each output polygon
  keeps the names of its sources (in input order, joined with "/", the paper's
  "Maus/Tang/OSM"), the ids of the input polygons merged into it, their number and its
  area on the sphere (:data:`.geodesy.AREA_EDGE_MODEL`). Polygons that touch or overlap across the
  antimeridian merge too: the output is a MultiPolygon with parts on both sides of +/-180.
- :func:`harmonise_points`: inventory points from several databases get one schema
  (``POINT_FIELDS``) and commodity names mapped through a harmonisation table.

Geometries are shapely objects in lon/lat degrees (EPSG:4326), read by the core's one rule
(:mod:`.geometry`: coordinates, poles, the antimeridian, repair).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .commodities import join_names, normalise_key, split_tokens
from .errors import InputError
from .geodesy import polygon_area_m2
from .geometry import check_coordinates, polygonal, read_polygons, settle_poles, wrap_points
from .progress import checkpoint, report
from .schema import DROPPED_FIELDS, POINT_FIELDS, POLYGON_FIELDS  # noqa: F401  (re-exported)


#: Default values that are not commodities (compared trimmed and case-folded).
DEFAULT_NON_COMMODITIES = ("Not relevant", "Processing")
#: Default raw primary commodities whose points are left out (Jasansky's processing plants).
DEFAULT_DROP_PRIMARY = ("Processing",)

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DEFAULT_TABLE_PATH = os.path.join(DATA_DIR, "commodity_harmonisation.csv")

#: Polygons closer than this (degrees, ~0.1 mm) touch: reprojection noise on shared edges.
TOUCH_TOLERANCE_DEG = 1e-9
AREA_CHUNK = 5000   # polygons per pass of the area computation (bounds its temporary memory)
#: Polygons smaller than this in square degrees (about 0.01 m²) are slivers without area.
SLIVER_AREA_DEG2 = 1e-12

SOURCE_SEPARATOR = "/"
ID_SEPARATOR = ";"
#: Joins a source name and a feature id in ``input_ids`` ("Maus:12").
SOURCE_ID_SEPARATOR = ":"


# --------------------------------------------------------------------------- helpers

def _key(name) -> str:
    return normalise_key(name)


def dropped_rows(dropped):
    """One dict per dropped feature with the keys of DROPPED_FIELDS: its source, its id as
    text (as in the outputs) and the reason."""
    for source, fid, reason in dropped:
        yield {"source": source, "source_id": None if fid is None else str(fid),
               "reason": reason}


# --------------------------------------------------------------------------- polygons

@dataclass(frozen=True)
class PolygonSource:
    """One land-use layer: a source name, its geometries (lon/lat) and feature ids."""
    name: str
    geometries: Sequence
    ids: Sequence


@dataclass
class PolygonMergeResult:
    geometries: list            # shapely Polygon or MultiPolygon per merged polygon
    polygon_id: np.ndarray      # 1..k, ordered by the first input polygon of each
    sources: list               # "Maus/Tang", contributing source names in input order
    n_inputs: np.ndarray
    input_ids: list             # "Maus:12;Tang:5"
    members: list               # list of lists of (source, id)
    area_m2: np.ndarray
    n_in: int = 0
    n_in_by_source: dict = field(default_factory=dict)
    repaired: list = field(default_factory=list)        # (source, id)
    antimeridian: list = field(default_factory=list)    # (source, id)
    dropped: list = field(default_factory=list)         # (source, id, reason)

    def rows(self):
        """One dict per merged polygon with the keys of POLYGON_FIELDS."""
        for i in range(len(self.geometries)):
            yield {"polygon_id": int(self.polygon_id[i]), "sources": self.sources[i],
                   "n_inputs": int(self.n_inputs[i]), "input_ids": self.input_ids[i],
                   "area_m2": float(self.area_m2[i])}

    def summary_lines(self) -> list:
        lines = [f"Polygons in: {self.n_in} ("
                 + ", ".join(f"{k}: {v}" for k, v in self.n_in_by_source.items()) + ")."]
        merged = int(self.n_inputs.sum()) if len(self.n_inputs) else 0
        lines.append(f"Merged {merged} polygons into {len(self.geometries)} polygons "
                     f"({merged - len(self.geometries)} merged away), total area "
                     f"{float(self.area_m2.sum()) / 1e6:.3f} km².")
        lines.append(f"Invalid geometries repaired: {len(self.repaired)}.")
        if self.antimeridian:
            lines.append(f"Polygons split at the antimeridian: {len(self.antimeridian)}.")
        reasons = Counter(r for _, _, r in self.dropped)
        lines.append(f"Dropped: {len(self.dropped)}"
                     + (" (" + "; ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")"
                        if reasons else "") + ".")
        combos = Counter(self.sources)
        for combo, n in sorted(combos.items(), key=lambda kv: (-kv[1], kv[0])):
            area = float(self.area_m2[[s == combo for s in self.sources]].sum()) / 1e6
            lines.append(f"  sources {combo}: {n} polygons, {area:.3f} km².")
        return lines


def check_polygon_source_name(name) -> None:
    """InputError unless `name` can be written into ``sources`` and ``input_ids``: not empty,
    and none of '/', ';' and ':' (they separate names and ids there)."""
    seps = (SOURCE_SEPARATOR, ID_SEPARATOR, SOURCE_ID_SEPARATOR)
    if not name or not name.strip() or any(c in name for c in seps):
        raise InputError(f"The polygon source name '{name}' is empty or holds one of "
                         f"'{SOURCE_SEPARATOR}', '{ID_SEPARATOR}' and '{SOURCE_ID_SEPARATOR}', "
                         f"which separate names and ids in the output ('Maus/Tang', "
                         f"'Maus:12;Tang:5'); choose another name.")


def _antimeridian_pairs(tree, kept, tolerance):
    """Pairs (i, j) of polygons that touch or overlap across the antimeridian: each polygon
    that reaches +180 is shifted by -360 degrees and matched against those that reach -180."""
    bounds = shapely.bounds(kept)
    reach = max(tolerance, 0.0)
    east = np.flatnonzero(bounds[:, 2] >= 180.0 - reach)
    if len(east) == 0 or not np.any(bounds[:, 0] <= -180.0 + reach):
        return np.zeros((2, 0), dtype=np.int64)
    shifted = shapely.transform(kept[east], lambda c: c - np.array([360.0, 0.0]))
    if tolerance > 0:
        q = tree.query(shifted, predicate="dwithin", distance=tolerance)
    else:
        q = tree.query(shifted, predicate="intersects")
    q[0] = east[q[0]]
    return q[:, q[0] != q[1]]


def merge_polygons(sources: Sequence[PolygonSource],
                   touch_tolerance_deg: float = TOUCH_TOLERANCE_DEG,
                   progress: Optional[Callable[[float], None]] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> PolygonMergeResult:
    """Merge overlapping or touching polygons of all sources into non-overlapping polygons.

    Null and empty geometries, and geometries with no polygon (points, lines), are dropped and
    reported; invalid ones are repaired with ``shapely.make_valid`` (and dropped when nothing
    with an area is left). Two polygons that overlap or touch end in the same output polygon,
    and so do chains of them; distinct output polygons do not touch. Polygons closer than
    ``touch_tolerance_deg`` (default 1e-9 degrees, about 0.1 mm) count as touching: a shared
    edge stays shared after a reprojection only up to floating-point noise. Touching and
    overlapping count across the antimeridian too (a polygon ending at +180 and one starting at
    -180 on a common stretch of it merge into one MultiPolygon with a part on each side).
    ``area_m2``: see :data:`.geodesy.AREA_EDGE_MODEL`.
    """
    names = [s.name for s in sources]
    for n in names:
        check_polygon_source_name(n)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"Two polygon sources are both named '{dup}'; give each source its "
                         f"own name.")
    src_of, id_of, geoms = [], [], []
    n_by_source = OrderedDict()
    for s_index, s in enumerate(sources):
        if len(s.geometries) != len(s.ids):
            raise InputError(f"The polygon source '{s.name}' has {len(s.geometries)} "
                             f"geometries but {len(s.ids)} ids.")
        n_by_source[s.name] = len(s.ids)
        src_of.extend([s_index] * len(s.ids))
        id_of.extend(s.ids)
        geoms.extend(s.geometries)
    n_in = len(geoms)
    src_of = np.asarray(src_of, dtype=np.int64)
    result_dropped, repaired, split = [], [], []

    # 1. the core's reading of user polygons (core/geometry.py): polygons only, the coordinate
    # rule, vertices on a pole, the antimeridian, then validity
    checkpoint(progress, should_stop, 0.0)
    labels = [f"{i} of the polygon source '{names[s]}'" for s, i in zip(src_of.tolist(), id_of)]
    read = read_polygons(geoms, labels, "Feature {fid}", should_stop)
    clean = read.geoms
    keep = ~shapely.is_missing(clean)
    for i in range(n_in):
        if read.empty[i]:
            result_dropped.append((names[src_of[i]], id_of[i], "empty or null geometry"))
        elif read.not_polygon[i]:
            result_dropped.append((names[src_of[i]], id_of[i], f"not a polygon ({read.types[i]})"))
        elif read.lost[i] or (read.repaired[i] and shapely.area(clean[i]) == 0.0):
            result_dropped.append((names[src_of[i]], id_of[i], "invalid geometry with no area after repair"))
            keep[i] = False
            clean[i] = None
        elif read.repaired[i]:
            repaired.append((names[src_of[i]], id_of[i]))
    split.extend((names[src_of[i]], id_of[i]) for i in np.flatnonzero(read.split & keep))
    checkpoint(progress, should_stop, 0.1)
    # a line drawn as a polygon stays a sliver after a reprojection (its vertices are no
    # longer exactly collinear): it has no area to count but would join what it touches
    idx = np.flatnonzero(keep)
    for i in idx[shapely.area(clean[idx]) < SLIVER_AREA_DEG2]:
        result_dropped.append((names[src_of[i]], id_of[i],
                               "no area (a line or a point drawn as a polygon)"))
        keep[i] = False
        clean[i] = None
    checkpoint(progress, should_stop, 0.2)

    # 3. connected components of the "touches or overlaps" graph
    idx = np.flatnonzero(keep)
    kept = clean[idx]
    n = len(idx)
    if n:
        tree = shapely.STRtree(kept)
        pairs = []
        chunk = 20000
        for start in range(0, n, chunk):
            checkpoint(progress, should_stop, 0.2 + 0.3 * start / n)
            if touch_tolerance_deg > 0:
                q = tree.query(kept[start:start + chunk], predicate="dwithin",
                               distance=touch_tolerance_deg)
            else:
                q = tree.query(kept[start:start + chunk], predicate="intersects")
            q[0] += start
            pairs.append(q[:, q[0] < q[1]])
        # the same "touches or overlaps" across +/-180 degrees: one polygon on each side
        pairs.append(_antimeridian_pairs(tree, kept, touch_tolerance_deg))
        pairs = np.concatenate(pairs, axis=1)
        graph = coo_matrix((np.ones(pairs.shape[1], dtype=np.int8), (pairs[0], pairs[1])),
                           shape=(n, n))
        _, labels = connected_components(graph, directed=False)
    else:
        labels = np.zeros(0, dtype=np.int64)

    # components numbered by their first member (input order); members in input order
    order = np.argsort(labels, kind="stable")
    bounds_ = np.flatnonzero(np.diff(labels[order])) + 1
    groups = np.split(order, bounds_) if n else []
    groups.sort(key=lambda g: g[0])

    out_geoms, out_sources, out_ids, out_members, out_n = [], [], [], [], []
    for k, members in enumerate(groups):
        if k % 2000 == 0:
            checkpoint(progress, should_stop, 0.5 + 0.4 * k / max(len(groups), 1))
        if len(members) == 1:
            geom = kept[members[0]]
        else:   # settled again: a union may join runs of pole vertices (the output is read as is)
            geom = settle_poles([polygonal(shapely.union_all(kept[members]))])[0]
        rows = idx[members]
        contributing = sorted(set(src_of[rows].tolist()))
        out_geoms.append(geom)
        out_sources.append(SOURCE_SEPARATOR.join(names[s] for s in contributing))
        pairs_ = [(names[src_of[r]], id_of[r]) for r in rows]
        out_members.append(pairs_)
        out_ids.append(ID_SEPARATOR.join(f"{s}:{i}" for s, i in pairs_))
        out_n.append(len(members))
    checkpoint(progress, should_stop, 0.9)
    area = polygon_area_m2(out_geoms)
    report(progress, 1.0)
    return PolygonMergeResult(
        geometries=out_geoms, polygon_id=np.arange(1, len(out_geoms) + 1, dtype=np.int64),
        sources=out_sources, n_inputs=np.asarray(out_n, dtype=np.int64), input_ids=out_ids,
        members=out_members, area_m2=np.asarray(area, dtype=float), n_in=n_in,
        n_in_by_source=dict(n_by_source), repaired=repaired, antimeridian=split,
        dropped=result_dropped)


# --------------------------------------------------------------------------- commodities

def read_harmonisation_table(path: Optional[str] = None) -> dict:
    """{trimmed, case-folded raw name: harmonised value} from a CSV file (default: the table
    shipped with the plugin, see core/data/README.md). The first row wins for duplicates."""
    path = path or DEFAULT_TABLE_PATH
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InputError(f"The harmonisation table '{path}' cannot be read ({exc.strerror}).")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_harmonisation_table(text, path)


def parse_harmonisation_table(text: str, name: str = "table") -> dict:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"The harmonisation table '{name}' is empty; it needs two columns, "
                         f"the raw name and the harmonised name.")
    header = [_key(c) for c in rows[0]]
    raw_col, harm_col = 0, 1
    pairs = (("material", "material_harmonized"), ("material", "material_harmonised"),
             ("raw", "harmonised"), ("raw", "harmonized"))
    has_header = False
    for a, b in pairs:
        if a in header and b in header:
            raw_col, harm_col, has_header = header.index(a), header.index(b), True
            break
    if not has_header and len(rows[0]) < 2:
        raise InputError(f"The harmonisation table '{name}' has one column; it needs two, "
                         f"the raw name and the harmonised name.")
    table = {}
    for r in rows[1:] if has_header else rows:
        if len(r) <= raw_col:
            continue
        k = _key(r[raw_col])
        if not k or k in table:
            continue
        table[k] = r[harm_col].strip() if len(r) > harm_col else ""
    return table


@dataclass
class CommodityHarmoniser:
    """Maps raw commodity text to harmonised names and keeps the counts for the log."""
    table: Mapping[str, str]
    non_commodities: Iterable[str] = DEFAULT_NON_COMMODITIES

    def __post_init__(self):
        self.table = {_key(k): v for k, v in self.table.items()}
        self._non = {_key(v) for v in self.non_commodities if v and v.strip()}
        self.unknown = Counter()        # case-folded unknown name -> count
        self.not_commodity = Counter()  # case-folded name mapped to "" or a non-commodity
        self.mapped = Counter()         # harmonised name -> count
        self.renamed = Counter()        # (case-folded raw name, harmonised names) -> count
        self._spelling = {}             # case-folded unknown name -> spelling sorting first
        self._spelling_non = {}         # the same for the names that are not commodities
        self._spelling_renamed = {}     # the same for the names the table renames
        # the table's own spelling of each harmonised name wins over raw case variants
        self._output = {_key(t): t for v in self.table.values() for t in split_tokens(v)}

    def names(self, text) -> list:
        """Harmonised names of one raw value (a ',' or ';' list), without repeats (a name is
        its trimmed, case-folded self); unknown values ("", NA, ...) give nothing."""
        out, seen = [], set()
        for token in split_tokens(text):
            k = _key(token)
            if k in self._non:
                self._not_a_commodity(k, token)
                continue
            if k not in self.table:
                self.unknown[k] += 1
                self._keep_first_spelling(self._spelling, k, token)
                if k not in seen:
                    seen.add(k)
                    out.append(token)
                continue
            targets = split_tokens(self.table[k])
            kept = [t for t in targets if _key(t) not in self._non]
            if not kept:
                self._not_a_commodity(k, token)
                continue
            if [_key(t) for t in kept] != [k]:  # the table renamed it (Chromite -> Chromium)
                self.renamed[(k, join_names(kept))] += 1
                self._keep_first_spelling(self._spelling_renamed, k, token)
            for t in kept:
                self.mapped[t] += 1
                if _key(t) not in seen:
                    seen.add(_key(t))
                    out.append(t)
        return out

    @staticmethod
    def _keep_first_spelling(spellings, key, token):
        if key not in spellings or token < spellings[key]:
            spellings[key] = token

    def _not_a_commodity(self, key, token):
        self.not_commodity[key] += 1
        self._keep_first_spelling(self._spelling_non, key, token)

    def respell(self, text):
        """A joined list with every name in its one spelling: the table's, else the one sorting
        first among the raw spellings met."""
        if text is None:
            return None
        return join_names({self._output.get(_key(n)) or self._spelling.get(_key(n), n)
                           for n in text.split(",")})

    def renamed_names(self) -> Counter:
        """{"raw -> harmonised": count} of the names the table changed (spelling: the raw one
        that sorts first), for the log: what the table did, not only what it did not know."""
        return Counter({f"{self._spelling_renamed[k]} -> {v}": n
                        for (k, v), n in self.renamed.items()})

    def unknown_names(self) -> Counter:
        """Names not in the table with their counts (spelling: the one that sorts first)."""
        return Counter({self._spelling[k]: n for k, n in self.unknown.items()})

    def not_commodity_names(self) -> Counter:
        """Values removed as not commodities with their counts, case-folded like the unknown
        names ("steel" and "Steel" count as one; spelling: the one that sorts first)."""
        return Counter({self._spelling_non[k]: n for k, n in self.not_commodity.items()})


@dataclass(frozen=True)
class PointSource:
    """One inventory layer: a name, geometries (lon/lat Point/MultiPoint or None), source ids,
    the primary-commodity values and, per all-commodities field, its values (or a constant)."""
    name: str
    geometries: Sequence
    ids: Sequence
    primary: Sequence               # str or None per feature
    others: Sequence = ()           # sequence of per-feature value sequences


@dataclass
class PointHarmoniseResult:
    points: list                    # shapely Point per row
    point_id: np.ndarray
    source: list
    source_id: list
    primary_commodity: list         # comma list or None
    commodities: list               # comma list or None
    n_in: int = 0
    n_in_by_source: dict = field(default_factory=dict)
    n_parts_exploded: int = 0
    dropped: list = field(default_factory=list)    # (source, id, reason)
    unknown: Counter = field(default_factory=Counter)
    not_commodity: Counter = field(default_factory=Counter)
    renamed: Counter = field(default_factory=Counter)  # "raw -> harmonised": count
    no_primary: int = 0

    def rows(self):
        for i in range(len(self.points)):
            yield {"point_id": int(self.point_id[i]), "source": self.source[i],
                   "source_id": self.source_id[i],
                   "primary_commodity": self.primary_commodity[i],
                   "commodities": self.commodities[i]}

    def summary_lines(self) -> list:
        lines = [f"Point features in: {self.n_in} ("
                 + ", ".join(f"{k}: {v}" for k, v in self.n_in_by_source.items()) + ")."]
        lines.append(f"Points out: {len(self.points)} (multipoints gave "
                     f"{self.n_parts_exploded} extra points); without a primary commodity: "
                     f"{self.no_primary}.")
        reasons = Counter(r for _, _, r in self.dropped)
        lines.append(f"Dropped: {len(self.dropped)}"
                     + (" (" + "; ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")"
                        if reasons else "") + ".")
        if self.renamed:
            lines.append(f"Renamed by the harmonisation table ({len(self.renamed)} names): "
                         + ", ".join(f"{k} ({v})" for k, v in sorted(
                             self.renamed.items(), key=lambda kv: (-kv[1], kv[0]))) + ".")
        if self.not_commodity:
            lines.append("Not commodities, removed from the lists: " + ", ".join(
                f"{k} ({v})" for k, v in sorted(self.not_commodity.items(),
                                                key=lambda kv: (-kv[1], kv[0]))) + ".")
        if self.unknown:
            lines.append(f"Names not in the harmonisation table, kept as written "
                         f"({len(self.unknown)}): " + ", ".join(
                             f"{k} ({v})" for k, v in sorted(self.unknown.items(),
                                                             key=lambda kv: (-kv[1], kv[0])))
                         + ".")
        return lines


def harmonise_points(sources: Sequence[PointSource],
                     table: Optional[Mapping[str, str]] = None,
                     non_commodities: Iterable[str] = DEFAULT_NON_COMMODITIES,
                     drop_primary: Iterable[str] = DEFAULT_DROP_PRIMARY,
                     progress: Optional[Callable[[float], None]] = None,
                     should_stop: Optional[Callable[[], bool]] = None) -> PointHarmoniseResult:
    """One row per point (multipoints exploded, each part keeping its source id), with the
    primary commodities and all commodities (primary included) harmonised and comma-joined.

    Null/empty geometries are dropped and reported; so are points whose raw primary commodity
    is one of ``drop_primary`` (compared trimmed and case-folded, e.g. "Processing").
    """
    if table is None:
        table = read_harmonisation_table()
    harm = CommodityHarmoniser(table, non_commodities)
    drop = {_key(v) for v in drop_primary if v and v.strip()}
    total = sum(len(s.ids) for s in sources) or 1
    pts, src, sid, prim, comm, dropped = [], [], [], [], [], []
    n_by_source, n_extra, no_primary, done = OrderedDict(), 0, 0, 0
    for s in sources:
        n = len(s.ids)
        if len(s.geometries) != n or len(s.primary) != n or any(len(o) != n for o in s.others):
            raise InputError(f"The point source '{s.name}' has columns of different lengths.")
        n_by_source[s.name] = n_by_source.get(s.name, 0) + n
        for i in range(n):
            if done % 5000 == 0:
                checkpoint(progress, should_stop, done / total)
            done += 1
            g = s.geometries[i]
            fid = s.ids[i]
            if g is None or g.is_empty:
                dropped.append((s.name, fid, "empty or null geometry"))
                continue
            if g.has_z:
                g = shapely.force_2d(g)
            if g.geom_type == "Point":
                parts = [g]
            elif g.geom_type in ("MultiPoint", "GeometryCollection"):
                parts = [p for p in g.geoms if p.geom_type == "Point" and not p.is_empty]
            else:
                parts = []
            if not parts:
                dropped.append((s.name, fid, f"not a point ({g.geom_type})"))
                continue
            # the core's coordinate rule (core/geometry.py): 0..360 longitudes back into -180..180
            check_coordinates(parts, [fid] * len(parts), f"Feature {{fid}} of the point source '{s.name}'")
            parts = list(wrap_points(parts))
            raw_primary = s.primary[i]
            # names, not spellings: "Processing;processing" is one name, the one to drop
            spelling = {}
            for t in split_tokens(raw_primary):
                CommodityHarmoniser._keep_first_spelling(spelling, _key(t), t)
            if spelling and spelling.keys() <= drop:    # e.g. only "Processing"
                dropped.append((s.name, fid, "primary commodity "
                                + ", ".join(sorted(spelling.values()))))
                continue
            primary = harm.names(raw_primary)
            everything = list(primary)
            seen = {_key(p) for p in primary}
            for values in s.others:
                for name in harm.names(values[i]):
                    if _key(name) not in seen:
                        seen.add(_key(name))
                        everything.append(name)
            p_text = join_names(primary)
            c_text = join_names(everything)
            if not primary:
                no_primary += len(parts)
            n_extra += len(parts) - 1
            for part in parts:
                pts.append(part)
                src.append(s.name)
                sid.append(None if fid is None else str(fid))
                prim.append(p_text)
                comm.append(c_text)
    # An unknown name met in several spellings is one commodity (METHOD.md): one spelling for all.
    prim = [harm.respell(t) for t in prim]
    comm = [harm.respell(t) for t in comm]
    report(progress, 1.0)
    return PointHarmoniseResult(
        points=pts, point_id=np.arange(1, len(pts) + 1, dtype=np.int64), source=src,
        source_id=sid, primary_commodity=prim, commodities=comm,
        n_in=sum(n_by_source.values()), n_in_by_source=dict(n_by_source),
        n_parts_exploded=n_extra, dropped=dropped, unknown=harm.unknown_names(),
        not_commodity=harm.not_commodity_names(), renamed=harm.renamed_names(),
        no_primary=no_primary)
