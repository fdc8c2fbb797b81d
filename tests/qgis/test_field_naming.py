"""Input attributes are data (issue 15, point 1): the cluster outputs keep every input field as it
is, and a field the plugin adds under a name the input already has is written as ``mc_<name>``
(core.schema.output_name), said in the log; footprint, validate and the styles read it by the
same rule. On the real data: ICMM's Vale Itabira mine (ICMM12808), harmonised, keeps its own
commodities ("Iron") beside its cluster's, and the harmonised polygons keep their area_m2."""
import os
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProject, QgsVectorLayer
from qgis_helpers import DATA, LogFeedback, memory_layer

ICMM = Path(DATA) / "icmm-global-mining-dataset-2025" / "mines.geojson"
MAUS_BRAZIL = Path(DATA) / "maus2020-v1-india-brazil" / "brazil_polygon_with_grId.geojson"
#: the Quadrilátero Ferrífero around Itabira, Minas Gerais (xmin, xmax, ymin, ymax)
ITABIRA = "-43.45,-43.05,-19.85,-19.45 [EPSG:4326]"


def run(alg, params):
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = LogFeedback()
    return processing.run(alg, params, context=context, feedback=feedback), feedback


def features(path):
    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid(), path
    return layer, [{k: f[k] for k in layer.fields().names()} for f in layer.getFeatures()]


@pytest.fixture(scope="module")
def itabira(provider, tmp_path_factory):
    if not (ICMM.exists() and MAUS_BRAZIL.exists()):
        pytest.skip("the shared real data (ICMM, Maus Brazil) are not here")
    d = tmp_path_factory.mktemp("itabira")
    run("mineclusters:harmonisepoints", {
        "LAYERS": [str(ICMM)], "SOURCE_NAMES": "ICMM", "EXTENT": ITABIRA,
        "OUTPUT": str(d / "points.gpkg")})
    run("mineclusters:harmonisepolygons", {
        "LAYERS": [str(MAUS_BRAZIL)], "SOURCE_NAMES": "Maus", "EXTENT": ITABIRA,
        "OUTPUT": str(d / "polygons.gpkg")})
    res, log = run("mineclusters:clusterlocaloptimum", {
        "POLYGONS": str(d / "polygons.gpkg"), "POINTS": str(d / "points.gpkg"),
        "OUTPUT_POLYGONS": str(d / "cp.gpkg"), "OUTPUT_POINTS": str(d / "cpts.gpkg"),
        "OUTPUT_CLUSTERS": str(d / "clusters.gpkg"), "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": ""})
    return d, res, log


def test_the_points_keep_their_own_commodities(itabira):
    d, _res, log = itabira
    _layer, inputs = features(d / "points.gpkg")
    layer, outputs = features(d / "cpts.gpkg")
    names = layer.fields().names()
    # every input field, unchanged, then the cluster's fields; 'commodities' was taken
    # ('fid' is the GeoPackage's feature id: the input's is kept as input_fid, the points of a
    # multipoint sharing one)
    assert [n for n in names if n not in ("fid", "input_fid")][:len(inputs[0]) - 1] == \
        [n for n in inputs[0] if n != "fid"]
    assert "mc_commodities" in names and "cluster_id" in names and "mc_cluster_id" not in names
    by_id = {r["source_id"]: r for r in outputs}
    own = {r["source_id"]: r for r in inputs}
    assert len(by_id) == len(own)
    for sid, row in by_id.items():
        assert row["input_fid"] == own[sid]["fid"]
        for field, value in own[sid].items():
            if field != "fid":
                assert row[field] == value, (sid, field)
    vale = by_id["ICMM12808"]
    assert vale["commodities"] == "Iron"  # the mine's own list, as harmonised
    _cl, clusters = features(d / "clusters.gpkg")
    cluster = [c for c in clusters if c["cluster_id"] == vale["cluster_id"]]
    if cluster:  # the cluster's list, from every member point (a cluster holding polygons)
        assert vale["mc_commodities"] == cluster[0]["commodities"]
    assert set(vale["mc_commodities"].split(",")) >= {"Iron"}
    assert any("its own fields are written as commodities -> mc_commodities" in line
               for line in log.infos), log.infos


def test_the_polygons_keep_their_area_and_footprint_reads_the_cluster_s(itabira):
    d, _res, log = itabira
    _layer, inputs = features(d / "polygons.gpkg")
    layer, outputs = features(d / "cp.gpkg")
    assert "area_m2" in layer.fields().names() and "mc_area_m2" in layer.fields().names()
    own = {r["polygon_id"]: r["area_m2"] for r in inputs}
    assert {r["polygon_id"]: r["area_m2"] for r in outputs} == own  # unchanged
    # one area model: the cluster measures each polygon as harmonise did, bit for bit
    assert all(r["mc_area_m2"] == r["area_m2"] for r in outputs)
    assert any("area_m2 -> mc_area_m2" in line for line in log.infos), log.infos
    res, _log = run("mineclusters:footprintsummary", {
        "INPUT": str(d / "cp.gpkg"), "CELL_SIZE": 0, "OUTPUT_COMMODITY": str(d / "c.csv")})
    assert res["TOTAL_AREA_KM2"] * 1e6 == pytest.approx(sum(r["mc_area_m2"] for r in outputs),
                                                         rel=1e-12)
    assert res["N_POLYGONS"] == len(outputs)


def test_a_second_run_on_its_own_output_prefixes_again(provider, tmp_path):
    """Clustering the clustered output: the first run's fields stay, the second's become
    mc_...; footprint and the styles take the most recent (the highest prefix)."""
    from mine_clusters.algorithms import styles

    polys = memory_layer("Polygon", "EPSG:4326", [("commodities", "string")],
                         [("POLYGON((0 0, 0.01 0, 0.01 0.01, 0 0.01, 0 0))", ["mine's own"])],
                         name="own")
    pts = memory_layer("Point", "EPSG:4326", [("primary_commodity", "string")],
                       [("POINT(0.005 0.02)", ["Gold"])], name="pts")
    first = str(tmp_path / "first.gpkg")
    run("mineclusters:clusterlocaloptimum", {"POLYGONS": polys, "POINTS": pts,
                                             "OUTPUT_POLYGONS": first, "OUTPUT_PLOT": "",
                                             "OUTPUT_HISTOGRAM": ""})
    second = str(tmp_path / "second.gpkg")
    pts2 = memory_layer("Point", "EPSG:4326", [("primary_commodity", "string")],
                        [("POINT(0.005 0.02)", ["Copper"])], name="pts2")
    run("mineclusters:clusterlocaloptimum", {"POLYGONS": first, "POINTS": pts2,
                                             "OUTPUT_POLYGONS": second, "OUTPUT_PLOT": "",
                                             "OUTPUT_HISTOGRAM": ""})
    layer, (row,) = features(second)
    assert row["commodities"] == "mine's own"
    assert row["mc_commodities"] == "Gold" and row["mc2_commodities"] == "Copper"
    assert row["primary_commodities"] == "Gold" and row["mc_primary_commodities"] == "Copper"
    res, _log = run("mineclusters:footprintsummary", {
        "INPUT": second, "CELL_SIZE": 0, "OUTPUT_COMMODITY": str(tmp_path / "c.csv")})
    with open(tmp_path / "c.csv", encoding="utf-8") as fh:
        assert "Copper" in fh.read()
    assert styles.make_renderer(layer, "polygons").classAttribute() == "mc_primary_commodities"
    assert os.path.exists(second)
