"""End to end: `qgis_process` as users run it, with a throw-away profile, on the real sample data,
and the shipped Graphical Modeler model."""
import csv
import glob
import json
import math
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALG = "mineclusters:clusterlocaloptimum"
NUMBERS = ["MAX_THRESHOLD_M", "GLOBAL_THRESHOLD_M", "AREA_UNASSIGNED_PCT", "AREA_MULTI_PCT",
           "N_CLUSTERS"]
# Debian 12's `qgis_process` wrapper prints --noversioncheck errors: prefer the binary.
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")

pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed")


def qgis_process(env, *args, timeout=600):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_algorithm_is_listed_with_its_parameters(qgis_env):
    proc = qgis_process(qgis_env, "help", ALG)
    assert proc.returncode == 0, proc.stderr
    for name in ("POLYGONS", "POINTS", "PRIMARY_FIELD", "COMMODITIES_FIELD", "AREA_FIELD",
                 "H_LIMIT", "THRESHOLD_STEP", "MAX_THRESHOLD", "METHOD", "WEIGHT", "FORMULA",
                 "OUTPUT_POLYGONS", "OUTPUT_POINTS", "OUTPUT_CLUSTERS", "OUTPUT_SENSITIVITY",
                 "OUTPUT_PLOT", "OUTPUT_HISTOGRAM", "OUTPUT_REPORT", *NUMBERS):
        assert name in proc.stdout
    assert "Cluster mine features (local optimum)" in proc.stdout
    # the defaults, which qgis_process help does not print itself, close each tooltip
    assert "Default: 20000." in proc.stdout and "Default: 0 (Local optimum" in proc.stdout


def test_run_json_minimal_parameters(qgis_env, tmp_path, sample_polygons, sample_points):
    out = tmp_path / "polys.gpkg"
    proc = qgis_process(qgis_env, "--json", "run", ALG, "--", f"POLYGONS={sample_polygons}",
                        f"POINTS={sample_points}", f"OUTPUT_POLYGONS={out}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    results = doc["results"]
    for name in NUMBERS:
        assert isinstance(results[name], (int, float)) and math.isfinite(results[name]), name
    assert results["N_CLUSTERS"] > 0
    assert results["OUTPUT_POLYGONS"] == str(out) and out.stat().st_size > 0
    assert any("clusters" in line for line in doc["log"]["info"])


def test_run_json_all_outputs_match_processing_numbers(qgis_env, tmp_path, sample_polygons,
                                                       sample_points):
    outs = {"OUTPUT_POLYGONS": tmp_path / "p.gpkg", "OUTPUT_POINTS": tmp_path / "pt.gpkg",
            "OUTPUT_CLUSTERS": tmp_path / "c.gpkg", "OUTPUT_SENSITIVITY": tmp_path / "s.csv",
            "OUTPUT_PLOT": tmp_path / "pareto.svg", "OUTPUT_HISTOGRAM": tmp_path / "h.png",
            "OUTPUT_REPORT": tmp_path / "report.html"}
    proc = qgis_process(qgis_env, "--json", "run", ALG, "--", f"POLYGONS={sample_polygons}",
                        f"POINTS={sample_points}", "PRIMARY_FIELD=primary_commodity",
                        "COMMODITIES_FIELD=commodities", "H_LIMIT=20000", "THRESHOLD_STEP=1000",
                        "METHOD=0", "WEIGHT=0.5", "FORMULA=0",
                        *[f"{k}={v}" for k, v in outs.items()])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    for key, path in outs.items():
        assert results[key] == str(path)
        assert path.stat().st_size > 0, key
    assert "<svg" in outs["OUTPUT_PLOT"].read_text(encoding="utf-8")[:2000]
    report = outs["OUTPUT_REPORT"].read_text(encoding="utf-8")
    assert report.count('<img src="data:image/svg+xml;base64,') == 1  # the Pareto plot file
    assert report.count('<img src="data:image/png;base64,') == 1  # the histogram file
    assert f"<td>{results['N_CLUSTERS']:,}</td>" in report.replace(' class=""', "")
    rows = outs["OUTPUT_SENSITIVITY"].read_text(encoding="utf-8").splitlines()
    assert rows[0].split(",") == ["curve", "threshold_m", "area_unassigned_pct",
                                  "area_multi_pct", "distance", "chosen"]
    assert len(rows) == 1 + 20 + 20  # global curve over 20 h, local curve over 20 H_max
    chosen = [r.split(",") for r in rows[1:] if r.split(",")[-1].strip('"') == "1"]
    assert sorted((c[0], float(c[1])) for c in chosen) == sorted(
        [("global", results["GLOBAL_THRESHOLD_M"]), ("local", results["MAX_THRESHOLD_M"])])
    local = [c for c in chosen if c[0] == "local"][0]
    assert float(local[2]) == pytest.approx(results["AREA_UNASSIGNED_PCT"], rel=1e-9)
    assert float(local[3]) == pytest.approx(results["AREA_MULTI_PCT"], abs=1e-9)


def test_error_sentence_reaches_the_user(qgis_env, tmp_path, sample_polygons, sample_points):
    proc = qgis_process(qgis_env, "run", ALG, "--", f"POLYGONS={sample_polygons}",
                        f"POINTS={sample_points}", "PRIMARY_FIELD=no_such_field",
                        f"OUTPUT_POLYGONS={tmp_path / 'x.gpkg'}")
    assert proc.returncode != 0
    assert ("The points layer 'mine_points' has no 'no_such_field' field; choose the right "
            "column in 'Primary commodity field (comma lists allowed)'.") in proc.stdout + proc.stderr
    assert "{" not in proc.stdout  # without --json: no JSON


def test_failed_json_run_prints_a_json_object(qgis_env, tmp_path, sample_polygons, sample_points):
    """qgis_process --json prints nothing for a failed run; the plugin prints the failure's own
    object (the error sentence, the algorithm, the inputs, the provenance) and the exit code
    stays non-zero. A successful run prints qgis_process's object alone (the tests above)."""
    proc = qgis_process(qgis_env, "--json", "run", ALG, "--", f"POLYGONS={sample_polygons}",
                        f"POINTS={sample_points}", "PRIMARY_FIELD=no_such_field",
                        f"OUTPUT_POLYGONS={tmp_path / 'x.gpkg'}")
    assert proc.returncode != 0
    doc = json.loads(proc.stdout)   # one object, nothing else on stdout
    sentence = ("The points layer 'mine_points' has no 'no_such_field' field; choose the right "
                "column in 'Primary commodity field (comma lists allowed)'.")
    assert doc["ok"] is False and doc["error"] == sentence and doc["results"] == {}
    assert doc["algorithm_details"]["id"] == ALG
    assert doc["inputs"]["PRIMARY_FIELD"] == "no_such_field"
    rec = doc["provenance"]
    assert rec["plugin_version"] == doc["plugin_version"] and rec["algorithm"] == ALG
    assert {i["parameter"]: i["features"] for i in rec["inputs"]} == {"POLYGONS": 302, "POINTS": 335}
    assert sentence in proc.stderr
    assert not (tmp_path / "x.gpkg").exists()


def test_shipped_cluster_model_runs(qgis_env, tmp_path, sample_polygons, sample_points):
    model = os.path.join(ROOT, "resources", "mine_clusters.model3")
    outs = {"cluster:clustered_polygons": tmp_path / "mp.gpkg",
            "cluster:clustered_points": tmp_path / "mpt.gpkg",
            "cluster:clusters": tmp_path / "mc.gpkg",
            "cluster:sensitivity": tmp_path / "ms.csv",
            "cluster:pareto_plot": tmp_path / "mpareto.png",
            "cluster:links": tmp_path / "mlinks.gpkg",
            "cluster:concordance": tmp_path / "mconc.csv"}
    proc = qgis_process(qgis_env, "--json", "run", model, "--", f"polygons={sample_polygons}",
                        f"points={sample_points}", *[f"{k}={v}" for k, v in outs.items()])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    for key, path in outs.items():
        assert results[key] == str(path)
        assert path.stat().st_size > 0, key
    # the concordance: one row per feature (302 polygons, 335 points), a column per threshold
    with open(outs["cluster:concordance"], encoding="utf-8") as fh:
        conc = list(csv.DictReader(fh))
    assert len(conc) == 302 + 335
    assert {"cluster_1000", "cluster_20000", "primary_20000"} <= set(conc[0])
    # the links: k - 1 per cluster of k features (as many as features minus clusters)
    from osgeo import ogr
    ds = ogr.Open(str(outs["cluster:links"]))
    n_links = ds.GetLayer(0).GetFeatureCount()
    ds = None
    assert n_links == len(conc) - _final_clusters(outs["cluster:clustered_polygons"],
                                                  outs["cluster:clustered_points"]) > 0


def _final_clusters(*paths):
    """The number of final clusters among the features of the clustered layers."""
    from osgeo import ogr

    ids = set()
    for path in paths:
        ds = ogr.Open(str(path))
        ids |= {f.GetField("cluster_id") for f in ds.GetLayer(0)}
        ds = None
    return len(ids)


def test_shipped_pipeline_model_runs(qgis_env, tmp_path, sample_polygons, sample_points):
    """harmonise polygons + points -> cluster -> footprint summary, as one model, with the
    countries and biomes: the report fills every section from its inputs (India, the biomes,
    Table 2 with the clustered points) and embeds its plots though no plot file is named."""
    data = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                          os.path.join(os.path.dirname(ROOT), "shared", "data"))
    countries = os.path.join(data, "natural-earth-countries", "world-atlas-2.0.2",
                             "countries-10m.json")
    biomes = os.path.join(data, "resolve-ecoregions2017-simplified", "biomes.shp")
    if not (os.path.exists(countries) and os.path.exists(biomes)):
        pytest.skip("shared data not found: " + data)
    model = os.path.join(ROOT, "resources", "mine_clusters_pipeline.model3")
    outs = {"cluster:clustered_polygons": tmp_path / "pp.gpkg",
            "cluster:clustered_points": tmp_path / "ppoints.gpkg",
            "cluster:pareto_plot": tmp_path / "ppareto.png",
            "footprint:area_by_commodity": tmp_path / "by_commodity.csv",
            "footprint:area_by_country": tmp_path / "by_country.csv",
            "footprint:table2": tmp_path / "table2.csv",
            "footprint:report": tmp_path / "report.html",
            "footprint:mine_area_raster": tmp_path / "mine_area.tif",
            "cluster:links": tmp_path / "links.gpkg"}
    named = []
    for key, path in outs.items():                  # both spellings: 3.22 and 3.40+
        named += [f"{key}={path}", f"{key.split(':')[1]}={path}"]
    proc = qgis_process(qgis_env, "--json", "run", model, "--",
                        f"polygon_layers={sample_polygons}", f"point_layers={sample_points}",
                        f"countries={countries}|layername=countries", "country_field=name",
                        f"biomes={biomes}", *named)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    for key, path in outs.items():
        assert results.get(key, results.get(key.split(":")[1])) == str(path), key
        assert path.stat().st_size > 0, key
    rows = outs["footprint:area_by_commodity"].read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("commodity,")
    assert any(r.startswith("Coal,") for r in rows[1:])
    country = outs["footprint:area_by_country"].read_text(encoding="utf-8").splitlines()
    assert {r.split(",")[0] for r in country[1:]} == {"India"}  # no "Outside"
    with open(outs["footprint:table2"], encoding="utf-8") as fh:
        table2 = {r["status"]: r for r in csv.DictReader(fh)}
    assert int(table2["Total"]["n_points"]) > 0  # the clustered points reached the footprint
    page = outs["footprint:report"].read_text(encoding="utf-8")
    assert "Area by country and commodity" in page and "India" in page
    assert "Area by biome and commodity" in page and "Subtropical Dry Broadleaf Forests" in page
    assert page.count("data:image/png;base64,") == 4  # commodity, country, biome, grid
    # the raster's bands sum to the commodity table (km²), band by band
    from osgeo import gdal
    with open(outs["footprint:area_by_commodity"], encoding="utf-8") as fh:
        areas = {r["commodity"]: float(r["area_km2"]) for r in csv.DictReader(fh)}
    ds = gdal.Open(str(outs["footprint:mine_area_raster"]))
    bands = {ds.GetRasterBand(b).GetDescription(): float(ds.GetRasterBand(b).ReadAsArray().sum())
             for b in range(1, ds.RasterCount + 1)}
    ds = None
    assert bands.keys() == areas.keys()
    assert all(bands[k] == pytest.approx(areas[k], rel=1e-6) for k in areas)


def test_every_shipped_model_is_tested():
    shipped = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "resources",
                                                                         "*.model3")))
    assert shipped == ["mine_clusters.model3", "mine_clusters_pipeline.model3"]
