"""One geometry rule through every algorithm (issue 13): the odd polygons of
tests/core/test_one_geometry_rule.py, handed to harmonise, cluster, footprint and validate as QGIS
layers, get the same decision from each: refused with the same sentence (after the feature's
name), or kept with the same area (harmonise and cluster bit for bit), harmonise writing the
shape the rule makes and validate pairing it where the rule puts it."""
import importlib.util
import os

import pytest
import shapely
from qgis.core import QgsFeature, QgsGeometry, QgsProcessingException, QgsVectorLayer
from qgis_helpers import LogFeedback

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "one_geometry_rule", os.path.join(HERE, "..", "core", "test_one_geometry_rule.py"))
RULE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(RULE)

#: a typed QGIS polygon layer holds no collection: that case stays with the core test
CASES = sorted(n for n, (g, _e) in RULE.POLYGONS.items() if g.geom_type != "GeometryCollection")


def layer(kind, fields, rows, name):
    """A memory layer in EPSG:4326 of (shapely geometry, attributes) rows, the geometry handed
    over as WKB (as a provider hands it: NaN and out-of-range coordinates included)."""
    spec = f"{kind}?crs=EPSG:4326" + "".join(f"&field={n}:{t}" for n, t in fields)
    lay = QgsVectorLayer(spec, name, "memory")
    assert lay.isValid()
    feats = []
    for geom, attrs in rows:
        f = QgsFeature(lay.fields())
        g = QgsGeometry()
        g.fromWkb(shapely.to_wkb(geom, output_dimension=2))
        f.setGeometry(g)
        f.setAttributes(list(attrs))
        feats.append(f)
    assert lay.dataProvider().addFeatures(feats)[0]
    return lay


def rows(path):
    out = QgsVectorLayer(path, "out", "ogr")
    assert out.isValid(), path
    return [(f.geometry(), {k: f[k] for k in out.fields().names()}) for f in out.getFeatures()]


def decide(fn):
    """("kept", value) or ("refused", the sentence from ' has ' on)."""
    import processing  # noqa: F401  (the provider is registered by the fixture)

    try:
        return "kept", fn()
    except QgsProcessingException as exc:
        text = str(exc).strip().splitlines()[-1]
        assert " has " in text, text
        return "refused", text[text.index(" has "):]


@pytest.mark.parametrize("name", CASES)
def test_every_algorithm_takes_an_odd_polygon_the_same_way(name, provider, tmp_path):
    import processing

    g, expected = RULE.POLYGONS[name]
    polys = layer("Polygon", [("cluster_id", "integer"), ("primary_commodities", "string")],
                  [(g, [1, "Gold"])], "odd")

    def harmonise():
        out = str(tmp_path / "harmonised.gpkg")
        processing.run("mineclusters:harmonisepolygons", {"LAYERS": [polys], "OUTPUT": out},
                       feedback=LogFeedback())
        (geom, attrs), = rows(out)
        return geom, attrs["area_m2"]

    def cluster():
        points = layer("Point", [("primary_commodity", "string")],
                       [(shapely.Point(0.5, 0.5), ["Gold"])], "pts")
        out = str(tmp_path / "clustered.gpkg")
        processing.run("mineclusters:clusterlocaloptimum", {
            "POLYGONS": polys, "POINTS": points, "OUTPUT_POLYGONS": out, "OUTPUT_PLOT": "",
            "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": ""}, feedback=LogFeedback())
        (geom, attrs), = rows(out)
        return geom, attrs["area_m2"]

    def footprint():
        res = processing.run("mineclusters:footprintsummary", {
            "INPUT": polys, "CELL_SIZE": 0, "OUTPUT_COMMODITY": str(tmp_path / "c.csv")},
            feedback=LogFeedback())
        return None, res["TOTAL_AREA_KM2"] * 1e6

    def validate():
        shape = shapely.normalize(expected) if not isinstance(expected, str) else shapely.box(0, 0, 1, 1)
        far = shapely.transform(shape, lambda c: c + [1.0, 0.0])
        ref = layer("Polygon", [("commodity", "string")], [(shape, ["Gold"]), (far, ["Gold"])], "ref")
        out = str(tmp_path / "pairs.gpkg")
        processing.run("mineclusters:validate", {
            "INPUT": polys, "REFERENCE": ref, "REFERENCE_FIELD": "commodity", "OUTPUT": out},
            feedback=LogFeedback())
        return [attrs["reference_id"] for _g, attrs in rows(out)]

    got = {op: decide(fn) for op, fn in (("harmonise", harmonise), ("cluster", cluster),
                                         ("footprint", footprint), ("validate", validate))}
    if isinstance(expected, str):
        assert {d[0] for d in got.values()} == {"refused"}, got
        sentences = {d[1] for d in got.values()}
        assert len(sentences) == 1, sentences  # word for word, after the layer and feature
        assert expected in sentences.pop()
        return
    assert {d[0] for d in got.values()} == {"kept"}, got
    reference_area = RULE.polygon_area_m2([expected])[0]
    assert got["harmonise"][1][1] == got["cluster"][1][1], got  # bit for bit
    assert got["cluster"][1][1] == pytest.approx(reference_area, rel=1e-12)
    assert got["footprint"][1][1] == pytest.approx(reference_area, rel=1e-12)
    # harmonise writes the shape the rule made (the cluster output keeps the input's geometry)
    def multi(x):
        return shapely.normalize(shapely.multipolygons(shapely.get_parts(x)))

    shape = shapely.from_wkb(bytes(got["harmonise"][1][0].asWkb()))
    assert multi(shape).equals_exact(multi(expected), 1e-9), shape
    assert got["validate"][1] == [1], got  # paired with the reference where the rule puts it
