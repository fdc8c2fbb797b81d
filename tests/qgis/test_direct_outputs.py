"""GeoPackage outputs written directly (algorithms/gpkg.py) and layers read in bulk
(algorithms/bulk.py): the same rows as QGIS's own sinks and feature iterator write and read, on
real data, and GeoPackages that GDAL, SQLite and QGIS take as whole (spatial index, count, extent,
triggers).

Which path wrote a file is told by the geometry blobs: GDAL's writer gives polygons an envelope
(flags 0x03), the direct writer none (0x01, as the GeoPackage standard allows).
"""
import importlib.util
import os
import sqlite3

import pytest

from qgis.core import (
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis_helpers import DATA, LogFeedback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAUS_INDIA = os.path.join(DATA, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson")


def _output_hash():
    spec = importlib.util.spec_from_file_location(
        "output_hash", os.path.join(ROOT, "scripts", "output_hash.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HASH = _output_hash()
BULK = {}


def run(params):
    from qgis import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = LogFeedback()
    return processing.run("mineclusters:clusterlocaloptimum", params, context=context,
                          feedback=feedback), feedback


def cluster_both_ways(src_polygons, src_points, d, monkeypatch, extra=None):
    """The cluster algorithm run twice on the inputs: through QGIS sinks (the environment
    switch) and directly; the two output folders. ``BULK`` counts the batches read in bulk in
    the direct run, by layer."""
    from mine_clusters.algorithms import bulk

    batches = bulk.batches

    def counted(loc, fields, *args, **kwargs):
        for batch in batches(loc, fields, *args, **kwargs):
            BULK[os.path.basename(loc.path), len(fields)] = \
                BULK.get((os.path.basename(loc.path), len(fields)), 0) + 1
            yield batch

    monkeypatch.setattr(bulk, "batches", counted)
    BULK.clear()
    out = {}
    for way in ("sinks", "direct"):
        folder = d / way
        folder.mkdir()
        if way == "sinks":
            monkeypatch.setenv("MINE_CLUSTERS_QGIS_SINKS", "1")
        else:
            monkeypatch.delenv("MINE_CLUSTERS_QGIS_SINKS", raising=False)
        run({"POLYGONS": str(src_polygons), "POINTS": str(src_points),
             "OUTPUT_POLYGONS": str(folder / "polygons.gpkg"),
             "OUTPUT_POINTS": str(folder / "points.gpkg"),
             "OUTPUT_CLUSTERS": str(folder / "clusters.gpkg"),
             "OUTPUT_LINKS": str(folder / "links.gpkg"),
             "OUTPUT_SENSITIVITY": str(folder / "sensitivity.csv"),
             "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": "", **(extra or {})})
        out[way] = folder
    return out["sinks"], out["direct"]


def blob_flags(path):
    con = sqlite3.connect(path)
    try:
        table = con.execute("SELECT table_name FROM gpkg_contents "
                            "WHERE data_type = 'features'").fetchone()[0]
        return {r[0] for r in con.execute(
            f'SELECT DISTINCT substr(geom, 4, 1) FROM "{table}" WHERE geom IS NOT NULL')}
    finally:
        con.close()


def assert_same_rows(sinks, direct):
    a, b = HASH.hashes(str(sinks)), HASH.hashes(str(direct))
    assert set(a) == set(b) and len(a) >= 5
    for name in a:
        assert a[name] == b[name], name
        assert a[name][0] > 0, name


def assert_whole(path):
    """A GeoPackage as GDAL, SQLite and QGIS take it: integrity, the R*Tree of every non-empty
    geometry (checked by SQLite's rtreecheck, and a rectangle query against each geometry's own
    box), the feature count, the exact extent, the triggers of GDAL's writer."""
    from osgeo import ogr

    con = sqlite3.connect(path)
    try:
        table, column = con.execute("SELECT table_name, column_name FROM "
                                    "gpkg_geometry_columns").fetchone()
        rtree = f"rtree_{table}_{column}"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute(f"SELECT rtreecheck('{rtree}')").fetchone()[0] == "ok"
        n = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        assert con.execute(f'SELECT count(*) FROM "{rtree}"').fetchone()[0] == n
        assert con.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = ?",
                           (table,)).fetchone()[0] == n
        triggers = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))}
        assert f"{rtree}_insert" in triggers and f"{rtree}_delete" in triggers
        assert f"trigger_insert_feature_count_{table}" in triggers
        assert con.execute("SELECT count(*) FROM gpkg_extensions WHERE table_name = ? AND "
                           "extension_name = 'gpkg_rtree_index'", (table,)).fetchone()[0] == 1
        extent = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                             "WHERE table_name = ?", (table,)).fetchone()
    finally:
        con.close()
    ds = ogr.Open(str(path))
    boxes = [f.GetGeometryRef().GetEnvelope() for f in ds.GetLayer(0)]
    assert extent == (min(b[0] for b in boxes), min(b[2] for b in boxes),
                      max(b[1] for b in boxes), max(b[3] for b in boxes))
    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid() and layer.featureCount() == n
    # a rectangle query through the index finds exactly the features whose box meets it
    x0, y0, x1, y1 = extent
    rect = QgsRectangle(x0 + 0.3 * (x1 - x0), y0 + 0.3 * (y1 - y0),
                        x0 + 0.6 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    found = {f.id() for f in layer.getFeatures(QgsFeatureRequest().setFilterRect(rect))}
    expected = {f.id() for f in layer.getFeatures()
                if f.geometry().boundingBox().intersects(rect)}
    assert found == expected and found


# ---- the cluster outputs -------------------------------------------------------------------

def test_sample_outputs_are_the_rows_qgis_writes(provider, sample_polygons, sample_points,
                                                 tmp_path, monkeypatch):
    sinks, direct = cluster_both_ways(sample_polygons, sample_points, tmp_path, monkeypatch)
    assert_same_rows(sinks, direct)
    # both layers read in bulk for the core (their few fields) and again, whole, for the outputs
    # (in the direct run only: the QGIS sinks' run reads them through QGIS)
    assert {k[0] for k in BULK} == {"mine_polygons.gpkg", "mine_points.gpkg"} and len(BULK) == 4
    for name in ("polygons", "clusters", "links"):
        assert blob_flags(sinks / f"{name}.gpkg") == {bytes([3])}
        assert blob_flags(direct / f"{name}.gpkg") == {bytes([1])}, name
    assert blob_flags(direct / "points.gpkg") == {bytes([1])}
    for name in ("polygons", "points", "clusters", "links"):
        assert_whole(direct / f"{name}.gpkg")


@pytest.fixture(scope="module")
def odd_inputs(provider, sample_points, tmp_path_factory):
    """Real polygons (Maus et al., India) in a GeoPackage with Z values and fields of every plain
    type (text with NULLs and non-ASCII letters, 64-bit integers, booleans, reals with NULLs) and
    the real sample points as multipoints of two, with a field named like the writer's own."""
    from osgeo import gdal, ogr

    if not os.path.exists(MAUS_INDIA):
        pytest.skip("the shared real data (Maus India) are not here")
    gdal.UseExceptions()
    d = tmp_path_factory.mktemp("odd")
    polygons, points = str(d / "polygons.gpkg"), str(d / "points.gpkg")
    gdal.VectorTranslate(polygons, MAUS_INDIA, options="-f GPKG -nln mines -dim XYZ")
    ds = ogr.Open(polygons, update=1)
    for sql in ("ALTER TABLE mines ADD COLUMN big INTEGER",
                "ALTER TABLE mines ADD COLUMN flag BOOLEAN",
                "ALTER TABLE mines ADD COLUMN label TEXT",
                "ALTER TABLE mines ADD COLUMN share REAL",
                "UPDATE mines SET big = fid * 4294967296, flag = fid % 2, "
                "label = CASE WHEN fid % 3 = 0 THEN NULL ELSE 'Jhārkhand – ' || fid END, "
                "share = CASE WHEN fid % 5 = 0 THEN NULL ELSE fid / 7.0 END"):
        ds.ExecuteSQL(sql)
    ds = None
    src = ogr.Open(sample_points)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(points)
    layer = ds.CreateLayer("sites", src.GetLayer(0).GetSpatialRef(), ogr.wkbMultiPoint)
    for name, kind in (("primary_commodity", ogr.OFTString), ("commodities", ogr.OFTString),
                       ("status", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    features = list(src.GetLayer(0))
    for a, b in zip(features[0::2], features[1::2]):
        f = ogr.Feature(layer.GetLayerDefn())
        multi = ogr.Geometry(ogr.wkbMultiPoint)
        multi.AddGeometry(a.GetGeometryRef())
        multi.AddGeometry(b.GetGeometryRef())
        f.SetGeometry(multi)
        f.SetField("primary_commodity", a.GetField("primary_commodity"))
        f.SetField("commodities", b.GetField("commodities"))
        f.SetField("status", "operating")
        layer.CreateFeature(f)
    ds = None
    return polygons, points


def test_odd_fields_z_and_multipoints_give_the_rows_qgis_writes(odd_inputs, tmp_path,
                                                                monkeypatch):
    polygons, points = odd_inputs
    sinks, direct = cluster_both_ways(polygons, points, tmp_path, monkeypatch)
    assert_same_rows(sinks, direct)
    assert blob_flags(direct / "polygons.gpkg") == {bytes([1])}
    layer = QgsVectorLayer(str(direct / "polygons.gpkg"), "p", "ogr")
    assert layer.wkbType() == 1006  # MultiPolygonZ, as the input
    names = layer.fields().names()
    assert {"big", "flag", "label", "share"} <= set(names)
    values = {f["fid"]: (f["big"], f["flag"], f["label"]) for f in layer.getFeatures()}
    fid = next(k for k in values if k % 3 == 1)
    assert values[fid] == (fid * 4294967296, True, f"Jhārkhand – {fid}")
    for name in ("polygons", "points", "clusters", "links"):
        assert_whole(direct / f"{name}.gpkg")


def test_a_field_of_another_type_goes_through_the_qgis_sink(provider, sample_polygons,
                                                            sample_points, tmp_path,
                                                            monkeypatch):
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    polygons = str(tmp_path / "dated.gpkg")
    gdal.VectorTranslate(polygons, sample_polygons, options="-f GPKG")
    ds = ogr.Open(polygons, update=1)
    table = ds.GetLayer(0).GetName()
    ds.ExecuteSQL(f'ALTER TABLE "{table}" ADD COLUMN surveyed DATE')
    ds.ExecuteSQL(f"UPDATE \"{table}\" SET surveyed = '2019-0' || (1 + fid % 9) || '-15'")
    ds = None
    sinks, direct = cluster_both_ways(polygons, sample_points, tmp_path, monkeypatch)
    assert_same_rows(sinks, direct)
    assert blob_flags(direct / "polygons.gpkg") == {bytes([3])}   # a date: QGIS writes it
    assert blob_flags(direct / "clusters.gpkg") == {bytes([1])}   # the others directly


def test_a_cancelled_direct_output_is_deleted(provider, sample_polygons, sample_points,
                                              tmp_path):
    from qgis import processing

    feedback = LogFeedback()
    seen = []

    def cancel_while_writing(progress):
        seen.append(progress)
        if 52 < progress < 60:  # the polygons being written (step 3 of 4: 50 to 75 %)
            feedback.cancel()

    feedback.progressChanged.connect(cancel_while_writing)
    out = tmp_path / "polygons.gpkg"
    res = processing.run("mineclusters:clusterlocaloptimum", {
        "POLYGONS": sample_polygons, "POINTS": sample_points, "OUTPUT_POLYGONS": str(out),
        "OUTPUT_POINTS": str(tmp_path / "points.gpkg"), "OUTPUT_PLOT": "",
        "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": ""}, feedback=feedback)
    assert feedback.isCanceled() and any(52 < p < 60 for p in seen)
    assert res == {}
    assert not out.exists() and not (tmp_path / "points.gpkg").exists()
    assert any("Cancelled while writing" in line for line in feedback.infos)


# ---- reading in bulk -----------------------------------------------------------------------

def _read(src_path, geometry, fields, bulk_location, context):
    from mine_clusters.algorithms import layer_io

    layer = QgsVectorLayer(str(src_path), "in", "ogr")
    return layer_io.read(layer, context, QgsProcessingFeedback(), "polygons", "in", geometry,
                         fields, bulk=bulk_location)


@pytest.mark.parametrize("which", ["sample", "odd"])
def test_bulk_read_gives_what_the_qgis_read_gives(provider, sample_polygons, sample_points,
                                                  odd_inputs, which):
    import shapely

    from mine_clusters.algorithms import bulk, layer_io

    context = QgsProcessingContext()
    cases = ([(sample_polygons, layer_io.POLYGON, []),
              (sample_points, layer_io.POINT, ["primary_commodity", "commodities"])]
             if which == "sample" else
             [(odd_inputs[1], layer_io.POINT, ["primary_commodity", "status"])])
    for path, geometry, fields in cases:
        layer = QgsVectorLayer(str(path), "in", "ogr")
        loc = bulk.Location(str(path), layer.dataProvider().subLayers()[0].split(
            layer.dataProvider().sublayerSeparator())[1])
        a = _read(path, geometry, fields, None, context)
        b = layer_io._read_bulk(loc, QgsVectorLayer(str(path), "in", "ogr"),
                                QgsProcessingFeedback(), geometry, fields, None, lambda p: None)
        assert a.ids == b.ids and a.values == b.values and len(a.ids) > 100
        assert [g is None for g in a.geoms] == [g is None for g in b.geoms]
        assert all(shapely.to_wkb(x) == shapely.to_wkb(y)
                   for x, y in zip(a.geoms, b.geoms) if x is not None)


def test_bulk_is_not_taken_where_it_would_read_otherwise(provider, sample_polygons, tmp_path):
    from osgeo import gdal

    from mine_clusters.algorithms import bulk

    from qgis.core import QgsApplication

    cluster = QgsApplication.processingRegistry().algorithmById("mineclusters:clusterlocaloptimum")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())

    def where(value):
        return bulk.location(cluster, {"POLYGONS": value}, "POLYGONS", context)

    copy = str(tmp_path / "polygons.gpkg")  # edited below: never the sample itself
    gdal.VectorTranslate(copy, sample_polygons)
    sample_polygons = copy
    assert where(sample_polygons) is not None
    subset = QgsVectorLayer(sample_polygons, "subset", "ogr")
    subset.setSubsetString("fid < 10")
    QgsProject.instance().addMapLayer(subset)
    assert where(subset.id()) is None
    full = QgsVectorLayer(sample_polygons, "full", "ogr")
    QgsProject.instance().addMapLayer(full)
    full.selectByIds([1, 2])
    assert where(full.id()) is not None
    assert where(QgsProcessingFeatureSourceDefinition(full.id(), True)) is None
    full.startEditing()
    full.deleteFeature(3)
    assert where(full.id()) is None
    full.rollBack()
    shp = str(tmp_path / "polygons.shp")
    gdal.VectorTranslate(shp, copy)
    assert where(shp) is None
    QgsProject.instance().removeMapLayers([subset.id(), full.id()])


def test_an_output_onto_its_input_file_is_refused(provider, sample_polygons, sample_points,
                                                  tmp_path):
    """Writing an output over an input's file would delete the input while it is read: one
    sentence naming both, and the input left as it was."""
    import shutil

    from qgis.core import QgsProcessingException

    polygons = tmp_path / "polygons.gpkg"
    shutil.copy(sample_polygons, polygons)
    before = polygons.read_bytes()
    with pytest.raises(QgsProcessingException,
                       match=r"^The output 'Clustered polygons' would be written to .*polygons"
                             r"\.gpkg, the file of the input 'Mining land-use polygons'"):
        run({"POLYGONS": str(polygons), "POINTS": sample_points,
             "OUTPUT_POLYGONS": str(polygons), "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": "",
             "OUTPUT_REPORT": ""})
    assert polygons.read_bytes() == before


@pytest.mark.parametrize("wkt", [
    "MultiPoint ((84.1 21.5), (84.2 21.6), (84.3 21.7))",
    "MultiPoint Z ((84.1 21.5 300), (84.2 21.6 310))",
    "MultiPoint M ((84.1 21.5 1), (84.2 21.6 2))",
    "MultiPoint ZM ((84.1 21.5 300 1), (84.2 21.6 310 2))",
    "Point (84.1 21.5)", "Point Z (84.1 21.5 300)"])
def test_the_parts_of_a_multipoint_are_the_bytes_qgis_gives(provider, wkt):
    from qgis.core import QgsGeometry

    from mine_clusters.algorithms.layer_io import part_wkb

    g = QgsGeometry.fromWkt(wkt)
    parts = g.asGeometryCollection() if g.isMultipart() else [g]
    wkb = bytes(g.asWkb())
    assert [part_wkb(wkb, i) for i in range(len(parts))] == [bytes(p.asWkb()) for p in parts]


@pytest.mark.parametrize("wkt", [
    "Polygon ((84 21, 85 21, 85 22, 84 21))", "Polygon Z ((84 21 1, 85 21 2, 85 22 3, 84 21 1))",
    "MultiPolygon (((84 21, 85 21, 85 22, 84 21)))", "LineString (84 21, 85 22)",
    "LineString Z (84 21 5, 85 22 6)", "Point (84 21)", "MultiLineString ((84 21, 85 22))"])
def test_output_geometry_as_multi_is_what_qgis_makes(provider, wkt):
    from qgis.core import QgsGeometry

    from mine_clusters.algorithms.layer_io import output_geometry

    g = QgsGeometry.fromWkt(wkt)
    made = output_geometry(bytes(g.asWkb()), multi=True)
    g.convertToMultiType()
    assert (made if isinstance(made, bytes) else bytes(made.asWkb())) == bytes(g.asWkb())
    assert output_geometry(bytes(g.asWkb())) == bytes(g.asWkb())


def test_output_geometries_are_output_geometry_of_each(provider):
    """The list's path (headers read at once) gives what a call per geometry gives, the list
    itself where every one is written as it is, on lists of multi types, of single types, of
    a mix, with a NULL, with big-endian WKB and with a transform."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsGeometry,
                           QgsProject)

    import shapely

    from mine_clusters.algorithms.layer_io import output_geometries, output_geometry

    def wkb(wkt):
        return bytes(QgsGeometry.fromWkt(wkt).asWkb())

    multi = [wkb("MultiPolygon (((84 21, 85 21, 85 22, 84 21)))"),
             wkb("MultiPolygon Z (((84 21 1, 85 21 2, 85 22 3, 84 21 1)))")]
    single = [wkb("Polygon ((84 21, 85 21, 85 22, 84 21))"), wkb("Point (84 21)")]
    # big-endian: not what the core writes, so a call per geometry
    big = shapely.to_wkb(shapely.from_wkt("MULTIPOLYGON (((84 21, 85 21, 85 22, 84 21)))"),
                         byte_order=0)
    to_3857 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())

    def as_bytes(g):
        return g if g is None or isinstance(g, bytes) else bytes(g.asWkb())

    assert output_geometries(multi, multi=True) is multi
    assert output_geometries(single) is single and output_geometries(multi) is multi
    for wkbs in (single, multi + single, multi + [None], [None], [], multi + [big]):
        for kind in (True, False):
            for transform in (None, to_3857):
                made = output_geometries(wkbs, multi=kind, transform=transform)
                assert [as_bytes(g) for g in made] == [
                    as_bytes(output_geometry(w, multi=kind, transform=transform)) for w in wkbs]


def test_temporary_layers_beside_leave_a_file_output_direct(provider, sample_polygons,
                                                            sample_points, tmp_path):
    """In the dialog the other outputs are temporary (memory) layers by default: they share no
    file, so the GeoPackage asked for is still written directly, and the memory layers hold the
    same rows."""
    res, _log = run({"POLYGONS": sample_polygons, "POINTS": sample_points,
                     "OUTPUT_POLYGONS": str(tmp_path / "polygons.gpkg"),
                     "OUTPUT_POINTS": "TEMPORARY_OUTPUT", "OUTPUT_CLUSTERS": "TEMPORARY_OUTPUT",
                     "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": ""})
    assert blob_flags(tmp_path / "polygons.gpkg") == {bytes([1])}
    assert_whole(tmp_path / "polygons.gpkg")
    for name in ("OUTPUT_POINTS", "OUTPUT_CLUSTERS"):
        assert not str(res[name]).lower().endswith(".gpkg")


@pytest.mark.parametrize("index", [[], [0], [3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [2, 3, 4], [4, 3],
                                   [0, 2, 4], [1, 1, 2], [9, 0], [5, 6, 8]])
def test_pick_is_the_values_at_the_index(index):
    import numpy as np

    from mine_clusters.algorithms.layer_io import pick

    values = [f"v{k}" for k in range(10)]
    for given in (index, np.array(index, dtype=np.int64)):
        assert list(pick(values, given)) == [values[i] for i in index]
