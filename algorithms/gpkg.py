"""Rows written straight into a GeoPackage table that QGIS's own writer created empty.

A feature sink costs per-feature Python (a QgsFeature, its attributes converted to QVariants, its
geometry) and then GDAL's per-feature work; for the cluster outputs (370,000 features at planet
scale) that was twice what GDAL alone needs. Here the table, its fields, CRS, metadata tables and
empty spatial index are made by QGIS (the output is the same file a sink makes), and only the
rows go in through Python's sqlite3 module, many per INSERT statement, each geometry as a
GeoPackage blob (the header of the GeoPackage 1.2 standard, §2.1.3, without the optional
envelope, then the WKB QGIS gives), in one transaction with the feature count, the extent and
the spatial index.

The spatial index (the R*Tree of the GeoPackage's ``gpkg_rtree_index`` extension) is written
packed, all at once, into the R*Tree's own tables (:func:`packed_rtree`), as newer GDAL does
when it builds one: GDAL 3.6 (QGIS 3.22's) has SQLite insert the boxes one by one, 2.4 s for the
planet's polygons. Where SQLite refuses writes to those tables (its defensive mode), the boxes
are inserted one by one through SQLite's R*Tree module instead.

OGR's own bulk path (``OGR_L_WriteArrowBatch``) needs GDAL 3.8 and pyarrow, which QGIS 3.22's
Debian, Windows and macOS packages do not all have: hence sqlite3, which every Python has.
:class:`Table` refuses (:class:`Unusable`) a table it cannot write exactly, and the caller then
keeps QGIS's sink. Nothing here imports QGIS.
"""
import contextlib
import functools
import itertools
import operator
import sqlite3
import struct

import numpy as np

#: GeoPackage blob header: magic, version 0, flags (byte order; empty geometry), srs_id.
_MAGIC = b"GP\x00"
_LITTLE_ENDIAN = 1
_EMPTY = 1 << 4

#: The columns of a GeoPackage spatial index (GeoPackage 1.2, F.3) and of SQLite's R*Tree tables.
_RTREE_COLUMNS = ["id", "minx", "maxx", "miny", "maxy"]
_RTREE_SHADOWS = {"node": ["nodeno", "data"], "rowid": ["rowid", "nodeno"],
                  "parent": ["nodeno", "parentnode"]}
#: Geometries whose boxes are read at a time (:func:`wkb_bounds`).
_BOUNDS_BATCH = 20000
#: An R*Tree cell: the id (a row's, or a child node's number), then the box, big-endian.
_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])


class Unusable(Exception):
    """The table cannot be written here (the caller writes through QGIS instead)."""


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=None)
def has_rtree():
    """Whether this Python's SQLite has the R*Tree module a GeoPackage spatial index needs."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE VIRTUAL TABLE t USING rtree(id, minx, maxx, miny, maxy)")
        return True
    except sqlite3.Error:
        return False
    finally:
        con.close()


class Table:
    """The one feature table of the GeoPackage at `path`, opened for bulk insertion of rows whose
    values are in the order of `field_names` (the output's fields; a field named like the
    table's primary key, e.g. 'fid', gives the row id).

    Raises :class:`Unusable` when the file is not a GeoPackage with exactly one empty feature
    table whose columns are the fields, and an empty spatial index of the standard's form if
    any (nothing is changed then)."""

    def __init__(self, path, field_names):
        self.path = path
        try:
            self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise Unusable(str(exc)) from None
        try:
            self._inspect([str(n) for n in field_names])
        except (sqlite3.Error, Unusable) as exc:
            self.con.close()
            raise Unusable(str(exc)) from None
        self.count = 0
        self._last_id = 0
        self._ids, self._bounds, self._pending = [], [], []
        self._begun = False

    def _inspect(self, names):
        con = self.con
        tables = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'") \
            .fetchall()
        if len(tables) != 1:
            raise Unusable(f"{len(tables)} feature tables")
        self.table = tables[0][0]
        geom = con.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns "
                           "WHERE table_name = ?", (self.table,)).fetchall()
        if len(geom) != 1:
            raise Unusable("no geometry column")
        self.geometry_column, self.srs_id = geom[0]
        columns = con.execute(f"PRAGMA table_info({_quote(self.table)})").fetchall()
        pk = [c[1] for c in columns if c[5] == 1]
        if len(pk) != 1:
            raise Unusable("no single primary key")
        self.pk = pk[0]
        plain = [c[1] for c in columns if c[1] not in (self.pk, self.geometry_column)]
        given = [n for n in names if n.lower() != self.pk.lower()]
        if [n.lower() for n in plain] != [n.lower() for n in given] or \
                len(given) < len(names) - 1:
            raise Unusable("the table's columns are not the fields")
        self.pk_at = next((i for i, n in enumerate(names) if n.lower() == self.pk.lower()), None)
        # identifiers (quoted) are the file's own table and columns; values are always bound
        empty = f"SELECT EXISTS (SELECT 1 FROM {_quote(self.table)})"  # nosec B608
        if con.execute(empty).fetchone()[0]:
            raise Unusable("the table is not empty")
        self._rtree = f"rtree_{self.table}_{self.geometry_column}"
        present = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?, ?)",
            (self._rtree, *(f"{self._rtree}_{s}" for s in _RTREE_SHADOWS)))}
        self._had_rtree = self._rtree in present
        if self._had_rtree:
            if len(present) != 4 or self._columns_of(self._rtree) != _RTREE_COLUMNS or any(
                    self._columns_of(f"{self._rtree}_{s}") != c for s, c in _RTREE_SHADOWS.items()):
                raise Unusable("a spatial index of another form")
            rowid = _quote(self._rtree + "_rowid")
            if con.execute(f"SELECT EXISTS (SELECT 1 FROM {rowid})").fetchone()[0]:  # nosec B608
                raise Unusable("the spatial index is not empty")
        # the triggers (feature count, spatial index) are set aside while the rows go in; the
        # count and the index are written once at the end
        self._triggers = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (self.table,)).fetchall()
        order = [self.pk, self.geometry_column] + plain
        self._insert = f"INSERT INTO {_quote(self.table)} ({', '.join(map(_quote, order))}) VALUES "  # nosec B608

    def _columns_of(self, table):
        return [c[1].lower() for c in self.con.execute(f"PRAGMA table_info({_quote(table)})")]

    def _begin(self):
        con = self.con
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN IMMEDIATE")
        for name, _sql in self._triggers:
            con.execute(f"DROP TRIGGER {_quote(name)}")
        self._begun = True

    def add(self, columns, wkbs, bounds=None):
        """Inserts rows given as `columns` (one sequence of values per field, in the field order;
        str, int, float, bool or None) with the geometries `wkbs` (little-endian ISO WKB in the
        table's CRS, or None); `bounds`, optional: their boxes (minx, miny, maxx, maxy rows, NaN
        for no box) where the caller has them, else they are read from the WKB."""
        if not self._begun:
            self._begin()
        n = len(wkbs)
        if not n:
            return
        ids = self._row_ids(columns[self.pk_at] if self.pk_at is not None else None, n)
        header = _MAGIC + bytes((_LITTLE_ENDIAN,)) + struct.pack("<i", self.srs_id)
        empty = _MAGIC + bytes((_LITTLE_ENDIAN | _EMPTY,)) + struct.pack("<i", self.srs_id)
        blobs = _blobs(wkbs, header, empty)
        plain = [c for k, c in enumerate(columns) if k != self.pk_at]
        # the rows zipped from the columns (no per-row Python)
        _insert_many(self.con, self._insert, zip(ids.tolist(), blobs, *plain))
        self.count += n
        self._ids.append(ids)
        if bounds is not None:
            self._bound_pending()  # the boxes stay in the rows' order
            self._bounds.append(np.asarray(bounds, dtype=float).reshape(n, 4))
            return
        self._pending += wkbs
        if len(self._pending) >= _BOUNDS_BATCH:
            self._bound_pending()

    def _bound_pending(self):
        """The boxes of the geometries inserted since the last call: many at a time (each numpy
        call releases the GIL, and beside busy Python threads each wait to take it back costs)."""
        if self._pending:
            self._bounds.append(wkb_bounds(self._pending))
            self._pending = []

    def _row_ids(self, given, n):
        """The row ids (feature ids) of `n` rows: the primary key field's values `given` where
        the fields have it, and where they do not (None) or it is NULL the id SQLite gives a row
        without one (one more than the largest so far: the table was empty)."""
        if given is None:
            ids = np.arange(self._last_id + 1, self._last_id + 1 + n, dtype=np.int64)
        elif all(v.__class__ is int for v in given):
            ids = np.array(given, np.int64)
        else:
            ids = np.empty(n, np.int64)
            last = self._last_id
            for k, v in enumerate(given):
                if v is None:
                    v = last + 1
                elif v.__class__ is not int:
                    if not (isinstance(v, (int, float)) and float(v).is_integer()):
                        raise ValueError(f"the value {v!r} of the field '{self.pk}' is not a "
                                         "whole number (it is the GeoPackage's feature id)")
                    v = int(v)
                ids[k] = v
                last = max(last, v)
        self._last_id = max(self._last_id, int(ids.max()))
        return ids

    def finish(self):
        """The rows committed with their count, extent and spatial index and the triggers
        restored, in one transaction."""
        if not self._begun:
            self._begin()
        con = self.con
        self._bound_pending()
        ids = np.concatenate(self._ids) if self._ids else np.empty(0, np.int64)
        bounds = np.concatenate(self._bounds) if self._bounds else np.empty((0, 4))
        self._ids = self._bounds = self._pending = None
        box = np.isfinite(bounds).all(axis=1)   # no box: a NULL or empty geometry
        ids, bounds = ids[box], bounds[box]
        if self._had_rtree and len(ids):
            self._fill_rtree(ids, bounds)
        for _name, sql in self._triggers:
            con.execute(sql)
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone():
            con.execute("UPDATE gpkg_ogr_contents SET feature_count = ? "
                        "WHERE lower(table_name) = lower(?)", (self.count, self.table))
        if len(ids):
            con.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                        "WHERE table_name = ?",
                        (float(bounds[:, 0].min()), float(bounds[:, 1].min()),
                         float(bounds[:, 2].max()), float(bounds[:, 3].max()), self.table))
        con.execute("COMMIT")
        con.close()

    def _fill_rtree(self, ids, bounds):
        """The spatial index of the rows `ids` with boxes `bounds` (minx, miny, maxx, maxy),
        written packed into the R*Tree's tables; where SQLite refuses that, inserted row by row
        through the R*Tree module."""
        con = self.con
        columns = bounds[:, [0, 2, 1, 3]]   # the index's order: minx, maxx, miny, maxy
        con.execute("SAVEPOINT packed_rtree")
        try:
            self._write_packed(ids, columns)
        except sqlite3.Error:  # e.g. defensive mode: the index's own tables are read-only
            con.execute("ROLLBACK TO packed_rtree")
            _insert_many(con, f"INSERT INTO {_quote(self._rtree)} (id, minx, maxx, miny, maxy) "  # nosec B608
                              "VALUES ", zip(ids.tolist(), *columns.T.tolist()))
        con.execute("RELEASE packed_rtree")

    def _write_packed(self, ids, columns):
        con = self.con
        node, rowid, parent = (_quote(f"{self._rtree}_{s}") for s in _RTREE_SHADOWS)
        size = con.execute(f"SELECT length(data) FROM {node} WHERE nodeno = 1").fetchone()  # nosec B608
        if size is None:
            raise sqlite3.OperationalError("the spatial index has no root node")
        nodes, leaves, parents = packed_rtree(ids, columns, size[0])
        for table in (node, rowid, parent):   # the index's own tables; the root node only now
            con.execute(f"DELETE FROM {table}")  # nosec B608
        _insert_many(con, f"INSERT INTO {node} (nodeno, data) VALUES ", nodes)  # nosec B608
        _insert_many(con, f"INSERT INTO {rowid} (rowid, nodeno) VALUES ", leaves)  # nosec B608
        _insert_many(con, f"INSERT INTO {parent} (nodeno, parentnode) VALUES ", parents)  # nosec B608

    def abandon(self):
        """Drops what was inserted (the transaction rolled back) and closes the file."""
        with contextlib.suppress(sqlite3.Error):
            if self._begun:
                self.con.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self.con.close()


def _insert_many(con, insert, rows):
    """`rows` (tuples of one length) inserted by the statement head `insert` (... VALUES), as
    many per statement as SQLite takes parameters: one statement releases the GIL once,
    ``executemany`` once per row, and a thread building rows beside it waited for it after each."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    limit = getattr(con, "getlimit", lambda _key: 999)(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9))
    per = max(1, min(limit, 32766) // len(first))
    one = "(" + ", ".join("?" * len(first)) + ")"
    rows = itertools.chain((first,), rows)
    while True:
        chunk = list(itertools.islice(rows, per))
        if not chunk:
            return
        con.execute(insert + ", ".join([one] * len(chunk)),
                    list(itertools.chain.from_iterable(chunk)))


def packed_rtree(ids, boxes, node_size):
    """The nodes of an SQLite R*Tree (2 dimensions, 32-bit float coordinates) holding the ids
    `ids` with the boxes `boxes` (minx, maxx, miny, maxy as float64, minx <= maxx, miny <= maxy),
    packed in sort-tile-recursive order into nodes of `node_size` bytes (the length of the
    index's root node: SQLite gives every node of one index that length).

    Returns (nodes, leaves, parents) for the R*Tree's tables ``_node`` (node number, data),
    ``_rowid`` (id, leaf node number) and ``_parent`` (node number, parent's number); the root is
    node 1. SQLite's format (ext/rtree/rtree.c): a node is the tree's depth (2 bytes, in the root
    only), its number of cells (2 bytes), then the cells, each an 8-byte id (of a row in a leaf,
    of a child node above) and the box's four 4-byte floats, all big-endian; a box is rounded
    outward to 32-bit floats as SQLite rounds the values inserted into it."""
    per_node = (node_size - 4) // _CELL.itemsize
    if per_node < 2:
        raise sqlite3.OperationalError(f"a spatial index node of {node_size} bytes")
    level = np.empty(len(ids), _CELL)
    level["id"] = ids
    level["box"] = np.column_stack([_float_down(boxes[:, 0]), _float_up(boxes[:, 1]),
                                    _float_down(boxes[:, 2]), _float_up(boxes[:, 3])])
    nodes, leaves, parents = [], [], []
    depth, number = 0, 2
    while len(level) > per_node:
        level = level[_str_order(level["box"].astype(np.float64), per_node)]
        first = np.arange(0, len(level), per_node)
        numbers = np.arange(number, number + len(first))
        number += len(first)
        owner = np.repeat(numbers, np.diff(np.r_[first, len(level)]))
        (leaves if depth == 0 else parents).append(np.column_stack([level["id"], owner]))
        nodes += [(no, _node_blob(level[a:a + per_node], node_size, 0))
                  for no, a in zip(numbers.tolist(), first.tolist())]
        box = level["box"]
        up = np.empty(len(first), _CELL)
        up["id"] = numbers
        up["box"] = np.column_stack([np.minimum.reduceat(box[:, 0], first),
                                     np.maximum.reduceat(box[:, 1], first),
                                     np.minimum.reduceat(box[:, 2], first),
                                     np.maximum.reduceat(box[:, 3], first)])
        level = up
        depth += 1
    (leaves if depth == 0 else parents).append(
        np.column_stack([level["id"], np.ones(len(level), np.int64)]))
    nodes.append((1, _node_blob(level, node_size, depth)))
    return (nodes, list(map(tuple, np.concatenate(leaves).tolist())),
            list(map(tuple, np.concatenate(parents).tolist())) if parents else [])


def _str_order(box, per_node):
    """Sort-tile-recursive order of boxes (minx, maxx, miny, maxy): by the centre's x into
    vertical slices of whole nodes, each slice by the centre's y."""
    n = len(box)
    cx, cy = box[:, 0] + box[:, 1], box[:, 2] + box[:, 3]
    per_slice = per_node * int(np.ceil(np.sqrt(-(-n // per_node))))
    by_x = np.argsort(cx, kind="stable")
    slice_ = np.empty(n, np.int64)
    slice_[by_x] = np.arange(n) // per_slice
    return np.lexsort((cy, slice_))


def _node_blob(cells, node_size, depth):
    return (struct.pack(">HH", depth, len(cells)) + cells.tobytes()).ljust(node_size, b"\0")


#: SQLite's R*Tree rounding of a 64-bit float to a 32-bit one (ext/rtree/rtree.c, RNDTOWARDS
#: and RNDAWAY): a lower bound is never rounded up, an upper one never down.
_TOWARDS, _AWAY = 1.0 - 1.0 / 8388608.0, 1.0 + 1.0 / 8388608.0


def _float_down(v):
    f = v.astype(np.float32)
    over = f.astype(np.float64) > v
    f[over] = (v[over] * np.where(v[over] < 0, _AWAY, _TOWARDS)).astype(np.float32)
    return f


def _float_up(v):
    f = v.astype(np.float32)
    under = f.astype(np.float64) < v
    f[under] = (v[under] * np.where(v[under] < 0, _TOWARDS, _AWAY)).astype(np.float32)
    return f


def wkb_bounds(wkbs):
    """(n, 4) array of the bounds minx, miny, maxx, maxy of each geometry of `wkbs` (little-endian
    ISO WKB of points, lines, polygons and their multi types, with Z and/or M, or None), over all
    its vertices (as GDAL bounds a GeoPackage geometry; GEOS bounds a polygon by its exterior
    ring); NaN for None and empty geometries.

    Read with numpy from the bytes (the structure of many geometries at a time, the few with
    many rings or parts in Python): shapely's ``from_wkb`` and ``get_coordinates`` take 1 s for
    the planet's polygons, several times this. Other WKB (big-endian, collections, curves) is
    read with shapely."""
    n = len(wkbs)
    out = np.full((n, 4), np.nan)
    have = [k for k, w in enumerate(wkbs) if w is not None]
    if not have:
        return out
    sizes = np.fromiter(map(len, [wkbs[k] for k in have]), np.int64, len(have))
    buf = b"".join([wkbs[k] for k in have])
    at = np.r_[0, np.cumsum(sizes)[:-1]]
    owner = np.asarray(have, np.int64)
    # every byte offset viewed as the start of a uint32 / of a float64 (unaligned reads)
    u8 = np.frombuffer(buf, np.uint8)
    u32 = np.ndarray((max(len(buf) - 3, 0),), "<u4", buffer=buf, strides=(1,))
    kind = np.zeros(len(have), np.int64)
    ok = sizes >= 9
    ok[ok] = u8[at[ok]] == 1
    kind[ok] = u32[at[ok] + 1]
    ok &= (kind % 1000 >= 1) & (kind % 1000 <= 6) & (kind < 4000)
    others = [owner[~ok]]     # read by shapely
    slow = []                 # walked in Python: (owner, offset)
    runs = []                 # (owner, offset of the first vertex, vertices, bytes per vertex)
    multi = ok & (kind % 1000 >= 4)
    single = ok & ~multi
    _single_runs(u32, at[single], owner[single], runs, slow)
    # the parts of the multi geometries, the k-th part of each at a time
    p, who, left = at[multi] + 9, owner[multi], u32[at[multi] + 5].astype(np.int64)
    start = at[multi]
    while len(p):
        live = left > 0
        if len(p) < _FEW:
            live &= False
            slow += zip(who[left > 0].tolist(), start[left > 0].tolist())
        p, who, left, start = p[live], who[live], left[live], start[live]
        if not len(p):
            break
        good = (u8[p] == 1) & (u32[p + 1] % 1000 >= 1) & (u32[p + 1] % 1000 <= 3)
        others.append(who[~good])
        p, who, left, start = p[good], who[good], left[good], start[good]
        p, walked = _single_runs(u32, p, who, runs, slow, start)
        p, who, left, start = p[walked], who[walked], left[walked] - 1, start[walked]
    r_owner, r_at, r_count, r_step = ([np.concatenate(c)] for c in zip(*runs)) if runs else ([], [], [], [])
    if slow:
        o, a = zip(*slow)
        s_runs = []
        for w, q in slow:
            try:
                _walk(buf, q, w, s_runs)
            except (_NotLittleEndian, struct.error):
                others.append(np.array([w]))
        o = np.array(o)
        if len(r_owner):
            keep = ~np.isin(r_owner[0], o)
            r_owner, r_at, r_count, r_step = ([c[0][keep]] for c in (r_owner, r_at, r_count, r_step))
        if s_runs:
            for c, v in zip((r_owner, r_at, r_count, r_step), zip(*s_runs)):
                c.append(np.array(v, np.int64))
    others = np.unique(np.concatenate(others))
    if len(r_owner):
        r_owner, r_at, r_count, r_step = (np.concatenate(c) for c in (r_owner, r_at, r_count, r_step))
        keep = (r_count > 0) & ~np.isin(r_owner, others)
        order = np.flatnonzero(keep)[np.lexsort((r_at[keep], r_owner[keep]))]
        r_owner, r_at, r_count, r_step = (a[order] for a in (r_owner, r_at, r_count, r_step))
        _reduce_runs(buf, r_owner, r_at, r_count, r_step, out)
    if len(others):
        import shapely

        coords, idx = shapely.get_coordinates(shapely.from_wkb([wkbs[k] for k in others]),
                                              return_index=True)
        out[others] = np.nan
        if len(idx):
            seg = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
            who = others[idx[seg]]
            out[who, 0] = np.fmin.reduceat(coords[:, 0], seg)
            out[who, 1] = np.fmin.reduceat(coords[:, 1], seg)
            out[who, 2] = np.fmax.reduceat(coords[:, 0], seg)
            out[who, 3] = np.fmax.reduceat(coords[:, 1], seg)
    return out


#: Below this many geometries left in a step of the vectorised walk, the rest are walked in Python.
_FEW = 32


class _NotLittleEndian(Exception):
    pass


def _reduce_runs(buf, owner, at, count, step, out):
    """The bounds into `out` of the vertex runs (grouped by owner): each run `count` vertices of
    `step` bytes from the byte offset `at`, x then y the first two 8-byte floats of a vertex.
    NaN coordinates (an empty point's) are left out."""
    total = int(count.sum())
    if not total:
        return
    f64 = np.ndarray((max(len(buf) - 7, 0),), "<f8", buffer=buf, strides=(1,))
    first = np.r_[0, np.cumsum(count)[:-1]]
    # each vertex's offset: its run's offset plus its rank in the run times the run's step
    pos = np.repeat(at - first * step, count) + np.arange(total) * np.repeat(step, count)
    x, y = f64[pos], f64[pos + 8]
    del pos
    seg = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]  # runs of one owner are adjacent
    vertex_seg = first[seg]
    who = owner[seg]
    with np.errstate(invalid="ignore"):
        out[who, 0] = np.fmin.reduceat(x, vertex_seg)
        out[who, 1] = np.fmin.reduceat(y, vertex_seg)
        out[who, 2] = np.fmax.reduceat(x, vertex_seg)
        out[who, 3] = np.fmax.reduceat(y, vertex_seg)


def wkb_vertex_bytes(kind):
    """Bytes per vertex of ISO WKB geometry type codes (ints or a numpy array): 16, and 8 more
    each for Z and M."""
    m = kind // 1000
    return 8 * (2 + (m & 1) + (m >> 1))


def _single_runs(u32, p, owner, runs, slow, start=None):
    """Appends to `runs` the vertex runs of the point, line or polygon WKB geometries at the byte
    offsets `p` (of geometries `owner`); a polygon with many rings, where few others are left,
    goes to `slow` (owner, offset `start` of the whole geometry, p itself by default). Returns
    the offsets just after each geometry and whether it was walked here."""
    start = p if start is None else start
    kind = u32[p + 1].astype(np.int64)
    step = wkb_vertex_bytes(kind)
    base = kind % 1000
    end = np.empty(len(p), np.int64)
    walked = np.ones(len(p), bool)
    point = base == 1
    runs.append((owner[point], p[point] + 5, np.ones(int(point.sum()), np.int64), step[point]))
    end[point] = p[point] + 5 + step[point]
    line = base == 2
    count = u32[p[line] + 5].astype(np.int64)
    runs.append((owner[line], p[line] + 9, count, step[line]))
    end[line] = p[line] + 9 + count * step[line]
    poly = np.flatnonzero(base == 3)
    q, left = p[poly] + 9, u32[p[poly] + 5].astype(np.int64)
    live = np.arange(len(poly))
    while len(live):
        live = live[left[live] > 0]
        if 0 < len(live) < _FEW:
            walked[poly[live]] = False
            slow += zip(owner[poly[live]].tolist(), start[poly[live]].tolist())
            break
        count = u32[q[live]].astype(np.int64)
        runs.append((owner[poly[live]], q[live] + 4, count, step[poly[live]]))
        q[live] += 4 + count * step[poly[live]]
        left[live] -= 1
    end[poly] = q
    return end, walked


def _walk(buf, p, owner, runs):
    """Appends to `runs` the vertex runs (owner, offset, vertices, step) of the WKB geometry at
    byte offset `p` of `buf`; returns the offset after it."""
    if buf[p] != 1:
        raise _NotLittleEndian
    kind = struct.unpack_from("<I", buf, p + 1)[0]
    base, step = kind % 1000, int(wkb_vertex_bytes(kind))
    if base == 1:
        runs.append((owner, p + 5, 1, step))
        return p + 5 + step
    count = struct.unpack_from("<I", buf, p + 5)[0]
    q = p + 9
    if base == 2:
        runs.append((owner, q, count, step))
        return q + count * step
    for _ in range(count):
        if base == 3:
            n = struct.unpack_from("<I", buf, q)[0]
            runs.append((owner, q + 4, n, step))
            q += 4 + n * step
        elif 4 <= base <= 6:
            q = _walk(buf, q, owner, runs)
        else:
            raise _NotLittleEndian
    return q


_HEAD = operator.itemgetter(slice(0, 9))


def _blobs(wkbs, header, empty):
    """The geometry blobs of the list `wkbs` (little-endian ISO WKB, or None): each WKB after
    `header`, or after `empty` where it is empty (:func:`_is_empty`). The headers are read by
    numpy, and the blobs joined by one loop in C (a Python step per row was a tenth of the
    writing)."""
    n = len(wkbs)
    heads = np.frombuffer(b"".join(map(_HEAD, wkbs)), np.uint8) if n and None not in wkbs else None
    if heads is None or len(heads) != 9 * n or (heads[::9] != _LITTLE_ENDIAN).any():
        return [None if w is None else (empty if _is_empty(w) else header) + w for w in wkbs]
    heads = heads.reshape(n, 9)
    blank = heads[:, 5:9].copy().view("<u4").ravel() == 0     # no parts, rings or vertices
    point = np.flatnonzero(heads[:, 1:5].copy().view("<u4").ravel() % 1000 == 1)
    if len(point):  # a point is empty where its coordinates are NaN
        blank[point] = [_is_empty(wkbs[k]) for k in point.tolist()]
    prefixes = [header] * n
    for k in np.flatnonzero(blank).tolist():
        prefixes[k] = empty
    return list(map(operator.add, prefixes, wkbs))


def _is_empty(wkb):
    """Whether little-endian ISO WKB is an empty geometry: a point of NaN coordinates, or no
    parts, rings or vertices."""
    if struct.unpack_from("<I", wkb, 1)[0] % 1000 == 1:
        x = struct.unpack_from("<d", wkb, 5)[0]
        return x != x
    return wkb[5:9] == b"\x00\x00\x00\x00"
