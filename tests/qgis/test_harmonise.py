"""The harmonise algorithms inside QGIS: parameters, memory layers in several CRSs, every real
source as QGIS reads it, error sentences and cancellation."""
import collections
import csv
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsDistanceArea,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProcessingParameterFile,
    QgsProcessingParameterFeatureSink,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)

DATA = Path(os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                           Path(__file__).resolve().parents[3] / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not available")

ICMM = DATA / "icmm-global-mining-dataset-2025" / "mines.geojson"
JASANSKY = DATA / "jasansky2022-facilities-prerelease" / "facilities.gpkg"
GCMT = DATA / "gem-global-coal-mine-tracker-2022-07" / "Global-Coal-Mine-Tracker-July-2022.csv"
GCMT_URI = ("delimitedtext://file://" + str(GCMT) + "?encoding=latin-1&type=csv"
            "&xField=Longitude&yField=Latitude&crs=EPSG:4326&geomType=point&detectTypes=no")
DETHIER = DATA / "dethier2023-asgm-sites" / "ASGM_global_sites_10232022.kml"
MAUS_INDIA = DATA / "maus2020-v1-india-brazil" / "indian_polygon_with_grId.geojson"
MAUS_BRAZIL = DATA / "maus2020-v1-india-brazil" / "brazil_polygon_with_grId.geojson"
GEM_BOUNDARIES = DATA / "gem-coal-mine-boundaries-v1.0.2" / "coal-mine-boundaries-methane.geojson"
SEPIN_1000 = (DATA / "sepin2025-combined-polygons-demo" / "commit-633645897-1000polygons"
              / "mining_polygons_combined_demo.gpkg")
SEPIN_100 = (DATA / "sepin2025-combined-polygons-demo" / "commit-96ad6dfe-100polygons"
             / "mining_polygons_combined_demo.gpkg")


@pytest.fixture
def algs(qgis_app):
    from mine_clusters.algorithms.harmonise import (
        HarmonisePointsAlgorithm, HarmonisePolygonsAlgorithm)

    return HarmonisePolygonsAlgorithm, HarmonisePointsAlgorithm


def run(alg, params, feedback=None):
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return processing.run(alg, params, context=context,
                          feedback=feedback or QgsProcessingFeedback())


def memory_layer(kind, crs, name, rows, fields=()):
    """rows: (wkt, {field: value}) in the layer CRS."""
    spec = f"{kind}?crs={crs}" + "".join(f"&field={f}:string" for f in fields)
    layer = QgsVectorLayer(spec, name, "memory")
    feats = []
    for wkt, attrs in rows:
        f = QgsFeature(layer.fields())
        if wkt is not None:
            f.setGeometry(QgsGeometry.fromWkt(wkt))
        for k, v in attrs.items():
            f[k] = v
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)
    return layer


def read(path):
    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid(), path
    return layer, list(layer.getFeatures())


def sphere_area(geom, crs="EPSG:4326"):
    """Independent area: QGIS's own measure on the same sphere (GeographicLib: great-circle
    edges between the vertices)."""
    da = QgsDistanceArea()
    da.setSourceCrs(QgsCoordinateReferenceSystem(crs), QgsCoordinateTransformContext())
    assert da.setEllipsoid("PARAMETER:6371008.8:6371008.8")
    return da.measureArea(geom)


def lonlat_area(geom):
    """Independent area with area_m2's edge model (edges straight in lon/lat,
    core.geodesy.AREA_EDGE_MODEL): QGIS's sphere measure of each part with its edges cut into
    pieces of at most 1/200 of the part's extent (and 0.0005 degrees), which follow the
    straight lon/lat edge to better than 1e-7 of the area."""
    total = 0.0
    for part in geom.constGet() if geom.isMultipart() else [geom.constGet()]:
        g = QgsGeometry(part.clone())
        box = g.boundingBox()
        step = min(0.0005, max(box.width(), box.height()) / 200.0)
        total += sphere_area(g.densifyByDistance(step))
    return total


def union_of_inputs(paths):
    """One QGIS union of every polygon of the input files (repaired), in EPSG:4326."""
    geoms = []
    for path in paths:
        layer = QgsVectorLayer(str(path), "in", "ogr")
        assert layer.isValid() and layer.crs().authid() == "EPSG:4326", path
        for f in layer.getFeatures():
            g = f.geometry()
            if g.isNull() or g.isEmpty() or g.type() != QgsWkbTypes.PolygonGeometry:
                continue
            g = g.makeValid() if not g.isGeosValid() else g
            geoms.append(g)
    return QgsGeometry.unaryUnion(geoms)


def square(x, y, d):
    return f"POLYGON(({x} {y},{x + d} {y},{x + d} {y + d},{x} {y + d},{x} {y}))"


# --------------------------------------------------------------------------- definitions

def test_parameters(algs):
    polys, points = (a() for a in algs)
    polys.initAlgorithm()
    points.initAlgorithm()
    assert polys.name() == "harmonisepolygons" and points.name() == "harmonisepoints"
    for alg in (polys, points):
        assert isinstance(alg.parameterDefinition("LAYERS"), QgsProcessingParameterMultipleLayers)
        assert isinstance(alg.parameterDefinition("SOURCE_NAMES"), QgsProcessingParameterString)
        assert isinstance(alg.parameterDefinition("OUTPUT"), QgsProcessingParameterFeatureSink)
        assert "two harmonise algorithms" in alg.shortHelpString()
    assert isinstance(points.parameterDefinition("TABLE"), QgsProcessingParameterFile)
    assert (points.parameterDefinition("NON_COMMODITIES").defaultValue()
            == "Not relevant, Processing")
    assert points.parameterDefinition("DROP_PRIMARY").defaultValue() == "Processing"
    assert "primaryCommodity" in points.parameterDefinition("PRIMARY_FIELDS").defaultValue()
    assert [o.name() for o in polys.outputDefinitions()] == [
        "OUTPUT", "N_INPUT", "N_POLYGONS", "N_REPAIRED", "N_DROPPED", "AREA_KM2", "OUTPUT_DROPPED",
        "PROVENANCE"]
    assert [o.name() for o in points.outputDefinitions()] == [
        "OUTPUT", "N_INPUT", "N_POINTS", "N_DROPPED", "N_UNKNOWN_NAMES", "OUTPUT_DROPPED",
        "PROVENANCE"]
    for alg in (polys, points):
        dropped = alg.parameterDefinition("OUTPUT_DROPPED")
        assert isinstance(dropped, QgsProcessingParameterFeatureSink)
        assert dropped.flags() & QgsProcessingParameterDefinition.FlagOptional
        assert dropped.createByDefault() and dropped.description() == "Dropped features"
        assert [p.name() for p in alg.parameterDefinitions()][-2:] == ["OUTPUT", "OUTPUT_DROPPED"]


# --------------------------------------------------------------------------- polygons

def test_polygons_in_several_crs(algs, tmp_path):
    # A (EPSG:4326) overlaps B (UTM 33N); B touches C (EPSG:3857) along a shared edge
    a = memory_layer("Polygon", "EPSG:4326", "A", [(square(15.0, 10.0, 0.01), {}),
                                                   (square(16.0, 10.0, 0.01), {})])
    utm = QgsCoordinateReferenceSystem("EPSG:32633")
    from qgis.core import QgsCoordinateTransform

    to_utm = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), utm,
                                    QgsProject.instance())
    b_geom = QgsGeometry.fromWkt(square(15.005, 10.0, 0.01))
    b_geom.transform(to_utm)
    b = memory_layer("Polygon", "EPSG:32633", "B", [(b_geom.asWkt(), {})])
    to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"),
                                     QgsProject.instance())
    c_geom = QgsGeometry.fromWkt(square(14.99, 10.0, 0.01))   # its east edge is A's west edge
    c_geom.transform(to_merc)
    c = memory_layer("Polygon", "EPSG:3857", "C", [(c_geom.asWkt(), {})])
    out = tmp_path / "merged.gpkg"
    res = run(algs[0](), {"LAYERS": [a, b, c], "SOURCE_NAMES": "Maus, Tang, OSM",
                          "OUTPUT": str(out)})
    layer, feats = read(out)
    assert [f.name() for f in layer.fields()][1:] == ["polygon_id", "sources", "n_inputs",
                                                      "input_ids", "area_m2"]
    assert layer.crs().authid() == "EPSG:4326"
    assert QgsWkbTypes.flatType(layer.wkbType()) == QgsWkbTypes.MultiPolygon
    by_sources = {f["sources"]: f for f in feats}
    assert set(by_sources) == {"Maus/Tang/OSM", "Maus"}
    assert by_sources["Maus/Tang/OSM"]["n_inputs"] == 3
    assert sorted(by_sources["Maus/Tang/OSM"]["input_ids"].split(";")) == [
        "Maus:1", "OSM:1", "Tang:1"]
    for f in feats:
        assert f["area_m2"] == pytest.approx(sphere_area(f.geometry()), rel=1e-5)
    assert res["N_POLYGONS"] == 2 and res["N_INPUT"] == 4 and res["N_DROPPED"] == 0


def test_polygon_across_the_antimeridian_from_a_projected_crs(algs, tmp_path):
    # EPSG:3832 (Mercator centred on 150 E): a rectangle that straddles 180 degrees near Fiji
    from qgis.core import QgsCoordinateTransform

    merc = QgsCoordinateReferenceSystem("EPSG:3832")
    wkt = "POLYGON((179.9 -17.0,180.1 -17.0,180.1 -16.9,179.9 -16.9,179.9 -17.0))"
    expected = sphere_area(QgsGeometry.fromWkt(wkt))    # drawn continuously past 180
    geo = QgsGeometry.fromWkt(wkt)
    geo.transform(QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), merc,
                                         QgsProject.instance()))
    layer = memory_layer("Polygon", "EPSG:3832", "pacific", [(geo.asWkt(), {})])
    out = tmp_path / "am.gpkg"
    res = run(algs[0](), {"LAYERS": [layer], "OUTPUT": str(out)})
    _, feats = read(out)
    assert len(feats) == 1
    g = feats[0].geometry()
    box = g.boundingBox()
    assert box.xMinimum() >= -180 and box.xMaximum() <= 180
    assert g.constGet().numGeometries() == 2
    assert sphere_area(g) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(21.1e3 * 11.1e3, rel=0.05)       # ~0.2 x 0.1 degrees
    assert feats[0]["area_m2"] == pytest.approx(expected, rel=1e-4)
    assert res["AREA_KM2"] == pytest.approx(expected / 1e6, rel=1e-4)


def test_polygon_errors(algs, tmp_path):
    pts = memory_layer("Point", "EPSG:4326", "mines", [("POINT(1 1)", {})])
    with pytest.raises(QgsProcessingException,
                       match="The polygon layer 'mines' has point geometries, but polygon geometries are "
                             "needed; choose a polygon layer in 'Land-use polygon layers'"):
        run(algs[0](), {"LAYERS": [pts], "OUTPUT": str(tmp_path / "x.gpkg")})
    a = memory_layer("Polygon", "EPSG:4326", "A", [(square(0, 0, 1), {})])
    with pytest.raises(QgsProcessingException, match="lists 2 names for 1 layers"):
        run(algs[0](), {"LAYERS": [a], "SOURCE_NAMES": "x, y",
                        "OUTPUT": str(tmp_path / "x.gpkg")})
    b = memory_layer("Polygon", "EPSG:4326", "A", [(square(5, 5, 1), {})])
    with pytest.raises(QgsProcessingException, match="both named 'A'"):
        run(algs[0](), {"LAYERS": [a, b], "OUTPUT": str(tmp_path / "x.gpkg")})


def test_polygons_cancelled(algs, tmp_path):
    a = memory_layer("Polygon", "EPSG:4326", "A", [(square(0, 0, 1), {})])
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out, dropped = tmp_path / "c.gpkg", tmp_path / "d.csv"
    assert run(algs[0](), {"LAYERS": [a], "OUTPUT": str(out), "OUTPUT_DROPPED": str(dropped)},
               feedback) == {}
    assert not out.exists() and not dropped.exists()


def test_polygon_source_name_with_a_colon_is_refused(algs, tmp_path):
    a = memory_layer("Polygon", "EPSG:4326", "A", [(square(0, 0, 1), {})])
    with pytest.raises(QgsProcessingException,
                       match=r"^The source name 'GEM:2022' of layer 1 is empty or holds '/', ';' "
                             r"or ':', .*in 'Source names'\.$"):
        run(algs[0](), {"LAYERS": [a], "SOURCE_NAMES": "GEM:2022",
                        "OUTPUT": str(tmp_path / "x.gpkg")})


def test_invalid_and_empty_polygons_reported(algs, tmp_path):
    layer = memory_layer("Polygon", "EPSG:4326", "bad", [
        ("POLYGON((0 0,1 1,1 0,0 1,0 0))", {}), (None, {}), (square(3, 3, 0.1), {})])
    res = run(algs[0](), {"LAYERS": [layer], "OUTPUT": str(tmp_path / "bad.gpkg")})
    assert res["N_REPAIRED"] == 1 and res["N_DROPPED"] == 1 and res["N_POLYGONS"] == 2


# ---- real polygon sources, as QGIS reads them

@needs_data
@pytest.mark.parametrize("path", [MAUS_INDIA, MAUS_BRAZIL, SEPIN_1000, SEPIN_100],
                         ids=["maus_india", "maus_brazil", "sepin1000", "sepin100"])
def test_real_polygon_source(algs, tmp_path, path):
    out = tmp_path / "out.gpkg"
    src = QgsVectorLayer(str(path), "src", "ogr")
    n_src = src.featureCount()
    res = run(algs[0](), {"LAYERS": [str(path)], "OUTPUT": str(out)})
    layer, feats = read(out)
    assert res["N_INPUT"] == n_src
    traced = [i for f in feats for i in f["input_ids"].split(";")]
    assert len(traced) == len(set(traced)) == n_src - res["N_DROPPED"]
    assert sum(f["n_inputs"] for f in feats) == len(traced)
    total = sum(f["area_m2"] for f in feats)
    assert total == pytest.approx(lonlat_area(union_of_inputs([path])), rel=1e-6)
    assert {f["sources"] for f in feats} == {path.stem}


@needs_data
def test_maus_area_column(algs, tmp_path):
    props = json.loads(MAUS_INDIA.read_text(encoding="utf-8"))["features"]
    res = run(algs[0](), {"LAYERS": [str(MAUS_INDIA)], "OUTPUT": str(tmp_path / "m.gpkg")})
    # the file's AREA (km², ellipsoidal) against ours (sphere; its own overlaps merged)
    assert res["AREA_KM2"] == pytest.approx(sum(p["properties"]["AREA"] for p in props),
                                            rel=5e-3)


@needs_data
def test_gem_boundaries_mixed_geometry_types(algs, tmp_path):
    props = json.loads(GEM_BOUNDARIES.read_text(encoding="utf-8"))["features"]
    kinds = collections.Counter(p["geometry"]["type"] for p in props)
    out = tmp_path / "gem.gpkg"
    from qgis_helpers import LogFeedback

    log = LogFeedback()
    res = run(algs[0](), {"LAYERS": [str(GEM_BOUNDARIES)], "SOURCE_NAMES": "GEM",
                          "OUTPUT": str(out)}, log)
    assert any(w.startswith("Dropped 1782 feature(s) of 'GEM' (not a polygon (Point))")
               and w.endswith(" and 1762 more (every one is in the 'Dropped features' output).")
               for w in log.warnings)
    _, feats = read(out)
    assert res["N_DROPPED"] == len(props) - kinds["Polygon"]
    assert sum(f["n_inputs"] for f in feats) == kinds["Polygon"] == 333
    ids = {i for f in feats for i in f["input_ids"].split(";")}
    assert "GEM:M0086.B1" in ids          # GEM's own ids, from its 'id' field


@needs_data
def test_real_polygon_sources_together(algs, tmp_path):
    out = tmp_path / "all.gpkg"
    res = run(algs[0](), {"LAYERS": [str(MAUS_INDIA), str(GEM_BOUNDARIES), str(SEPIN_100)],
                          "SOURCE_NAMES": "Maus, GEM, Sepin", "OUTPUT": str(out)})
    _, feats = read(out)
    combos = collections.Counter(f["sources"] for f in feats)
    assert combos["Maus/GEM"] > 0 and combos["Maus/Sepin"] > 0
    assert all(f["sources"].split("/") == [s for s in ("Maus", "GEM", "Sepin")
                                           if s in f["sources"].split("/")] for f in feats)
    # no area counts twice: the total is the area of the union of the INPUTS, unioned and
    # measured by QGIS alone (same sphere, same edge model)
    union = union_of_inputs([MAUS_INDIA, GEM_BOUNDARIES, SEPIN_100])
    assert sum(f["area_m2"] for f in feats) == pytest.approx(lonlat_area(union), rel=1e-6)
    assert res["AREA_KM2"] * 1e6 == pytest.approx(lonlat_area(union), rel=1e-6)
    assert res["N_POLYGONS"] == len(feats)


# --------------------------------------------------------------------------- points

def r_table():
    path = DATA / "r-impl-harmonisation-tables" / "harmonisation_metals_coal.csv"
    with open(path, encoding="utf-8") as fh:
        return {r["material"].strip().casefold(): r["material_harmonized"]
                for r in reversed(list(csv.DictReader(fh)))}


def test_points_memory_layers(algs, tmp_path):
    utm = memory_layer("MultiPoint", "EPSG:32633", "inv", [
        ("MULTIPOINT((500000 1000000),(501000 1000000))",
         {"site": "s1", "primaryCommodity": "iron ore ", "otherCommodities": "steel; Gold"}),
        ("MULTIPOINT EMPTY", {"site": "s2", "primaryCommodity": "gold"}),
        ("POINT(502000 1000000)", {"site": "s3", "primaryCommodity": "Processing"}),
    ], fields=("site", "primaryCommodity", "otherCommodities"))
    table = tmp_path / "table.csv"
    table.write_text("raw,harmonised\niron ore,Iron\ngold,Gold\nsteel,\n", encoding="utf-8")
    out = tmp_path / "pts.gpkg"
    res = run(algs[1](), {"LAYERS": [utm], "ID_FIELDS": "site", "TABLE": str(table),
                          "OUTPUT": str(out)})
    layer, feats = read(out)
    assert [f.name() for f in layer.fields()][1:] == ["point_id", "source", "source_id",
                                                      "primary_commodity", "commodities"]
    assert layer.crs().authid() == "EPSG:4326"
    assert [(f["point_id"], f["source"], f["source_id"], f["primary_commodity"],
             f["commodities"]) for f in feats] == [
        (1, "inv", "s1", "Iron", "Gold,Iron"), (2, "inv", "s1", "Iron", "Gold,Iron")]
    x = feats[0].geometry().asPoint()
    assert x.x() == pytest.approx(15.0, abs=1e-6) and x.y() == pytest.approx(9.045, abs=1e-2)
    assert res["N_DROPPED"] == 2 and res["N_POINTS"] == 2


def test_points_errors(algs, tmp_path):
    layer = memory_layer("Point", "EPSG:4326", "nofield", [("POINT(1 1)", {"x": "a"})],
                         fields=("x",))
    with pytest.raises(QgsProcessingException,
                       match="The point layer 'nofield' has none of the primary commodity fields"):
        run(algs[1](), {"LAYERS": [layer], "OUTPUT": str(tmp_path / "e.gpkg")})
    with pytest.raises(QgsProcessingException, match="names the source 'GEM'"):
        run(algs[1](), {"LAYERS": [layer], "DEFAULT_COMMODITY": "GEM=Coal",
                        "OUTPUT": str(tmp_path / "e.gpkg")})
    with pytest.raises(QgsProcessingException, match="cannot be read"):
        run(algs[1](), {"LAYERS": [layer], "DEFAULT_COMMODITY": "Coal",
                        "TABLE": str(tmp_path / "missing.csv"),
                        "OUTPUT": str(tmp_path / "e.gpkg")})
    polys = memory_layer("Polygon", "EPSG:4326", "areas", [(square(0, 0, 1), {})])
    with pytest.raises(QgsProcessingException, match="The point layer 'areas' has polygon geometries, but point geometries"):
        run(algs[1](), {"LAYERS": [polys], "OUTPUT": str(tmp_path / "e.gpkg")})


def test_points_cancelled(algs, tmp_path):
    layer = memory_layer("Point", "EPSG:4326", "p", [("POINT(1 1)", {})])
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out, dropped = tmp_path / "c.gpkg", tmp_path / "d.csv"
    assert run(algs[1](), {"LAYERS": [layer], "DEFAULT_COMMODITY": "Gold", "OUTPUT": str(out),
                           "OUTPUT_DROPPED": str(dropped)}, feedback) == {}
    assert not out.exists() and not dropped.exists()


@needs_data
def test_icmm_geojson(algs, tmp_path):
    from qgis_helpers import LogFeedback

    feats_in = json.loads(ICMM.read_text(encoding="utf-8"))["features"]
    out = tmp_path / "icmm.gpkg"
    log = LogFeedback()
    res = run(algs[1](), {"LAYERS": [str(ICMM)], "SOURCE_NAMES": "ICMM", "OUTPUT": str(out)},
              log)
    _, feats = read(out)
    assert len(feats) == len(feats_in) == res["N_POINTS"]
    table = r_table()
    by_id = {f["source_id"]: f for f in feats}
    for raw in ("iron ore ", "thermal coal", "metallurgical coal"):
        ids = [p["properties"]["id"] for p in feats_in
               if p["properties"]["primaryCommodity"] == raw]
        assert ids
        assert {by_id[i]["primary_commodity"] for i in ids} == {table[raw.strip()]}
    # the log says what the table did: renamed (Chromite -> Chromium), removed (ICMM's barium,
    # the barite mines, "Not relevant" as in the R table), and what it did not know
    unknown = [line for line in log.infos if line.startswith("Names not in the harmonisation")]
    assert len(unknown) == (1 if res["N_UNKNOWN_NAMES"] else 0)
    renamed = [line for line in log.infos if line.startswith("Renamed by the harmonisation")]
    assert len(renamed) == 1 and "chromite -> chromium (" in renamed[0].casefold(), renamed
    assert any(line.startswith("Not commodities, removed") and "steel" in line
               and "barium (192)" in line for line in log.infos)


@needs_data
def test_jasansky_gpkg(algs, tmp_path):
    src = QgsVectorLayer(str(JASANSKY), "j", "ogr")
    parts, empty, processing_ = 0, 0, 0
    for f in src.getFeatures():
        g = f.geometry()
        if g.isNull() or g.isEmpty():
            empty += 1
        elif f["primary_commodity"] == "Processing":
            processing_ += 1
        else:
            parts += g.constGet().numGeometries()
    assert empty == 518
    out = tmp_path / "j.gpkg"
    res = run(algs[1](), {"LAYERS": [str(JASANSKY)], "OUTPUT": str(out)})
    _, feats = read(out)
    assert len(feats) == parts and res["N_DROPPED"] == empty + processing_
    assert {f["source"] for f in feats} == {"facilities"}
    assert all(f["source_id"].startswith("COM") for f in feats)


@needs_data
def test_gem_tracker_csv_latin1(algs, tmp_path):
    with open(GCMT, encoding="latin-1", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path / "gcmt.gpkg"
    res = run(algs[1](), {"LAYERS": [GCMT_URI], "DEFAULT_COMMODITY": "Coal",
                          "OUTPUT": str(out)})
    _, feats = read(out)
    located = 0
    for r in rows:
        try:
            float(r["Latitude"]), float(r["Longitude"])
            located += 1
        except ValueError:
            pass
    assert len(feats) == located
    assert {f["source"] for f in feats} == {"Global-Coal-Mine-Tracker-July-2022"}
    assert {f["primary_commodity"] for f in feats} == {"Coal"}
    names = {f["source_id"] for f in feats}
    assert "M1526" in names                           # 'Mine IDs' was found as the id field
    assert res["N_POINTS"] == located


@needs_data
def test_dethier_kml(algs, tmp_path):
    out = tmp_path / "asgm.gpkg"
    run(algs[1](), {"LAYERS": [str(DETHIER)], "SOURCE_NAMES": "ASGM",
                    "DEFAULT_COMMODITY": "ASGM=gold", "OUTPUT": str(out)})
    layer, feats = read(out)
    assert len(feats) == 436
    assert {f["primary_commodity"] for f in feats} == {"Gold"}
    assert not QgsWkbTypes.hasZ(layer.wkbType())


@needs_data
def test_several_inventories_in_one_run(algs, tmp_path):
    out = tmp_path / "all.gpkg"
    res = run(algs[1](), {"LAYERS": [str(ICMM), str(JASANSKY), GCMT_URI],
                          "SOURCE_NAMES": "ICMM, Jasansky, GEM", "DEFAULT_COMMODITY": "GEM=Coal",
                          "OUTPUT": str(out)})
    _, feats = read(out)
    counts = collections.Counter(f["source"] for f in feats)
    assert list(counts) == ["ICMM", "Jasansky", "GEM"]
    assert [f["point_id"] for f in feats] == list(range(1, len(feats) + 1))
    assert res["N_INPUT"] == 8508 + 2398 + QgsVectorLayer(GCMT_URI[len("delimitedtext://"):],
                                                         "g", "delimitedtext").featureCount()


# --------------------------------------------------------------------------- the bundled sample

SAMPLE_REGION = "84,87,21,24 [EPSG:4326]"   # resources/sample/SOURCE.md


@needs_data
def test_bundled_sample_points_are_what_the_algorithm_gives(algs, tmp_path, sample_points):
    """scripts/make_sample_data.py writes the sample with these very parameters: a change of the
    algorithm's behaviour shows here until the sample is made again."""
    out = tmp_path / "sample_points.gpkg"
    run(algs[1](), {"LAYERS": [str(ICMM), str(JASANSKY), GCMT_URI],
                    "SOURCE_NAMES": "ICMM 2025,Jasansky et al. 2022,GEM GCMT 2022-07",
                    "DEFAULT_COMMODITY": "GEM GCMT 2022-07=Coal", "EXTENT": SAMPLE_REGION,
                    "OUTPUT": str(out)})
    _, ours = read(out)
    _, bundled = read(sample_points)
    rows = lambda feats: sorted((f["source"], f["source_id"], f["primary_commodity"] or "",  # noqa: E731
                                 f["commodities"] or "", f.geometry().asWkt(6)) for f in feats)
    assert len(bundled) > 300 and rows(ours) == rows(bundled)
    assert {f["source"] for f in bundled} == {"ICMM 2025", "Jasansky et al. 2022", "GEM GCMT 2022-07"}


@needs_data
def test_bundled_sample_polygons_are_what_the_algorithm_gives(algs, tmp_path, sample_polygons):
    out = tmp_path / "sample_polygons.gpkg"
    res = run(algs[0](), {"LAYERS": [str(MAUS_INDIA)], "SOURCE_NAMES": "Maus et al. 2020 v1",
                          "EXTENT": SAMPLE_REGION, "OUTPUT": str(out)})
    _, ours = read(out)
    _, bundled = read(sample_polygons)
    rows = lambda feats: sorted((f["input_ids"], f["area_m2"]) for f in feats)  # noqa: E731
    assert len(bundled) > 300 and [r[0] for r in rows(ours)] == [r[0] for r in rows(bundled)]
    assert [r[1] for r in rows(ours)] == pytest.approx([r[1] for r in rows(bundled)], rel=1e-9)
    assert sum(f["n_inputs"] for f in bundled) == res["N_INPUT"]  # every Maus polygon in the region


@pytest.mark.parametrize("which", [0, 1])
def test_cancel_while_writing_leaves_no_output(algs, tmp_path, sample_polygons, sample_points, which):
    """Writing is the last step (above 2/3 of the progress with one layer): a cancel there
    returns {} and deletes what was written."""
    from qgis_helpers import LogFeedback

    out = tmp_path / "out.gpkg"
    log = LogFeedback()
    log.progressChanged.connect(lambda p: log.cancel() if p > 67 else None)
    alg = algs[which]()
    alg.initAlgorithm()
    params = {"LAYERS": [sample_polygons if which == 0 else sample_points], "OUTPUT": str(out)}
    context = QgsProcessingContext()
    results, _ok = alg.run(params, context, log)
    assert results == {}
    assert any("Cancelled" in i for i in log.infos)
    assert not out.exists()


# --------------------------------------------------------------------------- progress, cancel

class ProgressLog(QgsProcessingFeedback):
    """Records every progress value the algorithm reports (on the top-level feedback, i.e. the
    bar the user sees); cancels itself at the `cancel_at`-th report when asked."""

    def __init__(self, cancel_at=None):
        super().__init__()
        self.values, self.infos, self.cancel_at = [], [], cancel_at
        self.progressChanged.connect(self._record)

    def _record(self, value):
        self.values.append(value)
        if self.cancel_at is not None and len(self.values) >= self.cancel_at:
            self.cancel()

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)


def run_alg(alg_class, params, feedback):
    alg = alg_class()
    alg.initAlgorithm()
    context = QgsProcessingContext()
    results, _ok = alg.run(params, context, feedback)
    return results


POINT_RUN = {"SOURCE_NAMES": "ICMM,Jasansky,ASGM", "DEFAULT_COMMODITY": "ASGM=Gold"}


@needs_data
@pytest.mark.parametrize("which", [0, 1], ids=["polygons", "points"])
def test_progress_never_goes_back(algs, tmp_path, which):
    """Regression: reading a layer set the progress on the top-level feedback (the bar went
    94 -> 20 -> 0 when the next layer started). Several layers, both outputs written."""
    layers = ([str(MAUS_INDIA), str(GEM_BOUNDARIES)] if which == 0
              else [str(ICMM), str(JASANSKY), str(DETHIER)])
    params = {"LAYERS": layers, "OUTPUT": str(tmp_path / "o.gpkg"),
              "OUTPUT_DROPPED": str(tmp_path / "d.gpkg"), **({} if which == 0 else POINT_RUN)}
    log = ProgressLog()
    assert run_alg(algs[which], params, log)["OUTPUT"] == str(tmp_path / "o.gpkg")
    v = log.values
    assert len(v) > 20
    backwards = [(a, b) for a, b in zip(v, v[1:]) if b < a - 1e-9]
    assert backwards == []
    assert 0.0 <= v[0] and 99.0 <= v[-1] <= 100.0


N_REPORTS = {}


@needs_data
@pytest.mark.parametrize("which", [0, 1], ids=["polygons", "points"])
@pytest.mark.parametrize("stage", [0.02, 0.34, 0.67, 0.9])
def test_cancel_mid_run_leaves_no_output(algs, tmp_path, which, stage):
    """A cancel after a share of the progress reports (reading, the core, writing): {} and
    neither output on disk."""
    layers = ([str(MAUS_INDIA), str(GEM_BOUNDARIES)] if which == 0
              else [str(ICMM), str(JASANSKY), str(DETHIER)])
    out, dropped = tmp_path / "o.gpkg", tmp_path / "d.gpkg"
    params = {"LAYERS": layers, "OUTPUT": str(out), "OUTPUT_DROPPED": str(dropped),
              **({} if which == 0 else POINT_RUN)}
    if which not in N_REPORTS:                        # how often does a full run report?
        full = ProgressLog()
        run_alg(algs[which], {**params, "OUTPUT": str(tmp_path / "full.gpkg"),
                              "OUTPUT_DROPPED": str(tmp_path / "full_d.gpkg")}, full)
        N_REPORTS[which] = len(full.values)
    n = max(1, int(stage * N_REPORTS[which]))
    log = ProgressLog(cancel_at=n)
    assert run_alg(algs[which], params, log) == {}
    assert any(line.startswith("Cancelled") for line in log.infos)
    assert not out.exists() and not dropped.exists()


# --------------------------------------------------------------------------- dropped features

def dropped_table(path):
    layer, feats = read(path)
    assert [f.name() for f in layer.fields()][-3:] == ["source", "source_id", "reason"]
    assert layer.wkbType() == QgsWkbTypes.NoGeometry
    return [(f["source"], f["source_id"], f["reason"]) for f in feats]


@needs_data
def test_dropped_table_accounts_for_every_jasansky_and_gem_tracker_feature(algs, tmp_path):
    """ids in the output + ids in 'Dropped features' = ids in the input, per source; the log
    shows only 20 ids per source and reason."""
    import sqlite3

    con = sqlite3.connect(f"file:{JASANSKY}?mode=ro", uri=True)
    jas_ids = collections.Counter(r[0] for r in con.execute("SELECT facility_id FROM facilities"))
    con.close()
    with open(GCMT, encoding="latin-1", newline="") as fh:
        gem_rows = list(csv.DictReader(fh))
    # the tracker ends with two records without any value: not features for QGIS
    blank = [r for r in gem_rows if not any((v or "").strip() for v in r.values())]
    assert len(blank) == 2
    gem_ids = collections.Counter(r["Mine IDs"] for r in gem_rows if r not in blank)
    out, dropped = tmp_path / "pts.gpkg", tmp_path / "dropped.gpkg"
    res = run(algs[1](), {"LAYERS": [str(JASANSKY), GCMT_URI], "SOURCE_NAMES": "Jasansky, GEM",
                          "DEFAULT_COMMODITY": "GEM=Coal", "OUTPUT": str(out),
                          "OUTPUT_DROPPED": str(dropped)})
    assert res["OUTPUT_DROPPED"] == str(dropped)
    rows = dropped_table(dropped)
    assert len(rows) == res["N_DROPPED"]
    reasons = collections.Counter((s, r) for s, _, r in rows)
    assert reasons[("Jasansky", "empty or null geometry")] == 518      # the file's EMPTY points
    _, feats = read(out)
    for name, inputs in (("Jasansky", jas_ids), ("GEM", gem_ids)):
        left_out = collections.Counter(i for s, i, _ in rows if s == name)
        kept = {f["source_id"] for f in feats if f["source"] == name}
        assert not left_out - inputs                    # each dropped id is an input's id
        assert set(inputs - left_out) == kept           # and the others are in the output
    # one point per tracker row: rows out + rows dropped = rows in
    n_gem_out = sum(1 for f in feats if f["source"] == "GEM")
    assert n_gem_out + sum(1 for s, _, _ in rows if s == "GEM") == sum(gem_ids.values())
    assert res["N_INPUT"] == sum(jas_ids.values()) + sum(gem_ids.values())


@needs_data
def test_dropped_table_of_the_gem_boundaries(algs, tmp_path):
    props = json.loads(GEM_BOUNDARIES.read_text(encoding="utf-8"))["features"]
    out, dropped = tmp_path / "gem.gpkg", tmp_path / "dropped.csv"
    res = run(algs[0](), {"LAYERS": [str(GEM_BOUNDARIES)], "SOURCE_NAMES": "GEM",
                          "OUTPUT": str(out), "OUTPUT_DROPPED": str(dropped)})
    rows = dropped_table(dropped)
    _, feats = read(out)
    merged = [i.split(":", 1)[1] for f in feats for i in f["input_ids"].split(";")]
    assert len(rows) == res["N_DROPPED"] == len(props) - 333
    assert sorted(merged + [i for _, i, _ in rows]) == sorted(
        p["properties"]["id"] for p in props)
    kinds = {p["properties"]["id"]: p["geometry"]["type"] for p in props}
    assert all(r == f"not a polygon ({kinds[i]})" for _, i, r in rows)


def test_dropped_table_only_when_asked(algs, tmp_path):
    layer = memory_layer("Polygon", "EPSG:4326", "A", [(square(0, 0, 1), {}), (None, {})])
    res = run(algs[0](), {"LAYERS": [layer], "OUTPUT": str(tmp_path / "a.gpkg")})
    assert res["OUTPUT_DROPPED"] is None and res["N_DROPPED"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg"]


def test_a_point_the_crs_cannot_transform_is_one_sentence(algs, tmp_path):
    """An easting of 1e30 m in UTM 32N has no longitude/latitude: the error is one line that
    names the layer and the feature (its fid and its id), not PROJ's three lines."""
    layer = memory_layer("Point", "EPSG:32632", "far",
                         [("POINT(500000 5200000)", {"name": "m0"}),
                          ("POINT(1e30 5200000)", {"name": "m1"})], fields=("name",))
    with pytest.raises(QgsProcessingException) as err:
        run(algs[1](), {"LAYERS": [layer], "ID_FIELDS": "name", "DEFAULT_COMMODITY": "Gold",
                        "OUTPUT": str(tmp_path / "e.gpkg")})
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith("Feature 2 (name 'm1') of the point layer 'far' cannot be transformed "
                              "to longitude/latitude"), message
    assert message.endswith("; fix its geometry or the layer CRS."), message
