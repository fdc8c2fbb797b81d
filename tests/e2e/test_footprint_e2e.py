"""End to end: footprint summary and validation through `qgis_process`, as users run them, on the
real sample data clustered by `mineclusters:clusterlocaloptimum`, with Natural Earth countries,
RESOLVE biomes and the GEM coal mine boundaries."""
import csv
import json
import os
import shutil
import subprocess

import pytest

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
COUNTRIES = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
BIOMES = os.path.join(DATA, "resolve-ecoregions2017-simplified", "biomes.shp")
GEM = os.path.join(DATA, "gem-coal-mine-boundaries-v1.0.2", "coal-mine-boundaries-methane.geojson")

pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed")


def qgis_process(env, *args):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def run_json(env, alg, **params):
    proc = qgis_process(env, "--json", "run", alg, "--", *[f"{k}={v}" for k, v in params.items()])
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    return json.loads(proc.stdout)["results"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, make_qgis_env):
    e = make_qgis_env(tmp_path_factory.mktemp("qgis"))
    for alg in ("mineclusters:footprintsummary", "mineclusters:validate"):
        proc = qgis_process(e, "help", alg)
        assert proc.returncode == 0, f"{alg} is not registered in the provider: {proc.stderr[-300:]}"
    return e


@pytest.fixture(scope="module")
def clustered(env, tmp_path_factory, sample_polygons, sample_points):
    """The sample data through `qgis_process run mineclusters:clusterlocaloptimum`, as users
    chain the algorithms; a failure of that step fails the tests that need it."""
    d = tmp_path_factory.mktemp("clustered")
    out = {"OUTPUT_POLYGONS": d / "polygons.gpkg", "OUTPUT_POINTS": d / "points.gpkg",
           "OUTPUT_CLUSTERS": d / "clusters.gpkg", "OUTPUT_SENSITIVITY": d / "sensitivity.gpkg"}
    proc = qgis_process(env, "--json", "run", "mineclusters:clusterlocaloptimum", "--",
                        f"POLYGONS={sample_polygons}", f"POINTS={sample_points}",
                        *[f"{k}={v}" for k, v in out.items()])
    assert proc.returncode == 0, ("qgis_process could not run the cluster algorithm on the "
                                  "sample:\n" + proc.stderr[-2000:] + proc.stdout[-2000:])
    for key, path in out.items():
        assert path.exists(), key
    return {k: str(v) for k, v in out.items()}


def test_help_lists_parameters(env):
    proc = qgis_process(env, "help", "mineclusters:footprintsummary")
    for name in ("INPUT", "POINTS", "COUNTRIES", "COUNTRY_FIELD", "BIOMES", "BIOME_FIELD",
                 "CELL_SIZE", "ALLOCATION", "OUTPUT_COMMODITY", "OUTPUT_COUNTRY", "OUTPUT_BIOME",
                 "OUTPUT_TABLE2", "OUTPUT_TABLE3", "OUTPUT_GRID", "PLOT_COMMODITY", "PLOT_COUNTRY",
                 "PLOT_BIOME", "REPORT", "TOTAL_AREA_KM2", "ASSIGNED_AREA_PCT"):
        assert name in proc.stdout
    proc = qgis_process(env, "help", "mineclusters:validate")
    for name in ("INPUT", "REFERENCE", "REFERENCE_FIELD", "REFERENCE_COMMODITIES", "TABLE",
                 "OUTPUT", "OUTPUT_SUMMARY", "N_PAIRS", "MEAN_JACCARD"):
        assert name in proc.stdout


def test_footprint_summary_with_countries_and_biomes(env, clustered, tmp_path):
    for p in (COUNTRIES, BIOMES):
        if not os.path.exists(p):
            pytest.skip(f"shared data not found: {p}")
    out = {k: tmp_path / f"{k.lower()}.gpkg" for k in (
        "OUTPUT_COMMODITY", "OUTPUT_COUNTRY", "OUTPUT_BIOME", "OUTPUT_TABLE2", "OUTPUT_TABLE3",
        "OUTPUT_GRID")}
    out.update({"PLOT_COMMODITY": tmp_path / "commodity.png",
                "PLOT_COUNTRY": tmp_path / "countries.png", "PLOT_BIOME": tmp_path / "biomes.svg",
                "REPORT": tmp_path / "report.html"})
    res = run_json(env, "mineclusters:footprintsummary", INPUT=clustered["OUTPUT_POLYGONS"],
                   POINTS=clustered["OUTPUT_POINTS"], COUNTRIES=COUNTRIES, COUNTRY_FIELD="name",
                   BIOMES=BIOMES, **out)
    for key, path in out.items():
        assert os.path.exists(path), key
    assert res["N_POLYGONS"] == 302                    # the sample's polygons (SOURCE.md)
    assert 0 < res["ASSIGNED_AREA_PCT"] < 100
    assert res["N_CELLS"] > 1
    tables = str(tmp_path / "report_tables")
    with open(os.path.join(tables, "commodity.csv"), encoding="utf-8") as f:
        com = list(csv.DictReader(f))
    with open(os.path.join(tables, "country.csv"), encoding="utf-8") as f:
        ctry = list(csv.DictReader(f))
    total = res["TOTAL_AREA_KM2"]
    assert sum(float(r["area_km2"]) for r in com) == pytest.approx(total, rel=1e-9)
    assert sum(float(r["area_km2"]) for r in ctry) == pytest.approx(total, rel=1e-9)
    # the sample lies inside India and the biomes: no 'Outside' row from clipping noise
    with open(os.path.join(tables, "biome.csv"), encoding="utf-8") as f:
        biome = list(csv.DictReader(f))
    assert "Outside" not in {r["region"] for r in ctry + biome}
    assert com[0]["commodity"] == "Coal"
    # Table 2: every cluster (distinct ids of the clustered polygons and points) and point
    from osgeo import ogr
    ids = {}
    for key in ("OUTPUT_POLYGONS", "OUTPUT_POINTS"):
        ds = ogr.Open(clustered[key])
        ids[key] = [f.GetField("cluster_id") for f in ds.GetLayer(0)]
        ds = None
    with open(os.path.join(tables, "table2.csv"), encoding="utf-8") as f:
        t2 = {r["status"]: r for r in csv.DictReader(f)}
    assert int(t2["Total"]["n_clusters"]) == len(set(ids["OUTPUT_POLYGONS"])
                                                 | set(ids["OUTPUT_POINTS"]))
    assert int(t2["Total"]["n_points"]) == len(ids["OUTPUT_POINTS"])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Table 2" in page and "India" in page


def test_defaults_only(env, clustered, tmp_path):
    """INPUT and the outputs alone are enough (no countries, biomes or points)."""
    res = run_json(env, "mineclusters:footprintsummary", INPUT=clustered["OUTPUT_POLYGONS"],
                   OUTPUT_GRID=tmp_path / "grid.gpkg", REPORT=tmp_path / "r.html")
    assert os.path.exists(tmp_path / "grid.gpkg") and res["TOTAL_AREA_KM2"] > 0


def test_error_sentence(env, sample_polygons, tmp_path):
    proc = qgis_process(env, "run", "mineclusters:footprintsummary", "--",
                        f"INPUT={sample_polygons}", f"OUTPUT_GRID={tmp_path / 'g.gpkg'}")
    assert proc.returncode != 0
    assert "has no 'cluster_id' field" in proc.stdout + proc.stderr


def _intersecting_pairs(polygons_gpkg, reference_geojson):
    """Pairs (clustered polygon, reference polygon) that intersect, by shapely: an independent count."""
    import shapely
    from osgeo import ogr
    ds = ogr.Open(str(polygons_gpkg))
    ours = [shapely.from_wkb(bytes(f.GetGeometryRef().ExportToWkb())) for f in ds.GetLayer(0)]
    with open(reference_geojson, encoding="utf-8") as fh:
        refs = [shapely.from_geojson(json.dumps(f["geometry"])) for f in json.load(fh)["features"]
                if f.get("geometry") and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    tree = shapely.STRtree(shapely.make_valid(refs))
    return len(tree.query(shapely.make_valid(ours), predicate="intersects")[0])


def test_validate_against_gem(env, clustered, tmp_path):
    if not os.path.exists(GEM):
        pytest.skip("shared data not found")
    res = run_json(env, "mineclusters:validate", INPUT=clustered["OUTPUT_POLYGONS"],
                   REFERENCE=GEM + "|geometrytype=Polygon", REFERENCE_COMMODITIES="Coal",
                   OUTPUT=tmp_path / "pairs.gpkg", OUTPUT_SUMMARY=tmp_path / "table4.csv",
                   REPORT=tmp_path / "v.html", PLOT=tmp_path / "v.png")
    expected = _intersecting_pairs(clustered["OUTPUT_POLYGONS"], GEM)
    assert expected > 10 and res["N_PAIRS"] == expected   # every intersecting pair, counted apart
    with open(tmp_path / "table4.csv", encoding="utf-8") as f:
        t4 = {r["statistic"]: r for r in csv.DictReader(f)}
    counts = t4["Count"]
    assert sum(float(counts[k]) for k in ("full_match", "partial_match", "no_match")) == expected
    assert res["FULL_MATCH_PCT"] == pytest.approx(100 * float(counts["full_match"]) / expected)
    assert os.path.exists(tmp_path / "v.png")
