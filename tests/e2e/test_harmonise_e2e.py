"""End to end: the harmonise algorithms through `qgis_process`, on the real shared sources as
they are (GeoJSON, GeoPackage, latin-1 CSV through the delimited-text provider, KML), and a
model harmonise -> cluster."""
import collections
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
DATA = Path(os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                           Path(__file__).resolve().parents[3] / "shared" / "data"))
POLYS = "mineclusters:harmonisepolygons"
POINTS = "mineclusters:harmonisepoints"

pytestmark = [
    pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed"),
    pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not available"),
]

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
def env(qgis_env):
    """A fresh profile with the plugin enabled, for one qgis_process call (tests/e2e/conftest)."""
    return qgis_env


def qgis_process(env, *args, timeout=900):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def registered(env):
    proc = qgis_process(env, "help", POLYS)
    assert proc.returncode == 0, f"{POLYS} is not registered in the provider: {proc.stderr[-300:]}"
    return env


def gpkg_rows(path, columns):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        table = con.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
        cols = ", ".join(f'"{c}"' for c in columns)
        return [dict(zip(columns, r)) for r in con.execute(f'SELECT {cols} FROM "{table}"')]
    finally:
        con.close()


def test_help_lists_both_algorithms(registered):
    for alg, names in ((POLYS, ("LAYERS", "SOURCE_NAMES", "ID_FIELDS", "OUTPUT", "N_POLYGONS",
                                "AREA_KM2")),
                       (POINTS, ("LAYERS", "SOURCE_NAMES", "PRIMARY_FIELDS", "COMMODITY_FIELDS",
                                 "DEFAULT_COMMODITY", "TABLE", "NON_COMMODITIES", "DROP_PRIMARY",
                                 "OUTPUT", "N_POINTS"))):
        proc = qgis_process(registered, "help", alg)
        assert proc.returncode == 0, proc.stderr
        for name in names:
            assert name in proc.stdout, (alg, name)


def test_points_from_every_real_inventory(registered, tmp_path):
    out = tmp_path / "points.gpkg"
    proc = qgis_process(registered, "--json", "run", POINTS, "--",
                        f"LAYERS={ICMM}", f"LAYERS={JASANSKY}", f"LAYERS={GCMT_URI}",
                        f"LAYERS={DETHIER}", "SOURCE_NAMES=ICMM,Jasansky,GEM,ASGM",
                        "DEFAULT_COMMODITY=GEM=Coal; ASGM=Gold", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    results = doc["results"]
    assert results["OUTPUT"] == str(out)
    rows = gpkg_rows(out, ["point_id", "source", "source_id", "primary_commodity",
                           "commodities"])
    assert len(rows) == results["N_POINTS"]
    by_source = collections.Counter(r["source"] for r in rows)
    assert by_source["ICMM"] == 8508 and by_source["ASGM"] == 436
    with open(GCMT, encoding="latin-1", newline="") as fh:
        located = 0
        for r in csv.DictReader(fh):
            try:
                float(r["Latitude"]), float(r["Longitude"])
                located += 1
            except ValueError:
                pass
    assert by_source["GEM"] == located
    assert {r["primary_commodity"] for r in rows if r["source"] == "GEM"} == {"Coal"}
    assert {r["primary_commodity"] for r in rows if r["source"] == "ASGM"} == {"Gold"}
    icmm = {r["source_id"]: r for r in rows if r["source"] == "ICMM"}
    raw = {f["properties"]["id"]: f["properties"]["primaryCommodity"]
           for f in json.loads(ICMM.read_text(encoding="utf-8"))["features"]}
    assert {icmm[i]["primary_commodity"] for i, v in raw.items() if v == "iron ore "} == {"Iron"}
    assert {icmm[i]["primary_commodity"] for i, v in raw.items()
            if v in ("thermal coal", "metallurgical coal")} == {"Coal"}
    log = "\n".join(doc["log"]["info"])
    assert "Renamed by the harmonisation table" in log and "chromite -> chromium (" in log.casefold()
    assert ("Names not in the harmonisation table" in log) == (results["N_UNKNOWN_NAMES"] > 0)
    assert "EMPTY" not in log
    assert results["N_DROPPED"] >= 518                  # Jasansky's EMPTY geometries


def test_polygons_from_every_real_land_use_source(registered, tmp_path):
    out = tmp_path / "polygons.gpkg"
    layers = [MAUS_INDIA, MAUS_BRAZIL, SEPIN_1000, SEPIN_100, GEM_BOUNDARIES]
    proc = qgis_process(registered, "--json", "run", POLYS, "--",
                        *[f"LAYERS={p}" for p in layers],
                        "SOURCE_NAMES=Maus India,Maus Brazil,Sepin 1000,Sepin 100,GEM",
                        f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    rows = gpkg_rows(out, ["polygon_id", "sources", "n_inputs", "input_ids", "area_m2"])
    assert len(rows) == results["N_POLYGONS"]
    n_in = (781 + 459 + 1000 + 100 + 2116)
    assert results["N_INPUT"] == n_in
    traced = [i for r in rows for i in r["input_ids"].split(";")]
    assert len(traced) == len(set(traced)) == n_in - results["N_DROPPED"]
    assert results["N_DROPPED"] == 2116 - 333          # GEM's points and line
    combos = collections.Counter(r["sources"] for r in rows)
    assert combos["Maus India/GEM"] > 0
    assert sum(r["area_m2"] for r in rows) / 1e6 == pytest.approx(results["AREA_KM2"])


def test_error_sentence_reaches_the_user(registered, tmp_path):
    proc = qgis_process(registered, "run", POLYS, "--", f"LAYERS={ICMM}",
                        f"OUTPUT={tmp_path / 'x.gpkg'}")
    assert proc.returncode != 0
    assert "The polygon layer 'mines' has point geometries, but polygon geometries are needed; " \
           "choose a polygon layer in 'Land-use polygon layers'." in proc.stdout + proc.stderr


MODEL_SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import (QgsProcessing, QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource as Src,
        QgsProcessingModelOutput, QgsProcessingModelParameter,
        QgsProcessingParameterMultipleLayers, QgsProcessingParameterString)
    from qgis.testing import start_app
    start_app()
    model = QgsProcessingModelAlgorithm("Harmonise and cluster", "Mine clusters")
    for name, label, kind in (("polygon_layers", "Land-use polygon layers",
                               QgsProcessing.TypeVectorAnyGeometry),
                              ("point_layers", "Mine point layers",
                               QgsProcessing.TypeVectorAnyGeometry)):
        model.addModelParameter(QgsProcessingParameterMultipleLayers(name, label, kind),
                                QgsProcessingModelParameter(name))
    model.addModelParameter(QgsProcessingParameterString(
        "default_commodity", "Commodity of layers without a primary field", optional=True),
        QgsProcessingModelParameter("default_commodity"))
    polys = QgsProcessingModelChildAlgorithm("mineclusters:harmonisepolygons")
    polys.setChildId("polygons")
    polys.addParameterSources("LAYERS", [Src.fromModelParameter("polygon_layers")])
    points = QgsProcessingModelChildAlgorithm("mineclusters:harmonisepoints")
    points.setChildId("points")
    points.addParameterSources("LAYERS", [Src.fromModelParameter("point_layers")])
    points.addParameterSources("DEFAULT_COMMODITY", [Src.fromModelParameter("default_commodity")])
    cluster = QgsProcessingModelChildAlgorithm("mineclusters:clusterlocaloptimum")
    cluster.setChildId("cluster")
    cluster.addParameterSources("POLYGONS", [Src.fromChildOutput("polygons", "OUTPUT")])
    cluster.addParameterSources("POINTS", [Src.fromChildOutput("points", "OUTPUT")])
    outputs = {}
    for child_out, name in (("OUTPUT_POLYGONS", "clustered_polygons"),
                            ("OUTPUT_CLUSTERS", "clusters")):
        out = QgsProcessingModelOutput(name, name)
        out.setChildId("cluster")
        out.setChildOutputName(child_out)
        outputs[name] = out
    cluster.setModelOutputs(outputs)
    for child in (polys, points, cluster):
        model.addChildAlgorithm(child)
    assert model.toFile(sys.argv[1])
''')


def test_model_harmonise_then_cluster_on_real_sources(registered, tmp_path):
    model = tmp_path / "harmonise_cluster.model3"
    proc = subprocess.run([sys.executable, "-c", MODEL_SCRIPT, str(model)], env=registered,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and model.is_file(), proc.stderr
    polys_out = tmp_path / "clustered.gpkg"
    clusters_out = tmp_path / "clusters.gpkg"
    proc = qgis_process(registered, "--json", "run", str(model), "--",
                        f"polygon_layers={MAUS_INDIA}", f"polygon_layers={GEM_BOUNDARIES}",
                        f"point_layers={ICMM}", f"point_layers={JASANSKY}",
                        f"point_layers={GCMT_URI}",
                        "default_commodity=Global-Coal-Mine-Tracker-July-2022=Coal",
                        # model outputs are "cluster:clusters" on QGIS 3.22, "clusters" on 3.40;
                        # each version ignores the other's name
                        f"cluster:clustered_polygons={polys_out}", f"clustered_polygons={polys_out}",
                        f"cluster:clusters={clusters_out}", f"clusters={clusters_out}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    assert str(polys_out) in (results.get("cluster:clustered_polygons"), results.get("clustered_polygons"))
    rows = gpkg_rows(polys_out, ["sources", "primary_commodities", "status", "area_m2"])
    # every harmonised polygon is clustered; the coal belts of India come out as coal
    assert rows and {r["status"] for r in rows} <= {"assigned", "unassigned", "multiple"}
    coal = sum(r["area_m2"] for r in rows if r["primary_commodities"] == "Coal")
    assert coal > 0.2 * sum(r["area_m2"] for r in rows)
    assert any(r["sources"] == "indian_polygon_with_grId/coal-mine-boundaries-methane"
               for r in rows)
    assert clusters_out.stat().st_size > 0


# --------------------------------------------------------------------------- several layers

def n_features(path_or_uri):
    """Features of one input, counted without QGIS (the files' own formats)."""
    if str(path_or_uri).startswith("delimitedtext://"):
        with open(GCMT, encoding="latin-1", newline="") as fh:
            return sum(1 for r in csv.DictReader(fh) if any((v or "").strip() for v in r.values()))
    if str(path_or_uri).endswith(".geojson"):
        return len(json.loads(Path(path_or_uri).read_text(encoding="utf-8"))["features"])
    con = sqlite3.connect(f"file:{path_or_uri}?mode=ro", uri=True)
    try:
        table = con.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("style", ["after_separator", "dashed_without_separator"])
def test_several_layers_in_one_multi_layer_parameter(registered, tmp_path, style):
    """How qgis_process takes several layers for one parameter: the name repeated, either as
    NAME=value after `--` (QGIS 3.22 and later) or as --NAME=value without `--` (the older form,
    still read by 3.22). Mixed (`-- LAYERS=A --LAYERS=B`), 3.22 silently drops B."""
    out = tmp_path / "pts.gpkg"
    layers = [ICMM, JASANSKY]
    if style == "after_separator":
        args = ["--", *[f"LAYERS={p}" for p in layers], f"OUTPUT={out}"]
    else:
        args = [*[f"--LAYERS={p}" for p in layers], f"--OUTPUT={out}"]
    proc = qgis_process(registered, "--json", "run", POINTS, *args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = json.loads(proc.stdout)["results"]
    assert results["N_INPUT"] == n_features(ICMM) + n_features(JASANSKY) == 8508 + 2398
    sources = {r["source"] for r in gpkg_rows(out, ["source"])}
    assert sources == {"mines", "facilities"}


# --------------------------------------------------------------------------- the shipped model

PIPELINE = Path(__file__).resolve().parents[2] / "resources" / "mine_clusters_pipeline.model3"


def model_output(results, child, name):
    """A model output's value: named "child:name" on QGIS 3.22, "name" on 3.40."""
    return results.get(f"{child}:{name}", results.get(name))


def point_parts():
    """{(source, id): [number of points of each feature]} of the three inventories, read
    without QGIS; the GEM tracker's blank records are no features."""
    import shapely
    from shapely.geometry import Point, shape

    parts = collections.defaultdict(list)
    for f in json.loads(ICMM.read_text(encoding="utf-8"))["features"]:
        g = shape(f["geometry"]) if f.get("geometry") else None
        parts[("ICMM", str(f["properties"]["id"]))].append(
            0 if g is None or g.is_empty else len(shapely.get_parts(g)))
    con = sqlite3.connect(f"file:{JASANSKY}?mode=ro", uri=True)
    for fid, blob in con.execute("SELECT facility_id, geom FROM facilities"):
        n = 0
        if blob is not None and not blob[3] & 0x10:          # GPKG header flag: empty geometry
            envelope = (blob[3] >> 1) & 7
            g = shapely.from_wkb(bytes(blob[8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[envelope]:]))
            n = 0 if g.is_empty else sum(not p.is_empty for p in shapely.get_parts(g))
        parts[("Jasansky", fid)].append(n)
    con.close()
    with open(GCMT, encoding="latin-1", newline="") as fh:
        for r in csv.DictReader(fh):
            if not any((v or "").strip() for v in r.values()):
                continue
            try:
                Point(float(r["Longitude"]), float(r["Latitude"]))
                n = 1
            except ValueError:
                n = 0
            parts[("GEM GCMT", r["Mine IDs"])].append(n)
    return parts


def test_shipped_pipeline_model_on_real_sources_as_they_are(registered, tmp_path):
    """Regression: the shipped pipeline passed only LAYERS to the harmonise steps, so the GEM
    coal tracker (no primary-commodity field) failed. Real files as they are: Maus India and
    the GEM boundaries (polygons, GeoJSON with points and a line mixed in), ICMM (GeoJSON),
    Jasansky (GeoPackage with EMPTY points) and the GEM tracker (latin-1 CSV through the
    delimited-text provider)."""
    outs = {("cluster", "clustered_polygons"): tmp_path / "clustered.gpkg",
            ("cluster", "clustered_points"): tmp_path / "clustered_points.gpkg",
            ("harmonise_polygons", "dropped_polygons"): tmp_path / "dropped_polygons.csv",
            ("harmonise_points", "dropped_points"): tmp_path / "dropped_points.csv",
            ("footprint", "area_by_commodity"): tmp_path / "by_commodity.csv"}
    named = []
    for (child, name), path in outs.items():           # both spellings: 3.22 and 3.40
        named += [f"{child}:{name}={path}", f"{name}={path}"]
    proc = qgis_process(registered, "--json", "run", str(PIPELINE), "--",
                        f"polygon_layers={MAUS_INDIA}", f"polygon_layers={GEM_BOUNDARIES}",
                        f"point_layers={ICMM}", f"point_layers={JASANSKY}",
                        f"point_layers={GCMT_URI}",
                        "polygon_source_names=Maus India,GEM boundaries",
                        "point_source_names=ICMM,Jasansky,GEM GCMT",
                        "default_commodity=GEM GCMT=Coal", *named)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    results = json.loads(proc.stdout)["results"]
    for (child, name), path in outs.items():
        assert model_output(results, child, name) == str(path), (child, name)
        assert path.stat().st_size > 0

    # every input polygon is in one (harmonised, then clustered) polygon or in the dropped
    # table, exactly once
    maus = [str(f["properties"]["fid"])
            for f in json.loads(MAUS_INDIA.read_text(encoding="utf-8"))["features"]]
    gem = [f["properties"]["id"]
           for f in json.loads(GEM_BOUNDARIES.read_text(encoding="utf-8"))["features"]]
    expected = sorted([("Maus India", i) for i in maus] + [("GEM boundaries", i) for i in gem])
    polygons = gpkg_rows(outs[("cluster", "clustered_polygons")],
                         ["sources", "input_ids", "status"])
    merged = [tuple(t.split(":", 1)) for r in polygons for t in r["input_ids"].split(";")]
    with open(outs[("harmonise_polygons", "dropped_polygons")], encoding="utf-8") as fh:
        dropped = [(r["source"], r["source_id"], r["reason"]) for r in csv.DictReader(fh)]
    assert sorted(merged + [(s, i) for s, i, _ in dropped]) == expected
    assert len(dropped) == 2116 - 333                   # GEM's points and its one line
    assert any(r["sources"] == "Maus India/GEM boundaries" for r in polygons)
    assert {r["status"] for r in polygons} <= {"assigned", "unassigned", "multiple"}

    # points out = non-empty parts in - the parts of the features reported dropped
    parts = point_parts()
    n_parts_in = sum(sum(v) for v in parts.values())
    with open(outs[("harmonise_points", "dropped_points")], encoding="utf-8") as fh:
        dropped_points = [(r["source"], r["source_id"], r["reason"]) for r in csv.DictReader(fh)]
    left_out = 0
    for source, fid, _reason in dropped_points:
        left_out += parts[(source, fid)].pop()        # one feature of that id (ids may repeat)
    points = gpkg_rows(outs[("cluster", "clustered_points")],       # one row per point
                       ["source", "source_id", "primary_commodity"])
    assert len(points) == n_parts_in - left_out
    assert left_out > 0                                # Jasansky's processing plants
    assert collections.Counter(r for _, _, r in dropped_points)["empty or null geometry"] >= 518
    assert {r["primary_commodity"] for r in points if r["source"] == "GEM GCMT"} == {"Coal"}
    assert {r["source"] for r in points} == {"ICMM", "Jasansky", "GEM GCMT"}
    rows = outs[("footprint", "area_by_commodity")].read_text(encoding="utf-8").splitlines()
    assert any(r.startswith("Coal,") for r in rows[1:])


def test_shipped_pipeline_model_lists_its_optional_inputs(registered):
    proc = qgis_process(registered, "help", str(PIPELINE))
    assert proc.returncode == 0, proc.stderr
    for name in ("polygon_layers", "point_layers", "polygon_source_names", "point_source_names",
                 "default_commodity", "primary_fields", "commodity_fields",
                 "harmonisation_table"):
        assert name in proc.stdout, name
