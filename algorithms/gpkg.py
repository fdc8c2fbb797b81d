"""Rows written straight into a GeoPackage table that QGIS's own writer created empty.

A feature sink costs per-feature Python (a QgsFeature, its attributes converted to QVariants, its
geometry) and then GDAL's per-feature work; for the cluster outputs (370,000 features at planet
scale) that was twice what GDAL alone needs. Here the table, its fields, CRS and metadata tables
are made by QGIS (the output is the same file a sink makes), and only the rows go in through
Python's sqlite3 module, many per INSERT statement, each geometry as a GeoPackage blob (the
header of the GeoPackage 1.2 standard, §2.1.3, without the optional envelope, then the WKB QGIS
gives), with the feature count set once, in one transaction. GDAL then builds the spatial index
(its ``DisableSpatialIndex`` before the rows, ``CreateSpatialIndex`` after: the R*Tree, its
triggers and extension row exactly as its own writer makes them) and gives the exact extent.

OGR's own bulk path (``OGR_L_WriteArrowBatch``) needs GDAL 3.8 and pyarrow, which QGIS 3.22's
Debian, Windows and macOS packages do not all have: hence sqlite3, which every Python has.
:class:`Table` refuses (:class:`Unusable`) a table it cannot write exactly, and the caller then
keeps QGIS's sink. Nothing here imports QGIS.
"""
import contextlib
import functools
import itertools
import sqlite3
import struct

#: GeoPackage blob header: magic, version 0, flags (byte order; empty geometry), srs_id.
_MAGIC = b"GP\x00"
_LITTLE_ENDIAN = 1
_EMPTY = 1 << 4


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
    table whose columns are the fields (nothing is changed then)."""

    def __init__(self, path, field_names):
        self.path = path
        try:
            self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise Unusable(str(exc)) from None
        try:
            self._inspect([str(n) for n in field_names])
        except (sqlite3.Error, RuntimeError, Unusable) as exc:  # RuntimeError: GDAL's
            self.con.close()
            raise Unusable(str(exc)) from None
        self.count = 0
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
        rtree = f"rtree_{self.table}_{self.geometry_column}"
        self._had_rtree = bool(con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (rtree,)).fetchone())
        if self._had_rtree:
            # GDAL builds the spatial index again in one pass once the rows are in (finish)
            self._gdal_sql(f"SELECT DisableSpatialIndex('{_literal(self.table)}', "
                           f"'{_literal(self.geometry_column)}')")
        # the feature count's triggers are set aside while the rows go in (one update instead)
        self._triggers = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (self.table,)).fetchall()
        order = [self.pk] if self.pk_at is not None else []
        order += [self.geometry_column] + plain
        self._columns = len(order)
        self._insert = f"INSERT INTO {_quote(self.table)} ({', '.join(map(_quote, order))}) VALUES "  # nosec B608
        # rows per statement: as many as SQLite takes parameters (one statement releases the
        # GIL once, executemany once per row: a thread building rows beside it waited for it)
        limit = getattr(con, "getlimit", lambda _key: 999)(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9))
        self._per_statement = max(1, min(limit, 32766) // len(order))

    def _begin(self):
        con = self.con
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN IMMEDIATE")
        for name, _sql in self._triggers:
            con.execute(f"DROP TRIGGER {_quote(name)}")
        self._begun = True

    def add(self, rows, wkbs):
        """Inserts `rows` (value sequences in the field order; str, int, float, bool or None)
        with the geometries `wkbs` (little-endian ISO WKB in the table's CRS, or None)."""
        if not self._begun:
            self._begin()
        if not rows:
            return
        header = _MAGIC + bytes((_LITTLE_ENDIAN,)) + struct.pack("<i", self.srs_id)
        empty = _MAGIC + bytes((_LITTLE_ENDIAN | _EMPTY,)) + struct.pack("<i", self.srs_id)
        blobs = (None if w is None else (empty if _is_empty(w) else header) + w for w in wkbs)
        if self.pk_at is None:
            values = [(b, *r) for b, r in zip(blobs, rows)]
        else:
            k = self.pk_at
            values = [(r[k], b, *r[:k], *r[k + 1:]) for b, r in zip(blobs, rows)]
        one = "(" + ", ".join("?" * self._columns) + ")"
        per = self._per_statement
        for start in range(0, len(values), per):
            chunk = values[start:start + per]
            self.con.execute(self._insert + ", ".join([one] * len(chunk)),
                             list(itertools.chain.from_iterable(chunk)))
        self.count += len(values)

    def finish(self):
        """The rows committed with their count and the triggers restored; then the spatial
        index (R*Tree) built and the extent set by GDAL, as its own writer does."""
        if not self._begun:
            self._begin()
        con = self.con
        for _name, sql in self._triggers:
            con.execute(sql)
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone():
            con.execute("UPDATE gpkg_ogr_contents SET feature_count = ? "
                        "WHERE lower(table_name) = lower(?)", (self.count, self.table))
        con.execute("COMMIT")
        con.close()
        geom, table = _quote(self.geometry_column), _quote(self.table)
        statements = []
        if self._had_rtree:
            statements.append(f"SELECT CreateSpatialIndex('{_literal(self.table)}', "
                              f"'{_literal(self.geometry_column)}')")
            # the exact extent from the few features the index (float32, rounded outward) puts
            # at each edge: an exact bound is at an extreme index bound, so only they are read
            rtree = _quote(f"rtree_{self.table}_{self.geometry_column}")
            edge = ("(SELECT {fn}(ST_{st}({geom})) FROM {table} WHERE {pk} IN (SELECT id FROM "
                    "{rtree} WHERE {col} = (SELECT {fn}({col}) FROM {rtree})))")
            extent = "SELECT " + ", ".join(  # nosec B608 (quoted identifiers)
                edge.format(fn=fn, st=st, col=col, geom=geom, table=table, rtree=rtree,
                            pk=_quote(self.pk))
                for fn, st, col in (("MIN", "MinX", "minx"), ("MIN", "MinY", "miny"),
                                    ("MAX", "MaxX", "maxx"), ("MAX", "MaxY", "maxy")))
        else:
            extent = (f"SELECT MIN(ST_MinX({geom})), MIN(ST_MinY({geom})), "  # nosec B608
                      f"MAX(ST_MaxX({geom})), MAX(ST_MaxY({geom})) FROM {table}")
        box = self._gdal_sql(*statements, extent)
        if box and None not in box:
            con = sqlite3.connect(self.path, isolation_level=None)
            try:
                con.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                            "WHERE table_name = ?", (*map(float, box), self.table))
            finally:
                con.close()

    def _gdal_sql(self, *statements):
        """Runs `statements` through GDAL (its GeoPackage SQL functions) on the file, closed
        meanwhile by this connection; the first row of the last one's result (or None)."""
        from osgeo import gdal

        ds = gdal.OpenEx(self.path, gdal.OF_VECTOR | gdal.OF_UPDATE)
        if ds is None:
            raise sqlite3.OperationalError(gdal.GetLastErrorMsg() or "GDAL could not open it")
        row = None
        try:
            for statement in statements:
                result = ds.ExecuteSQL(statement)
                if result is not None:
                    f = result.GetNextFeature()
                    row = [f.GetField(i) for i in range(f.GetFieldCount())] if f else None
                    ds.ReleaseResultSet(result)
        finally:
            ds = None
        return row

    def abandon(self):
        """Drops what was inserted (the transaction rolled back) and closes the file."""
        with contextlib.suppress(sqlite3.Error):
            if self._begun:
                self.con.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self.con.close()


def _literal(text):
    """`text` inside an SQL string literal."""
    return text.replace("'", "''")


def _is_empty(wkb):
    """Whether little-endian ISO WKB is an empty geometry: a point of NaN coordinates, or no
    parts, rings or vertices."""
    if struct.unpack_from("<I", wkb, 1)[0] % 1000 == 1:
        x = struct.unpack_from("<d", wkb, 5)[0]
        return x != x
    return wkb[5:9] == b"\x00\x00\x00\x00"
