"""Two runs of each algorithm through `qgis_process` on the same real inputs give byte-identical
output files (layers written as GeoJSON or CSV, plots as PNG, reports as HTML: formats that carry
no time stamp, unlike a GeoPackage), and the same numbers. The one difference allowed is the time
of the run in a report's provenance line ("Made by Mine Clusters ... at 2026-12-04T01:02:03Z")."""
import filecmp
import json
import os
import re
import shutil
import subprocess

import pytest

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed")

DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
COUNTRIES = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
GEM = os.path.join(DATA, "gem-coal-mine-boundaries-v1.0.2", "coal-mine-boundaries-methane.geojson")


def run(qgis_env, alg, params):
    args = [QGIS_PROCESS, "--json", "run", alg, "--"]
    for k, v in params.items():
        args += [f"{k}={x}" for x in v] if isinstance(v, list) else [f"{k}={v}"]
    proc = subprocess.run(args, env=qgis_env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)["results"]


def twice(qgis_env, directory, alg, inputs, outputs):
    """Runs `alg` twice writing to the same file names; returns (numbers, numbers, first, second)
    with the first run's files moved to `first` before the second run writes."""
    out, first = directory / "out", directory / "first"
    results = []
    for k in range(2):
        out.mkdir()
        params = dict(inputs, **{key: str(out / name) for key, name in outputs.items()})
        results.append({k2: v for k2, v in run(qgis_env, alg, params).items()
                        if isinstance(v, (int, float))})
        if k == 0:
            out.rename(first)
    return results[0], results[1], first, out


def assert_same_files(first, second):
    names = sorted(os.listdir(first))
    assert names == sorted(os.listdir(second)) and names
    match, mismatch, errors = filecmp.cmpfiles(first, second, [n for n in names
                                                               if os.path.isfile(first / n)],
                                               shallow=False)
    run_time = re.compile(rb" at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ from ")
    for n in list(mismatch):
        if n.endswith(".html"):
            a, b = ((d / n).read_bytes() for d in (first, second))
            if run_time.sub(b" at TIME from ", a) == run_time.sub(b" at TIME from ", b) \
                    and len(run_time.findall(a)) == 1:
                mismatch.remove(n)
    assert not mismatch and not errors, f"files that differ: {mismatch + errors}"
    for n in names:
        if os.path.isdir(first / n):
            assert_same_files(first / n, second / n)


def test_cluster_twice_gives_the_same_files(qgis_env, tmp_path, sample_polygons, sample_points):
    a, b, first, second = twice(qgis_env, tmp_path, "mineclusters:clusterlocaloptimum",
                                {"POLYGONS": sample_polygons, "POINTS": sample_points},
                                {"OUTPUT_POLYGONS": "polygons.geojson",
                                 "OUTPUT_POINTS": "points.geojson",
                                 "OUTPUT_CLUSTERS": "clusters.geojson",
                                 "OUTPUT_SENSITIVITY": "sensitivity.csv",
                                 "OUTPUT_PLOT": "pareto.png", "OUTPUT_HISTOGRAM": "hist.png"})
    assert a == b and a["N_CLUSTERS"] > 0
    assert_same_files(first, second)


def test_harmonise_twice_gives_the_same_files(qgis_env, tmp_path, sample_polygons, sample_points):
    (tmp_path / "p").mkdir()
    layers = [sample_polygons] + ([GEM + "|geometrytype=Polygon"] if os.path.exists(GEM) else [])
    a, b, first, second = twice(qgis_env, tmp_path / "p", "mineclusters:harmonisepolygons",
                                {"LAYERS": layers},
                                {"OUTPUT": "merged.geojson", "OUTPUT_DROPPED": "dropped.csv"})
    assert a == b
    assert_same_files(first, second)
    (tmp_path / "q").mkdir()
    a, b, first, second = twice(qgis_env, tmp_path / "q", "mineclusters:harmonisepoints",
                                {"LAYERS": [sample_points]},
                                {"OUTPUT": "points.geojson", "OUTPUT_DROPPED": "dropped.csv"})
    assert a == b
    assert_same_files(first, second)


def test_footprint_and_validate_twice_give_the_same_files(qgis_env, tmp_path, sample_polygons,
                                                          sample_points):
    clustered = tmp_path / "clustered.gpkg"
    run(qgis_env, "mineclusters:clusterlocaloptimum",
        {"POLYGONS": sample_polygons, "POINTS": sample_points, "OUTPUT_POLYGONS": clustered})
    inputs = {"INPUT": str(clustered)}
    if os.path.exists(COUNTRIES):
        inputs["COUNTRIES"] = COUNTRIES + "|layername=countries"
    (tmp_path / "f").mkdir()
    a, b, first, second = twice(qgis_env, tmp_path / "f", "mineclusters:footprintsummary", inputs, {
        "OUTPUT_COMMODITY": "commodity.csv", "OUTPUT_COUNTRY": "country.csv",
        "OUTPUT_BIOME": "biome.csv", "OUTPUT_TABLE2": "table2.csv", "OUTPUT_TABLE3": "table3.csv",
        "OUTPUT_GRID": "grid.geojson", "PLOT_COMMODITY": "commodity.png",
        "PLOT_COUNTRY": "country.png", "PLOT_GRID": "grid.png", "REPORT": "report.html"})
    assert a == b and a["TOTAL_AREA_KM2"] > 0
    assert_same_files(first, second)
    if not os.path.exists(GEM):
        return
    (tmp_path / "v").mkdir()
    a, b, first, second = twice(qgis_env, tmp_path / "v", "mineclusters:validate", {
        "INPUT": str(clustered), "REFERENCE": GEM + "|geometrytype=Polygon",
        "REFERENCE_COMMODITIES": "Coal"}, {
        "OUTPUT": "pairs.geojson", "OUTPUT_SUMMARY": "summary.csv", "PLOT": "metrics.png",
        "REPORT": "report.html"})
    assert a == b and a["N_PAIRS"] > 0
    assert_same_files(first, second)
