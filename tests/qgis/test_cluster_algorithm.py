"""The cluster algorithm inside QGIS: definitions, outputs on real sample data, CRS, errors,
cancel. Runs with QgsApplication offscreen (see conftest.py)."""
import json
import math
import os
import re

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsVectorLayer,
    QgsWkbTypes,
)

from qgis_helpers import LogFeedback, memory_layer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ALG = "mineclusters:clusterlocaloptimum"
FEATURE_NAMES = ["cluster_id", "threshold_m", "primary_commodities", "commodities", "status",
                 "area_m2"]
TRACE_NAMES = ["via_point_fid", "via_distance_m", "via_links", "via_max_link_m", "stable_from_m",
               "stable_to_m"]
CLUSTER_NAMES = ["cluster_id", "threshold_m", "primary_commodities", "commodities",
                 "n_polygons", "n_points", "area_m2", "status"]
SENSITIVITY_NAMES = ["curve", "threshold_m", "area_unassigned_pct", "area_multi_pct",
                     "distance", "chosen"]
NUMBERS = ["MAX_THRESHOLD_M", "GLOBAL_THRESHOLD_M", "AREA_UNASSIGNED_PCT", "AREA_MULTI_PCT",
           "N_CLUSTERS"]


def layer(path):
    lyr = QgsVectorLayer(path, os.path.basename(path), "ogr")
    assert lyr.isValid(), path
    return lyr


def names(lyr):
    return [f.name() for f in lyr.fields()]


def outputs(tmp_path, prefix="out"):
    return {
        "OUTPUT_POLYGONS": str(tmp_path / f"{prefix}_polygons.gpkg"),
        "OUTPUT_POINTS": str(tmp_path / f"{prefix}_points.gpkg"),
        "OUTPUT_CLUSTERS": str(tmp_path / f"{prefix}_clusters.gpkg"),
        "OUTPUT_SENSITIVITY": str(tmp_path / f"{prefix}_sensitivity.gpkg"),
        "OUTPUT_PLOT": str(tmp_path / f"{prefix}_pareto.png"),
        "OUTPUT_HISTOGRAM": str(tmp_path / f"{prefix}_histogram.svg"),
        "OUTPUT_REPORT": str(tmp_path / f"{prefix}_report.html"),
    }


# ---- definitions ----------------------------------------------------------------------------

def test_provider_and_algorithm_are_registered(provider):
    reg = QgsApplication.processingRegistry()
    assert reg.providerById("mineclusters").name() == "Mine clusters"
    alg = reg.algorithmById(ALG)
    assert alg is not None
    assert alg.displayName() == "Cluster mine features (local optimum)"
    assert alg.shortHelpString()
    ok, message = alg.canExecute()
    assert ok, message


def test_provider_lists_every_algorithm(provider):
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == sorted(["mineclusters:clusterlocaloptimum", "mineclusters:footprintsummary",
                          "mineclusters:harmonisepolygons", "mineclusters:harmonisepoints",
                          "mineclusters:validate"])


def test_parameter_definitions(provider):
    alg = QgsApplication.processingRegistry().algorithmById(ALG)
    p = {d.name(): d for d in alg.parameterDefinitions()}
    assert list(p) == ["POLYGONS", "POINTS", "PRIMARY_FIELD", "COMMODITIES_FIELD", "AREA_FIELD",
                       "H_LIMIT", "THRESHOLD_STEP", "MAX_THRESHOLD", "METHOD", "WEIGHT", "FORMULA",
                       "OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS",
                       "OUTPUT_SENSITIVITY", "OUTPUT_PLOT", "OUTPUT_HISTOGRAM", "OUTPUT_REPORT",
                       "OUTPUT_LINKS", "OUTPUT_CONCORDANCE"]
    # the traceability outputs are written only when asked for (they cost time on the planet)
    for name in ("OUTPUT_LINKS", "OUTPUT_CONCORDANCE"):
        assert p[name].flags() & p[name].FlagOptional and not p[name].createByDefault(), name
    assert isinstance(p["POLYGONS"], QgsProcessingParameterFeatureSource)
    assert p["POLYGONS"].dataTypes() == [QgsProcessing.TypeVectorPolygon]
    assert p["POINTS"].dataTypes() == [QgsProcessing.TypeVectorPoint]
    for name, parent, default in (("PRIMARY_FIELD", "POINTS", "primary_commodity"),
                                  ("COMMODITIES_FIELD", "POINTS", "commodities"),
                                  ("AREA_FIELD", "POLYGONS", None)):
        assert isinstance(p[name], QgsProcessingParameterField)
        assert p[name].parentLayerParameterName() == parent
        assert p[name].defaultValue() == default
    assert p["AREA_FIELD"].dataType() == QgsProcessingParameterField.Numeric
    for name, default in (("H_LIMIT", 20000.0), ("THRESHOLD_STEP", 1000.0), ("WEIGHT", 0.5)):
        assert isinstance(p[name], QgsProcessingParameterNumber)
        assert p[name].dataType() == QgsProcessingParameterNumber.Double
        assert float(p[name].defaultValue()) == default
    assert p["WEIGHT"].minimum() == 0.0 and p["WEIGHT"].maximum() == 1.0
    assert p["MAX_THRESHOLD"].defaultValue() is None
    assert p["MAX_THRESHOLD"].flags() & p["MAX_THRESHOLD"].FlagOptional
    assert isinstance(p["METHOD"], QgsProcessingParameterEnum)
    assert len(p["METHOD"].options()) == 2 and p["METHOD"].defaultValue() == 0
    assert len(p["FORMULA"].options()) == 2 and p["FORMULA"].defaultValue() == 0
    for name in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY"):
        assert isinstance(p[name], QgsProcessingParameterFeatureSink)
    for name in ("OUTPUT_PLOT", "OUTPUT_HISTOGRAM"):
        assert isinstance(p[name], QgsProcessingParameterFileDestination)
        assert "PNG" in p[name].fileFilter() and "SVG" in p[name].fileFilter()
    out_names = [o.name() for o in alg.outputDefinitions()]
    for name in NUMBERS:
        assert name in out_names


# ---- real sample data ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_run(provider, sample_polygons, sample_points, tmp_path_factory):
    import processing

    tmp = tmp_path_factory.mktemp("sample")
    feedback = LogFeedback()
    params = {"POLYGONS": sample_polygons, "POINTS": sample_points, **outputs(tmp)}
    res = processing.run(ALG, params, feedback=feedback)
    return res, feedback, params


def _report_parts(path):
    """(embedded images as (mime, bytes), {headline item: value}, row count per table title)."""
    import base64
    import html as html_lib
    import re

    with open(path, encoding="utf-8") as f:
        text = f.read()
    images = [(m.group(1), base64.b64decode(m.group(2)))
              for m in re.finditer(r'<img src="data:([^;]+);base64,([^"]+)"', text)]
    tables = {}
    for m in re.finditer(r"<h2>(.*?)</h2>.*?<tbody>(.*?)</tbody>", text, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", m.group(2), re.S)
        tables[html_lib.unescape(m.group(1))] = [
            [html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in rows]
    headline = {row[0]: row[1] for row in tables.get("Headline numbers", [])}
    return images, headline, tables


def test_sample_report_embeds_the_plots_and_the_headline_numbers(sample_run):
    from qgis.core import QgsProcessingOutputHtml

    res, _feedback, params = sample_run
    alg = QgsApplication.processingRegistry().algorithmById(ALG)
    out = {o.name(): o for o in alg.outputDefinitions()}
    assert isinstance(out["OUTPUT_REPORT"], QgsProcessingOutputHtml)  # the Results Viewer's kind
    assert res["OUTPUT_REPORT"] == params["OUTPUT_REPORT"]
    images, headline, tables = _report_parts(params["OUTPUT_REPORT"])
    # the very plot files of this run, embedded
    with open(params["OUTPUT_PLOT"], "rb") as f:
        assert ("image/png", f.read()) in images
    with open(params["OUTPUT_HISTOGRAM"], "rb") as f:
        assert ("image/svg+xml", f.read()) in images
    assert len(images) == 2
    assert headline["H_max used"] == f"{res['MAX_THRESHOLD_M'] / 1000:g} km"
    assert headline["Global optimum threshold h"] == f"{res['GLOBAL_THRESHOLD_M'] / 1000:g} km"
    assert headline["Unassigned area A_u"] == f"{res['AREA_UNASSIGNED_PCT']:.2f} %"
    assert headline["Area with several primary commodities A_m"] == \
        f"{res['AREA_MULTI_PCT']:.2f} %"
    assert headline["Clusters"] == f"{res['N_CLUSTERS']:,}"
    polys = layer(params["OUTPUT_POLYGONS"])
    pts = layer(params["OUTPUT_POINTS"])
    assert headline["Polygons / point parts clustered"] == \
        f"{polys.featureCount():,} / {pts.featureCount():,}"
    sens = layer(params["OUTPUT_SENSITIVITY"])
    assert len(tables["Sensitivity curves"]) == sens.featureCount()
    # the chosen-threshold table counts every processing group with area once
    chosen = [int(r[1].replace(",", "")) for r in tables["Thresholds chosen by the processing groups"]]
    assert sum(chosen) == int(headline["Processing groups (with polygon area)"].split("(")[1]
                              .rstrip(")").replace(",", ""))


def test_report_embeds_plots_that_were_not_asked_for(run, sample_polygons, sample_points,
                                                     tmp_path):
    import glob
    import tempfile

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "mine_clusters_*")))
    report = str(tmp_path / "report.html")
    res, _fb = run({"POLYGONS": sample_polygons, "POINTS": sample_points,
                    "OUTPUT_POLYGONS": "TEMPORARY_OUTPUT", "OUTPUT_POINTS": "",
                    "OUTPUT_CLUSTERS": "", "OUTPUT_SENSITIVITY": "", "OUTPUT_PLOT": "",
                    "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": report})
    assert res["OUTPUT_PLOT"] is None and res["OUTPUT_HISTOGRAM"] is None
    images, headline, _tables = _report_parts(report)
    assert [mime for mime, data in images] == ["image/png", "image/png"]
    assert all(data.startswith(b"\x89PNG") and len(data) > 10000 for _mime, data in images)
    assert headline["Clusters"] == f"{res['N_CLUSTERS']:,}"
    # the plots drawn for the report only are not left behind
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "mine_clusters_*"))) == before


def test_sample_outputs_schemas_and_numbers(sample_run):
    res, _feedback, params = sample_run
    for key in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY",
                "OUTPUT_PLOT", "OUTPUT_HISTOGRAM"):
        assert res[key] == params[key]
        assert os.path.getsize(params[key]) > 0
    with open(params["OUTPUT_PLOT"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(params["OUTPUT_HISTOGRAM"], encoding="utf-8") as f:
        assert "<svg" in f.read(2000)
    polys = layer(params["OUTPUT_POLYGONS"])
    pts = layer(params["OUTPUT_POINTS"])
    clusters = layer(params["OUTPUT_CLUSTERS"])
    sens = layer(params["OUTPUT_SENSITIVITY"])
    # input attributes are kept as they are; a name they hold gets the mc_ prefix (the sample
    # polygons are harmonised ones with their own area_m2, the points have their commodities)
    assert names(polys)[-12:] == [("mc_" if n == "area_m2" else "") + n
                                  for n in FEATURE_NAMES + TRACE_NAMES]
    assert "input_ids" in names(polys) and "area_m2" in names(polys)
    assert names(pts)[-6:] == [("mc_" if n == "commodities" else "") + n for n in FEATURE_NAMES]
    assert "point_id" in names(pts) and "input_fid" in names(pts)
    assert names(clusters)[-8:] == CLUSTER_NAMES
    assert names(sens)[-6:] == SENSITIVITY_NAMES
    assert QgsWkbTypes.geometryType(polys.wkbType()) == QgsWkbTypes.PolygonGeometry
    assert QgsWkbTypes.flatType(pts.wkbType()) == QgsWkbTypes.Point
    assert QgsWkbTypes.flatType(clusters.wkbType()) == QgsWkbTypes.MultiPolygon
    assert sens.wkbType() == QgsWkbTypes.NoGeometry
    for name in NUMBERS:
        assert isinstance(res[name], (int, float)) and math.isfinite(res[name])
    assert res["N_CLUSTERS"] == clusters.featureCount() + len(
        {f["cluster_id"] for f in pts.getFeatures()} - {f["cluster_id"] for f in polys.getFeatures()})
    assert 0 <= res["AREA_UNASSIGNED_PCT"] <= 100
    assert res["MAX_THRESHOLD_M"] % 1000 == 0 and 1000 <= res["MAX_THRESHOLD_M"] <= 20000


def test_sample_outputs_reconcile_with_inputs(sample_run, sample_polygons, sample_points):
    _res, feedback, params = sample_run
    in_polys, in_pts = layer(sample_polygons), layer(sample_points)
    polys, pts = layer(params["OUTPUT_POLYGONS"]), layer(params["OUTPUT_POINTS"])
    clusters = layer(params["OUTPUT_CLUSTERS"])
    # every polygon is there once, with its attributes
    assert sorted(f["input_ids"] for f in polys.getFeatures()) == sorted(
        f["input_ids"] for f in in_polys.getFeatures())
    # every point part is there, attributes copied
    n_parts = sum(len(f.geometry().asGeometryCollection()) or 1 for f in in_pts.getFeatures())
    assert pts.featureCount() == n_parts
    assert {f["point_id"] for f in pts.getFeatures()} == {f["point_id"] for f in in_pts.getFeatures()}
    assert not feedback.warnings  # nothing dropped in the sample
    # areas reconcile: clusters hold exactly the polygon area
    poly_area = sum(f["area_m2"] for f in polys.getFeatures())
    cluster_area = sum(f["area_m2"] for f in clusters.getFeatures())
    assert cluster_area == pytest.approx(poly_area, rel=1e-9)
    assert sum(f["n_polygons"] for f in clusters.getFeatures()) == polys.featureCount()
    # geodesic areas agree with the Maus data set's own AREA (km²) of the merged inputs within 1 %
    maus = os.path.join(os.path.dirname(ROOT), "shared", "data", "maus2020-v1-india-brazil",
                        "indian_polygon_with_grId.geojson")
    if os.path.exists(maus):
        with open(maus, encoding="utf-8") as fh:
            area_km2 = {str(f["properties"]["fid"]): f["properties"]["AREA"] for f in json.load(fh)["features"]}
        for f in polys.getFeatures():
            inputs = [i.split(":")[-1] for i in f["input_ids"].split(";")]
            assert f["area_m2"] == pytest.approx(sum(area_km2[i] for i in inputs) * 1e6, rel=0.01)
    # status follows the commodities
    for f in polys.getFeatures():
        prim = f["primary_commodities"]
        if f["status"] == "unassigned":
            assert prim in (None, "") or prim.__class__.__name__ == "QVariant"
        elif f["status"] == "multiple":
            assert "," in prim
        else:
            assert f["status"] == "assigned" and "," not in prim


def test_sensitivity_table_marks_one_choice_per_curve(sample_run):
    res, _feedback, params = sample_run
    rows = [(f["curve"], f["threshold_m"], f["chosen"]) for f in
            layer(params["OUTPUT_SENSITIVITY"]).getFeatures()]
    glob = [r for r in rows if r[0] == "global"]
    local = [r for r in rows if r[0] == "local"]
    assert [r[1] for r in glob] == [1000.0 * k for k in range(1, 21)]
    assert [r[1] for r in glob if r[2] == 1] == [res["GLOBAL_THRESHOLD_M"]]
    assert [r[1] for r in local if r[2] == 1] == [res["MAX_THRESHOLD_M"]]


def test_outputs_open_styled(sample_run):
    from mine_clusters.algorithms import styles

    _res, _feedback, params = sample_run
    polys = layer(params["OUTPUT_POLYGONS"])
    renderer = polys.renderer()  # the default style stored in the GeoPackage
    assert renderer.type() == "categorizedSymbol"
    assert renderer.classAttribute() == "primary_commodities"
    labels = [c.label() for c in renderer.categories()]
    assert "Unassigned" in labels and "Coal" in labels
    unassigned = [c for c in renderer.categories() if c.label() == "Unassigned"][0]
    assert unassigned.symbol().color().name() == styles.UNASSIGNED
    # every output's categories are the values in its file (the style is made from the values
    # written, not read back): read here from the file
    for name in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS"):
        out = layer(params[name])
        idx = out.fields().lookupField("primary_commodities")
        in_file = {v for v in out.uniqueValues(idx) if isinstance(v, str) and v}
        categories = [c.value() for c in out.renderer().categories()]
        assert out.renderer().type() == "categorizedSymbol" and len(in_file) > 3
        assert sorted(v for v in categories if v not in (None, "")) == sorted(in_file)
        assert len(categories) == len(in_file) + 1  # and Unassigned
    multi = styles.make_renderer(memory_layer(
        "Polygon", "EPSG:4326", [("primary_commodities", "string")],
        [("POLYGON((0 0,1 0,1 1,0 0))", ["Coal,Iron"])]), "polygons")
    cat = [c for c in multi.categories() if c.label().startswith("Multiple")][0]
    assert cat.symbol().symbolLayerCount() == 2  # dark fill + hatching


# ---- CRS, multipoints, areas, dropped features -----------------------------------------------

POLY_ROWS = [  # two mine polygons 3 km apart near 23.7 N 86.4 E (Jharia coal field), one far away
    ("POLYGON((86.40 23.70, 86.41 23.70, 86.41 23.71, 86.40 23.71, 86.40 23.70))", [1]),
    ("POLYGON((86.44 23.70, 86.45 23.70, 86.45 23.71, 86.44 23.71, 86.44 23.70))", [2]),
    ("POLYGON((87.40 22.70, 87.41 22.70, 87.41 22.71, 87.40 22.71, 87.40 22.70))", [3]),
]
POINT_ROWS = [
    ("MULTIPOINT((86.405 23.705), (86.445 23.705))", [10, "Coal", "Coal"]),
    ("POINT(87.405 22.705)", [11, "Iron,Manganese", "Iron, Manganese"]),
    (None, [12, "Gold", "Gold"]),
]


def small_layers(crs="EPSG:4326"):
    from qgis.core import QgsCoordinateTransform, QgsProject

    polys = memory_layer("Polygon", "EPSG:4326", [("pid", "integer")], POLY_ROWS, "small_polys")
    pts = memory_layer("MultiPoint", "EPSG:4326",
                       [("point_id", "integer"), ("primary_commodity", "string"),
                        ("commodities", "string")], POINT_ROWS, "small_points")
    if crs == "EPSG:4326":
        return polys, pts
    out = []
    for lyr, kind in ((polys, "Polygon"), (pts, "MultiPoint")):
        ct = QgsCoordinateTransform(lyr.crs(), QgsCoordinateReferenceSystem(crs),
                                    QgsProject.instance())
        rows = []
        for f in lyr.getFeatures():
            g = f.geometry()
            if not g.isNull():
                g.transform(ct)
            rows.append((None if g.isNull() else g.asWkt(), f.attributes()))
        fields = [(fl.name(), "integer" if fl.typeName().lower().startswith("int") else "string")
                  for fl in lyr.fields()]
        out.append(memory_layer(kind, crs, fields, rows, lyr.name()))
    return tuple(out)


def test_styles_have_the_categories_of_their_own_rows(run, tmp_path):
    """A cluster of a point alone has no shape: its commodity is a category of the points'
    style, not of the clusters' (the categories are the values each output holds)."""
    polys, _pts = small_layers()
    pts = memory_layer("MultiPoint", "EPSG:4326",
                       [("point_id", "integer"), ("primary_commodity", "string"),
                        ("commodities", "string")],
                       POINT_ROWS + [("POINT(10.0 50.0)", [13, "Lithium", "Lithium"])], "pts")
    res, _feedback = run({"POLYGONS": polys, "POINTS": pts, **outputs(tmp_path)})
    expected = {"OUTPUT_POLYGONS": {"Coal", "Iron,Manganese"},
                "OUTPUT_CLUSTERS": {"Coal", "Iron,Manganese"},
                "OUTPUT_POINTS": {"Coal", "Iron,Manganese", "Lithium"}}
    for name, values in expected.items():
        out = layer(res[name])  # held: the renderer is the layer's
        categories = [c.value() for c in out.renderer().categories()]
        assert sorted(v for v in categories if v not in (None, "")) == sorted(values), name


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32645", "EPSG:3857"])
def test_any_crs_gives_the_same_clusters_and_keeps_the_crs(run, tmp_path, crs):
    polys, pts = small_layers(crs)
    res, feedback = run({"POLYGONS": polys, "POINTS": pts, **outputs(tmp_path)})
    out_polys, out_pts = layer(res["OUTPUT_POLYGONS"]), layer(res["OUTPUT_POINTS"])
    assert out_polys.crs() == QgsCoordinateReferenceSystem(crs)
    assert out_pts.crs() == QgsCoordinateReferenceSystem(crs)
    assert layer(res["OUTPUT_CLUSTERS"]).crs() == QgsCoordinateReferenceSystem(crs)
    got = {f["pid"]: (f["primary_commodities"], f["status"]) for f in out_polys.getFeatures()}
    assert got == {1: ("Coal", "assigned"), 2: ("Coal", "assigned"),
                   3: ("Iron,Manganese", "multiple")}
    # polygons 1 and 2 are ~3 km apart, each holding one part of the same multipoint: both
    # are assigned at h = 1 km already, so E ties at 0 and the smallest h keeps them apart;
    # each part shares the cluster of the polygon it lies in
    cid = {f["pid"]: f["cluster_id"] for f in out_polys.getFeatures()}
    assert len({cid[1], cid[2], cid[3]}) == 3
    part_cids = sorted(f["cluster_id"] for f in out_pts.getFeatures())
    assert part_cids == sorted(cid.values())
    # one output point per part, attributes copied; the empty one is reported
    parts = sorted((f["point_id"], f["primary_commodities"]) for f in out_pts.getFeatures())
    assert parts == [(10, "Coal"), (10, "Coal"), (11, "Iron,Manganese")]
    assert any("Dropped 1 points feature" in w and "3" in w for w in feedback.warnings), \
        feedback.warnings
    # output geometry stays where the input was
    in_ext, out_ext = polys.extent(), out_polys.extent()
    assert out_ext.xMinimum() == pytest.approx(in_ext.xMinimum(), rel=1e-6, abs=1e-6)
    assert out_ext.yMaximum() == pytest.approx(in_ext.yMaximum(), rel=1e-6, abs=1e-6)


def test_invalid_polygons_are_kept_whatever_the_context_says(provider, tmp_path):
    """QGIS's 'skip invalid geometries' setting must not drop features silently."""
    from qgis.core import QgsFeatureRequest, QgsProcessingContext

    rows = POLY_ROWS + [("POLYGON((86.40 23.72, 86.41 23.73, 86.41 23.72, 86.40 23.73, "
                         "86.40 23.72))", [4])]  # a bow-tie: invalid
    polys = memory_layer("Polygon", "EPSG:4326", [("pid", "integer")], rows, "bowtie")
    _p, pts = small_layers()
    context = QgsProcessingContext()
    context.setInvalidGeometryCheck(QgsFeatureRequest.GeometrySkipInvalid)
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    params = {"POLYGONS": polys, "POINTS": pts, **outputs(tmp_path)}
    results, ok = alg.run(params, context, LogFeedback())
    assert ok
    got = sorted(f["pid"] for f in layer(results["OUTPUT_POLYGONS"]).getFeatures())
    assert got == [1, 2, 3, 4]


def test_area_field_is_used(run, tmp_path):
    polys = memory_layer("Polygon", "EPSG:4326", [("pid", "integer"), ("area", "double")],
                         [(w, a + [1e6 * (i + 1)]) for i, (w, a) in enumerate(POLY_ROWS)])
    _polys, pts = small_layers()
    res, _ = run({"POLYGONS": polys, "POINTS": pts, "AREA_FIELD": "area", **outputs(tmp_path)})
    got = {f["pid"]: f["area_m2"] for f in layer(res["OUTPUT_POLYGONS"]).getFeatures()}
    assert got == {1: 1e6, 2: 2e6, 3: 3e6}


def test_fixed_h_max_and_global_method(run, tmp_path):
    polys, pts = small_layers()
    res, _ = run({"POLYGONS": polys, "POINTS": pts, "MAX_THRESHOLD": 5000,
                  **outputs(tmp_path, "fixed")})
    assert res["MAX_THRESHOLD_M"] == 5000.0
    res, _ = run({"POLYGONS": polys, "POINTS": pts, "METHOD": 1, "FORMULA": 1, "WEIGHT": 0.3,
                  **outputs(tmp_path, "global")})
    thresholds = {f["threshold_m"] for f in layer(res["OUTPUT_POLYGONS"]).getFeatures()}
    assert thresholds == {res["GLOBAL_THRESHOLD_M"]}


# ---- errors and cancel ----------------------------------------------------------------------

def test_missing_field_error_sentence(run, tmp_path):
    polys, pts = small_layers()
    with pytest.raises(QgsProcessingException,
                       match=r"The points layer 'small_points' has no 'commodity' field; choose "
                             r"the right column in 'Primary commodity field \(comma lists allowed\)'\."):
        run({"POLYGONS": polys, "POINTS": pts, "PRIMARY_FIELD": "commodity", **outputs(tmp_path)})


def test_empty_layer_error_sentence(run, tmp_path):
    polys, pts = small_layers()
    empty = memory_layer("Polygon", "EPSG:4326", [("pid", "integer")], [], "no_polys")
    with pytest.raises(QgsProcessingException,
                       match=r"The polygons layer 'no_polys' has no features; choose a layer "
                             r"with polygons in it\."):
        run({"POLYGONS": empty, "POINTS": pts, **outputs(tmp_path)})


def test_wrong_geometry_type_error_sentence(run, tmp_path):
    polys, _pts = small_layers()
    lines = memory_layer("LineString", "EPSG:4326", [("primary_commodity", "string")],
                         [("LINESTRING(86.4 23.7, 86.5 23.8)", ["Coal"])], "roads")
    with pytest.raises(QgsProcessingException,
                       match=r"The points layer 'roads' has line geometries, but point "
                             r"geometries are needed; choose a point layer in 'Mine points "
                             r"\(with commodities\)'\."):
        run({"POLYGONS": polys, "POINTS": lines, **outputs(tmp_path)})


def test_bad_weight_from_core_or_qgis(run, tmp_path):
    polys, pts = small_layers()
    with pytest.raises(QgsProcessingException):
        run({"POLYGONS": polys, "POINTS": pts, "WEIGHT": 1.5, **outputs(tmp_path)})


def test_missing_package_error_names_the_install_command(provider, monkeypatch, tmp_path):
    from mine_clusters.algorithms import base

    monkeypatch.setattr(base.deps, "missing", lambda *a, **k: ["shapely>=2.0 (found 1.8.5)"])
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    ok, message = alg.canExecute()
    assert not ok
    assert message.startswith("Mine Clusters needs the Python packages shapely>=2.0 (found 1.8.5)")
    # the command for the platform in use (each platform's command: tests/core/test_deps.py)
    command = base.deps.install_command(["shapely"])
    assert f"install them with: {command} and restart QGIS." in message
    import processing

    polys, pts = small_layers()
    with pytest.raises(QgsProcessingException, match=re.escape(command)):
        processing.run(ALG, {"POLYGONS": polys, "POINTS": pts, **outputs(tmp_path)})


def test_cancel_gives_empty_result(provider, tmp_path):
    from qgis.core import QgsProcessingContext

    polys, pts = small_layers()
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    feedback = LogFeedback()
    feedback.cancel()
    context = QgsProcessingContext()
    params = {"POLYGONS": polys, "POINTS": pts, **outputs(tmp_path)}
    results, ok = alg.run(params, context, feedback)
    assert results == {}
    assert any("Cancelled" in i for i in feedback.infos)
    assert not os.path.exists(params["OUTPUT_CLUSTERS"])


def test_cancel_during_core_gives_empty_result(provider, tmp_path, sample_polygons,
                                              sample_points):
    from qgis.core import QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    feedback = LogFeedback()
    # QgsFeedback.setProgress is not virtual: cancel from its signal once core reports progress
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 30 else None)
    params = {"POLYGONS": sample_polygons, "POINTS": sample_points, **outputs(tmp_path)}
    results, _ok = alg.run(params, QgsProcessingContext(), feedback)
    assert results == {}
    assert not os.path.exists(params["OUTPUT_CLUSTERS"])


def test_commodities_field_default_applies_when_not_given(sample_run, provider, tmp_path):
    """Leaving COMMODITIES_FIELD out (qgis_process, models) uses its default 'commodities'."""
    import processing

    _res, _feedback, params = sample_run
    out, given = str(tmp_path / "polys.gpkg"), str(tmp_path / "given.gpkg")
    processing.run(ALG, {"POLYGONS": params["POLYGONS"], "POINTS": params["POINTS"],
                         "OUTPUT_POLYGONS": out})
    processing.run(ALG, {"POLYGONS": params["POLYGONS"], "POINTS": params["POINTS"],
                         "COMMODITIES_FIELD": "commodities", "OUTPUT_POLYGONS": given})
    default = {f["input_ids"]: f["commodities"] for f in layer(out).getFeatures()}
    explicit = {f["input_ids"]: f["commodities"] for f in layer(given).getFeatures()}
    assert default == explicit
    # and the lists are richer than the primaries somewhere in the sample (ICMM secondaries)
    assert any(f["commodities"] != f["primary_commodities"] for f in layer(out).getFeatures()
               if f["status"] != "unassigned")


@pytest.mark.parametrize("after", ["H_max = ", "polygons"])
def test_cancel_while_writing_leaves_no_output_that_looks_complete(provider, tmp_path, sample_polygons,
                                                                  sample_points, after):
    """Cancelled right before writing, or while writing the polygons: no output file is left."""
    from qgis.core import QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    feedback = LogFeedback()
    if after == "H_max = ":
        feedback.pushInfo = lambda info: (feedback.infos.append(info),  # noqa: E731
                                          feedback.cancel() if info.startswith(after) else None)
    else:  # writing the polygons is the third of four steps (50..75 %)
        feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 50 else None)
    params = {"POLYGONS": sample_polygons, "POINTS": sample_points, **outputs(tmp_path)}
    results, _ok = alg.run(params, QgsProcessingContext(), feedback)
    assert results == {}
    assert any("Cancelled" in i for i in feedback.infos)
    for key in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY",
                "OUTPUT_PLOT", "OUTPUT_HISTOGRAM"):
        assert not os.path.exists(params[key]), key


def test_every_output_in_one_geopackage(sample_run, provider, tmp_path):
    """Four layers written into one GeoPackage (the dialog's "Save to GeoPackage"): no output is
    closed beside the writing of another into the same file, and each layer holds what the run
    with one file per output wrote."""
    import processing

    res0, _feedback, params0 = sample_run
    gpkg = str(tmp_path / "all.gpkg")
    params = {"POLYGONS": params0["POLYGONS"], "POINTS": params0["POINTS"],
              "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": ""}
    for key, table in (("OUTPUT_POLYGONS", "polygons"), ("OUTPUT_POINTS", "points"),
                       ("OUTPUT_CLUSTERS", "clusters"), ("OUTPUT_SENSITIVITY", "sensitivity")):
        params[key] = f"ogr:dbname='{gpkg}' table=\"{table}\" (geom)"
    res = processing.run(ALG, params, feedback=LogFeedback())
    assert res["N_CLUSTERS"] == res0["N_CLUSTERS"]
    for key, table in (("OUTPUT_POLYGONS", "polygons"), ("OUTPUT_POINTS", "points"),
                       ("OUTPUT_CLUSTERS", "clusters"), ("OUTPUT_SENSITIVITY", "sensitivity")):
        rows = rows_by_name(layer(f"{gpkg}|layername={table}"))
        assert rows and rows == rows_by_name(layer(params0[key])), table


def test_file_of_destinations(tmp_path):
    """Which file an output writes to decides whether it may be closed beside other work."""
    from mine_clusters.algorithms.layer_io import file_of as _file_of

    path = str(tmp_path / "a.gpkg")
    norm = os.path.normcase(os.path.abspath(path))
    assert _file_of(path) == norm
    assert _file_of(f"{path}|layername=polygons") == norm
    assert _file_of(f"ogr:dbname='{path}' table=\"polygons\" (geom)") == norm
    for other in ("memory:", "postgres://dbname='x'", None, "", "  "):
        assert _file_of(other) is None


def test_a_sink_that_fails_to_write_is_one_sentence():
    """The writer thread's failure reaches the algorithm: at the next batch or at the close, one
    sentence naming the output and QGIS's reason; nothing more is handed to the failed sink."""
    from mine_clusters.algorithms.layer_io import Sink as _Writer

    class Failing:
        def __init__(self):
            self.calls = 0

        def addFeatures(self, batch, flags):  # noqa: N802
            self.calls += 1
            return False

        def lastError(self):  # noqa: N802
            return "disk full"

    from qgis.core import QgsFields

    for at_close in (False, True):
        sink = Failing()
        writer = _Writer(sink, "/tmp/out.gpkg", QgsFields())
        writer.add([([], None), ([], None)])
        with pytest.raises(QgsProcessingException, match=r"^Could not write /tmp/out.gpkg: disk full$"):
            if at_close:
                writer.close()
            else:
                writer._thread.join(0.5)  # the failed batch is done
                writer.add([([], None)])
                writer.close()
        writer.close(discard=True)
        assert sink.calls == 1


def test_a_geopackage_written_directly_that_fails_is_one_sentence():
    """A failure of the direct GeoPackage writer (SQLite's reason) is the same one sentence, and
    the table is given up (its transaction rolled back)."""
    import sqlite3

    from mine_clusters.algorithms.layer_io import GeoPackageSink

    class Failing:
        def __init__(self):
            self.calls, self.abandoned = 0, False

        def add(self, rows, wkbs):
            self.calls += 1
            raise sqlite3.IntegrityError("UNIQUE constraint failed: out.fid")

        def abandon(self):
            self.abandoned = True

    table = Failing()
    writer = GeoPackageSink(table, "/tmp/out.gpkg")
    with pytest.raises(QgsProcessingException,
                       match=r"^Could not write /tmp/out.gpkg: UNIQUE constraint failed: out.fid$"):
        writer.add([([1], None)])
        writer.add([([1], None)])
    writer.close(discard=True)
    assert table.calls == 1 and table.abandoned


def test_temporary_outputs_as_in_the_dialog(sample_run, provider):
    """Memory layers (the dialog's "Create temporary layer"), filled by the writer threads and
    closed on the algorithm's thread: each holds what the file outputs hold."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingUtils

    res0, _feedback, params0 = sample_run
    context = QgsProcessingContext()
    params = {"POLYGONS": params0["POLYGONS"], "POINTS": params0["POINTS"],
              "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": ""}
    keys = ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY")
    for key in keys:
        params[key] = "TEMPORARY_OUTPUT"
    res = processing.run(ALG, params, feedback=LogFeedback(), context=context)
    assert res["N_CLUSTERS"] == res0["N_CLUSTERS"]
    for key in keys:
        out = res[key]
        mem = out if isinstance(out, QgsVectorLayer) else QgsProcessingUtils.mapLayerFromString(out, context)
        assert mem is not None and mem.providerType() == "memory", key
        assert rows_by_name(mem) and rows_by_name(mem) == rows_by_name(layer(params0[key])), key


def rows_by_name(lyr):
    """Each feature as sorted (field, value) pairs and its WKT, without a GeoPackage's own fid."""
    names_ = [n for n in names(lyr) if n != "fid"]
    return sorted(tuple((n, str(f[n])) for n in names_) + (f.geometry().asWkt(6),)
                  for f in lyr.getFeatures())


def test_runs_as_a_background_task_like_the_dialog(sample_run, provider):
    """The dialog runs an algorithm in a QgsTask thread (QgsProcessingAlgRunnerTask): the writer
    and closing threads work from there too, and the memory outputs hold the file outputs' rows."""
    from qgis.core import QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProcessingUtils
    from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QTimer

    res0, _feedback, params0 = sample_run
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    context, feedback = QgsProcessingContext(), LogFeedback()
    params = {"POLYGONS": params0["POLYGONS"], "POINTS": params0["POINTS"],
              "OUTPUT_POLYGONS": "TEMPORARY_OUTPUT", "OUTPUT_CLUSTERS": "TEMPORARY_OUTPUT",
              "OUTPUT_POINTS": "TEMPORARY_OUTPUT", "OUTPUT_SENSITIVITY": "TEMPORARY_OUTPUT",
              "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": ""}
    task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
    done = {}
    task.executed.connect(lambda ok, results: done.update(ok=ok, results=results))
    QgsApplication.taskManager().addTask(task)
    loop = QEventLoop()
    task.executed.connect(lambda *_: loop.quit())
    QTimer.singleShot(300000, loop.quit)  # never hang the suite: 'ok' is missing then
    if "ok" not in done:
        loop.exec()
    QCoreApplication.processEvents()
    assert done.get("ok"), feedback.infos
    results = done["results"]
    assert results["N_CLUSTERS"] == res0["N_CLUSTERS"]
    for key in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY"):
        mem = QgsProcessingUtils.mapLayerFromString(results[key], context)
        assert mem is not None and mem.providerType() == "memory", key
        assert rows_by_name(mem) == rows_by_name(layer(params0[key])), key
