"""Every run records what made it: the plugin and QGIS versions, the algorithm, its parameters
and its input layers (name, source, feature count), in the PROVENANCE output, in each report's
header and in the metadata of each GeoPackage output."""
import configparser
import json
import os

import pytest

pytest.importorskip("qgis.core")

from qgis.core import Qgis, QgsVectorLayer  # noqa: E402

from qgis_helpers import GEM, LogFeedback  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def version():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    return parser.get("general", "version")


def prun(alg, params):
    import processing

    return processing.run(alg, params, feedback=LogFeedback())


def feature_count(path):
    lyr = QgsVectorLayer(path, "x", "ogr")
    assert lyr.isValid(), path
    return lyr.featureCount()


def check(results, alg_id, inputs, gpkgs, reports=()):
    rec = json.loads(results["PROVENANCE"])
    assert rec["plugin"] == "Mine Clusters" and rec["plugin_version"] == version()
    assert rec["qgis_version"] == Qgis.version() and rec["algorithm"] == alg_id
    assert rec["run_at"].endswith("Z")
    got = sorted((i["parameter"], os.path.normpath(i["source"].split("|")[0]), i["features"])
                 for i in rec["inputs"])
    assert got == sorted((p, os.path.normpath(s), feature_count(s)) for p, s in inputs)
    assert all(not isinstance(v, dict) for v in rec["parameters"].values())
    for path in gpkgs:
        md = QgsVectorLayer(path, "x", "ogr").metadata()
        assert md.abstract().startswith(f"Made by Mine Clusters {version()} ({alg_id})"), path
        assert json.loads(md.history()[-1]) == rec, path
    for path in reports:
        page = open(path, encoding="utf-8").read()
        assert f"Made by Mine Clusters {version()} ({alg_id})" in page, path
    return rec


def test_every_algorithm_records_its_provenance(provider, sample_polygons, sample_points,
                                                 tmp_path):
    d = tmp_path
    out = {"OUTPUT_POLYGONS": str(d / "p.gpkg"), "OUTPUT_POINTS": str(d / "pt.gpkg"),
           "OUTPUT_CLUSTERS": str(d / "c.gpkg"), "OUTPUT_SENSITIVITY": str(d / "s.gpkg"),
           "OUTPUT_REPORT": str(d / "cluster.html")}
    res = prun("mineclusters:clusterlocaloptimum",
               dict(POLYGONS=sample_polygons, POINTS=sample_points, WEIGHT=0.4, **out))
    rec = check(res, "mineclusters:clusterlocaloptimum",
                [("POLYGONS", sample_polygons), ("POINTS", sample_points)],
                [out[k] for k in ("OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS",
                                  "OUTPUT_SENSITIVITY")], [out["OUTPUT_REPORT"]])
    assert rec["parameters"]["WEIGHT"] == 0.4 and rec["parameters"]["H_LIMIT"] == 20000.0
    assert "OUTPUT_POLYGONS" not in rec["parameters"]

    fp = {"REPORT": str(d / "fp.html"), "OUTPUT_COMMODITY": str(d / "fc.gpkg")}
    res = prun("mineclusters:footprintsummary",
               dict(INPUT=out["OUTPUT_POLYGONS"], POINTS=out["OUTPUT_POINTS"], CELL_SIZE=0, **fp))
    check(res, "mineclusters:footprintsummary",
          [("INPUT", out["OUTPUT_POLYGONS"]), ("POINTS", out["OUTPUT_POINTS"])],
          [fp["OUTPUT_COMMODITY"]], [fp["REPORT"]])

    hp = {"OUTPUT": str(d / "hp.gpkg")}
    res = prun("mineclusters:harmonisepolygons", dict(LAYERS=[sample_polygons], **hp))
    check(res, "mineclusters:harmonisepolygons", [("LAYERS", sample_polygons)], [hp["OUTPUT"]])
    hpt = {"OUTPUT": str(d / "hpt.gpkg")}
    res = prun("mineclusters:harmonisepoints", dict(
        LAYERS=[sample_points], PRIMARY_FIELDS="primary_commodity", **hpt))
    rec = check(res, "mineclusters:harmonisepoints", [("LAYERS", sample_points)], [hpt["OUTPUT"]])
    assert rec["parameters"]["PRIMARY_FIELDS"] == "primary_commodity"

    if os.path.exists(GEM):
        va = {"OUTPUT": str(d / "pairs.gpkg"), "REPORT": str(d / "v.html")}
        res = prun("mineclusters:validate", dict(
            INPUT=out["OUTPUT_POLYGONS"], REFERENCE=GEM, REFERENCE_COMMODITIES="Coal", **va))
        rec = check(res, "mineclusters:validate",
                    [("INPUT", out["OUTPUT_POLYGONS"]), ("REFERENCE", GEM)], [va["OUTPUT"]],
                    [va["REPORT"]])
        assert rec["parameters"]["REFERENCE_COMMODITIES"] == "Coal"
