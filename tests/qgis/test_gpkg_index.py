"""The spatial index, extent and feature ids the direct GeoPackage writer (algorithms/gpkg.py)
gives, against what GDAL and SQLite give for the same rows.

- ``wkb_bounds`` (boxes read from the WKB bytes) against OGR's envelope of each geometry, on every
  geometry type with Z and M, empty ones, odd rings and real polygons;
- the packed R*Tree against the index GDAL's own writer builds for the same features (the same
  rows, rounded the same way), SQLite's ``rtreecheck``, rectangle queries against brute force, and
  edits made afterwards by GDAL (which SQLite's R*Tree module applies to the packed tree);
- the row by row fallback where SQLite refuses writes to the index's tables;
- feature ids as SQLite gives them where the id field is NULL.
"""
import os
import sqlite3

import numpy as np
import pytest
import shapely
from osgeo import gdal, ogr, osr

from mine_clusters.algorithms import gpkg

from qgis_helpers import DATA

gdal.UseExceptions()
MAUS_INDIA = os.path.join(DATA, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson")
SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "resources", "sample", "mine_polygons.gpkg")


def ogr_box(wkb):
    """OGR's envelope (minx, miny, maxx, maxy) of WKB, NaN for NULL or empty."""
    if wkb is None:
        return [np.nan] * 4
    g = ogr.CreateGeometryFromWkb(wkb)
    if g.IsEmpty():
        return [np.nan] * 4
    x0, x1, y0, y1 = g.GetEnvelope()
    return [x0, y0, x1, y1]


def iso(wkt, order=ogr.wkbNDR):
    return bytes(ogr.CreateGeometryFromWkt(wkt).ExportToIsoWkb(order))


def ring(rng, cx, cy, r, n):
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in t]
    return pts + [pts[0]]


def odd_geometries(rng):
    """WKB of every kind the writer gets: points to multipolygons, Z, M, ZM, empties, holes
    outside their shell, polygons of many rings, big-endian WKB and a collection (read by
    shapely), NULL."""
    out = [None, iso("POINT EMPTY"), iso("LINESTRING EMPTY"), iso("POLYGON EMPTY"),
           iso("MULTIPOINT EMPTY"), iso("MULTIPOLYGON EMPTY"), iso("MULTIPOLYGON (EMPTY, ((0 0, 1 0, 1 1, 0 0)))"),
           iso("MULTIPOINT ((1 2), EMPTY, (-3 4))") if _multipoint_empty_ok() else iso("MULTIPOINT ((1 2), (-3 4))"),
           iso("POINT Z (1 2 3)"), iso("POINT M (1 2 3)"), iso("POINT ZM (-1 -2 3 4)"),
           iso("LINESTRING ZM (0 0 1 2, 10 -5 3 4, -7 8 5 6)"),
           iso("POLYGON M ((0 0 1, 4 0 1, 4 4 1, 0 0 1), (9 9 2, 10 9 2, 10 10 2, 9 9 2))"),
           iso("MULTILINESTRING Z ((0 0 0, 1 1 1), (-50 60 2, 170 -80 3))"),
           iso("POLYGON ((0 0, 10 0, 10 10, 0 0))", ogr.wkbXDR),
           iso("GEOMETRYCOLLECTION (POINT (5 5), LINESTRING (-1 -1, 2 3))"),
           iso("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((170 -80, 179.9 -80, 179.9 -70, 170 -80)))", ogr.wkbXDR)]
    for k in range(300):
        cx, cy = rng.uniform(-170, 170), rng.uniform(-80, 80)
        shell = ring(rng, cx, cy, rng.uniform(0.01, 5), int(rng.integers(3, 40)))
        holes = [ring(rng, cx + rng.uniform(-3, 3), cy + rng.uniform(-3, 3), rng.uniform(0.001, 1), 5)
                 for _ in range(int(rng.integers(0, 60 if k % 7 == 0 else 3)))]
        poly = shapely.Polygon(shell, holes)
        kind = k % 5
        if kind == 0:
            g = poly
        elif kind == 1:
            g = shapely.MultiPolygon([poly] + [shapely.Polygon(ring(rng, cx + i, cy - i, 0.5, 6))
                                               for i in range(int(rng.integers(1, 80)))])
        elif kind == 2:
            g = shapely.LineString(shell)
        elif kind == 3:
            g = shapely.MultiPoint(shell)
        else:
            g = shapely.Point(cx, cy)
        z = k % 3 == 0
        if z:
            g = shapely.force_3d(g, rng.uniform(-1e3, 1e3))
        out.append(shapely.to_wkb(g, flavor="iso", byte_order=1, output_dimension=3 if z else 2))
    return out


def _multipoint_empty_ok():
    try:
        ogr.CreateGeometryFromWkt("MULTIPOINT ((1 2), EMPTY)")
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("batch", [1, 7, 64, 100000])
def test_wkb_bounds_are_ogrs_envelopes(batch):
    wkbs = odd_geometries(np.random.default_rng(3))
    rng = np.random.default_rng(batch)
    wkbs = [wkbs[k] for k in rng.permutation(len(wkbs))]
    got = np.concatenate([gpkg.wkb_bounds(wkbs[k:k + batch]) for k in range(0, len(wkbs), batch)])
    expected = np.array([ogr_box(w) for w in wkbs])
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(got).all(axis=1).sum() > 250


@pytest.mark.parametrize("little_endian_only", [True, False])
def test_blobs_mark_the_empty_geometries(little_endian_only):
    """The geometry blobs of a batch (headers read by numpy) are those made one by one: the
    empty flag where OGR finds the geometry empty (a NaN point, no parts, rings or vertices),
    NULL kept; a batch with big-endian WKB or NULL is made one by one."""
    wkbs = [w for w in odd_geometries(np.random.default_rng(5))
            if w is not None and (w[0] == 1 or not little_endian_only)]
    header, empty = b"GP\x00\x01head", b"GP\x00\x11head"
    for batch in (wkbs, wkbs + [None], wkbs[:1], []):
        got = gpkg._blobs(batch, header, empty)
        assert got == [None if w is None else (empty if gpkg._is_empty(w) else header) + w
                       for w in batch]
    got = gpkg._blobs(wkbs, header, empty)
    flagged = [b.startswith(empty) for b in got]
    assert sum(flagged) == 5 and all(  # the five empties of odd_geometries without parts
        ogr.CreateGeometryFromWkb(w).IsEmpty() for w, f in zip(wkbs, flagged) if f)
    assert all(b[len(header):] == w for b, w in zip(got, wkbs))


@pytest.mark.parametrize("path", [MAUS_INDIA, SAMPLE])
def test_wkb_bounds_of_real_polygons(path):
    ds = ogr.Open(path)
    wkbs = [bytes(f.GetGeometryRef().ExportToIsoWkb()) if f.GetGeometryRef() else None
            for f in ds.GetLayer(0)]
    assert len(wkbs) > 100
    got = np.concatenate([gpkg.wkb_bounds(wkbs[k:k + 1000]) for k in range(0, len(wkbs), 1000)])
    np.testing.assert_array_equal(got, np.array([ogr_box(w) for w in wkbs]))


# ---- the packed index ----------------------------------------------------------------------

def new_gpkg(path, geometry_type=ogr.wkbMultiPolygon, fields=("name",)):
    """An empty GeoPackage layer 't' made by GDAL, with its spatial index (as QGIS makes one)."""
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    layer = ds.CreateLayer("t", srs, geometry_type)
    for name in fields:
        layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    ds = None


def gdal_written(path, names, wkbs):
    """The same rows written by GDAL's own writer (one transaction)."""
    new_gpkg(path)
    ds = ogr.Open(str(path), 1)
    layer = ds.GetLayer(0)
    layer.StartTransaction()
    for name, wkb in zip(names, wkbs):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("name", name)
        if wkb is not None:
            f.SetGeometry(ogr.CreateGeometryFromWkb(wkb))
        layer.CreateFeature(f)
    layer.CommitTransaction()
    ds = None


def direct_written(path, names, wkbs, batch=2000, boxes=None):
    """The rows written by gpkg.Table; with `boxes` (one per row) every other batch gives the
    writer its boxes."""
    new_gpkg(path)
    table = gpkg.Table(str(path), ["name"])
    for k in range(0, len(names), batch):
        given = boxes[k:k + batch] if boxes is not None and k // batch % 2 == 0 else None
        table.add([names[k:k + batch]], wkbs[k:k + batch], given)
    table.finish()


def index_rows(path):
    con = sqlite3.connect(str(path))
    try:
        assert con.execute("SELECT rtreecheck('rtree_t_geom')").fetchone()[0] == "ok"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT * FROM rtree_t_geom ORDER BY id").fetchall()
    finally:
        con.close()


def random_boxes(rng, n):
    """Multipolygon boxes over the whole globe: tiny, large, repeated (ties), degenerate to
    a segment, at ±180°, NULL and empty geometries among them."""
    x = rng.uniform(-180, 180, n)
    y = rng.uniform(-90, 90, n)
    w = rng.exponential(0.5, n) * rng.choice([1e-6, 1, 30], n)
    x[::97], y[::97] = x[0], y[0]        # the same box again
    w[::89] = 0.0                        # a box of no width
    x[::53] = 180.0 - w[::53]            # touching the antimeridian
    wkbs = [bytes(ogr.CreateGeometryFromWkt(
        f"MULTIPOLYGON ((({a} {b}, {min(a + c, 180)} {b}, {min(a + c, 180)} {min(b + c, 90)}, "
        f"{a} {b})))").ExportToIsoWkb()) for a, b, c in zip(x, y, w)]
    for k in range(11, n, 211):
        wkbs[k] = None
    for k in range(13, n, 307):
        wkbs[k] = iso("MULTIPOLYGON EMPTY")
    return wkbs


@pytest.mark.parametrize("n", [1, 51, 52, 2601, 2602, 20000])
def test_packed_index_is_the_index_gdal_builds(tmp_path, n):
    """Sizes around the node capacity (51 cells: one node, two levels, three levels)."""
    rng = np.random.default_rng(n)
    wkbs = random_boxes(rng, n)
    names = [f"n{k}" for k in range(n)]
    direct_written(tmp_path / "direct.gpkg", names, wkbs)
    gdal_written(tmp_path / "gdal.gpkg", names, wkbs)
    ours = index_rows(tmp_path / "direct.gpkg")
    assert ours == index_rows(tmp_path / "gdal.gpkg")
    # boxes the caller gives (here OGR's) in some batches: the same index
    direct_written(tmp_path / "given.gpkg", names, wkbs, batch=max(1, n // 5),
                   boxes=np.array([ogr_box(w) for w in wkbs]))
    assert index_rows(tmp_path / "given.gpkg") == ours
    assert len(ours) == sum(1 for w in wkbs if w is not None and np.isfinite(ogr_box(w)).all())
    con = sqlite3.connect(str(tmp_path / "direct.gpkg"))
    depth = int.from_bytes(con.execute("SELECT data FROM rtree_t_geom_node WHERE nodeno = 1")
                           .fetchone()[0][:2], "big")
    assert depth == (0 if len(ours) <= 51 else 1 if len(ours) <= 51 ** 2 else 2)
    extent = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents").fetchone()
    con.close()
    boxes = np.array([ogr_box(w) for w in wkbs])
    assert extent == (np.nanmin(boxes[:, 0]), np.nanmin(boxes[:, 1]),
                      np.nanmax(boxes[:, 2]), np.nanmax(boxes[:, 3]))
    # rectangle queries through the index against every row's box
    con = sqlite3.connect(str(tmp_path / "direct.gpkg"))
    for _ in range(100):
        x0, y0 = rng.uniform(-190, 180), rng.uniform(-95, 90)
        x1, y1 = x0 + rng.exponential(20), y0 + rng.exponential(10)
        got = {r[0] for r in con.execute("SELECT id FROM rtree_t_geom WHERE minx <= ? AND "
                                         "maxx >= ? AND miny <= ? AND maxy >= ?", (x1, x0, y1, y0))}
        want = {k + 1 for k, b in enumerate(boxes)
                if np.isfinite(b).all() and b[0] <= x1 and b[2] >= x0 and b[1] <= y1 and b[3] >= y0}
        assert got == want
    con.close()


def test_gdal_edits_after_the_packed_index(tmp_path):
    """Deletions, insertions and updates through GDAL (SQLite's R*Tree module rewrites the
    packed nodes: splits, reinsertion, condensing) keep the index whole and right."""
    rng = np.random.default_rng(5)
    wkbs = random_boxes(rng, 6000)
    path = tmp_path / "direct.gpkg"
    direct_written(path, [f"n{k}" for k in range(len(wkbs))], wkbs)
    ds = ogr.Open(str(path), 1)
    layer = ds.GetLayer(0)
    for fid in range(2, 5000, 2):
        layer.DeleteFeature(fid)
    for k in range(3000):
        f = ogr.Feature(layer.GetLayerDefn())
        a, b = rng.uniform(-180, 179), rng.uniform(-90, 89)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"MULTIPOLYGON ((({a} {b}, {a + 1} {b}, {a + 1} {b + 1}, {a} {b})))"))
        layer.CreateFeature(f)
    f = layer.GetFeature(3)
    f.SetGeometry(ogr.CreateGeometryFromWkt("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))"))
    layer.SetFeature(f)
    ds = None
    rows = index_rows(path)
    ds = ogr.Open(str(path))
    expected = []
    for f in ds.GetLayer(0):
        g = f.GetGeometryRef()
        if g is not None and not g.IsEmpty():
            expected.append(f.GetFID())
    assert [r[0] for r in rows] == sorted(expected)
    layer = ds.GetLayer(0)
    layer.SetSpatialFilterRect(0, 0, 0.5, 0.5)
    assert 3 in {f.GetFID() for f in layer}


def test_row_by_row_where_the_index_tables_are_refused(tmp_path, monkeypatch):
    def refused(self, ids, columns):
        raise sqlite3.OperationalError("table rtree_t_geom_node may not be modified")

    rng = np.random.default_rng(7)
    wkbs = random_boxes(rng, 3000)
    names = [f"n{k}" for k in range(len(wkbs))]
    monkeypatch.setattr(gpkg.Table, "_write_packed", refused)
    direct_written(tmp_path / "direct.gpkg", names, wkbs)
    gdal_written(tmp_path / "gdal.gpkg", names, wkbs)
    assert index_rows(tmp_path / "direct.gpkg") == index_rows(tmp_path / "gdal.gpkg")


def test_ids_where_the_id_field_is_null_are_sqlites(tmp_path):
    """An output with a field named like the primary key gives the ids; where it is NULL the
    row gets the id SQLite gives (here: from a twin table filled by SQLite itself)."""
    path = tmp_path / "direct.gpkg"
    new_gpkg(path)
    given = [5, None, 3, None, 9.0, None, True]
    wkbs = [iso(f"MULTIPOLYGON ((({k} 0, {k + 1} 0, {k + 1} 1, {k} 0)))") for k in range(len(given))]
    table = gpkg.Table(str(path), ["fid", "name"])
    table.add([given, [f"n{k}" for k in range(len(given))]], wkbs)
    table.finish()
    twin = sqlite3.connect(":memory:")
    twin.execute("CREATE TABLE t (fid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
    for k, v in enumerate(given):
        twin.execute("INSERT INTO t VALUES (?, ?)", (v, f"n{k}"))
    expected = twin.execute("SELECT fid, name FROM t ORDER BY fid").fetchall()
    con = sqlite3.connect(str(path))
    assert con.execute("SELECT fid, name FROM t ORDER BY fid").fetchall() == expected
    index = dict((r[0], r[1:]) for r in con.execute("SELECT id, minx FROM rtree_t_geom"))
    con.close()
    # each row's box is its own geometry's (minx k of row k)
    assert {fid: int(index[fid][0]) for fid, _ in expected} == \
        {fid: int(name[1:]) for fid, name in expected}


def test_an_id_field_that_is_not_a_whole_number_is_refused(tmp_path):
    path = tmp_path / "direct.gpkg"
    new_gpkg(path)
    table = gpkg.Table(str(path), ["fid", "name"])
    with pytest.raises(ValueError, match="'fid' is not a whole number"):
        table.add([[2.5], ["a"]], [iso("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))")])
    table.abandon()
