#!/usr/bin/env python3
"""End-to-end benchmark of the cluster algorithm through `qgis_process` on the planet input.

    .venv/bin/python scripts/bench_qgis_process.py [planet|dense] [WORKDIR]
    .venv/bin/python scripts/bench_qgis_process.py planet WORKDIR --trace        # + links, concordance
    .venv/bin/python scripts/bench_qgis_process.py planet WORKDIR --compare-trace 3

Writes the planet-scale input of benchmarks/generate.py (real shapes copied over the Earth) as two
GeoPackages (not timed), then times `qgis_process.bin --json run mineclusters:clusterlocaloptimum`
reading them and writing every output (polygons, points, clusters, sensitivity table, both plots),
and reports wall time and the peak resident memory of the qgis_process process. With --trace it
also writes the traceability outputs (OUTPUT_LINKS as a GeoPackage, OUTPUT_CONCORDANCE as CSV);
--compare-trace N runs without and with them N times each, alternating, and reports both medians
and their ratio (issue 12: the new outputs may add at most 25 %).
"""
import json
import os
import resource
import shutil
import site
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def harmonised(values, table):
    """Comma lists through the benchmark's harmonisation table (as bench_core.py gives the core),
    so the points arrive as the harmonise algorithm would write them."""
    folded = {k.strip().casefold(): v for k, v in table.items()}
    out = []
    for v in values:
        names = [n.strip() for n in (v or "").split(",") if n.strip()]
        out.append(",".join(dict.fromkeys(folded.get(n.casefold(), n) for n in names)) or None)
    return out


def write_inputs(d, workdir):
    from osgeo import ogr, osr

    import bench_core
    import generate

    ogr.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    import shapely

    table = bench_core.harmonisation(generate.DEFAULT_DATA_DIR)
    primary, commodities = harmonised(d["primary"], table), harmonised(d["commodities"], table)
    paths = {}
    for kind, geoms, ids in (("polygons", d["polygons"], d["polygon_ids"]),
                             ("points", d["points"], d["point_ids"])):
        path = os.path.join(workdir, f"planet_{kind}.gpkg")
        if os.path.exists(path):
            os.remove(path)
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        gtype = ogr.wkbMultiPolygon if kind == "polygons" else ogr.wkbPoint
        lyr = ds.CreateLayer(kind, srs, gtype)
        lyr.CreateField(ogr.FieldDefn("src_id", ogr.OFTInteger64))
        if kind == "points":
            lyr.CreateField(ogr.FieldDefn("primary_commodity", ogr.OFTString))
            lyr.CreateField(ogr.FieldDefn("commodities", ogr.OFTString))
        defn = lyr.GetLayerDefn()
        wkbs = shapely.to_wkb(geoms if kind == "points" else [
            g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geoms])
        lyr.StartTransaction()
        for i, wkb in enumerate(wkbs):
            f = ogr.Feature(defn)
            f.SetField("src_id", int(ids[i]))
            if kind == "points":
                f.SetField("primary_commodity", primary[i])
                f.SetField("commodities", commodities[i])
            f.SetGeometry(ogr.CreateGeometryFromWkb(bytes(wkb)))
            lyr.CreateFeature(f)
        lyr.CommitTransaction()
        ds = None
        paths[kind] = path
    return paths


def main(variant="planet", workdir=None, trace=False, quiet=False):
    import generate

    workdir = workdir or tempfile.mkdtemp(prefix="mc_bench_")
    os.makedirs(workdir, exist_ok=True)
    paths = {k: os.path.join(workdir, f"planet_{k}.gpkg") for k in ("polygons", "points")}
    meta = os.path.join(workdir, f"{variant}-harmonised.json")
    if all(os.path.exists(p) for p in paths.values()) and os.path.exists(meta):
        n_poly, n_pt = json.load(open(meta))  # inputs written by an earlier run
    else:
        d = generate.load(variant)
        paths = write_inputs(d, workdir)
        n_poly, n_pt = len(d["polygons"]), len(d["points"])
        del d
        json.dump([n_poly, n_pt], open(meta, "w"))
    out = os.path.join(workdir, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    profile = os.path.join(workdir, "config")
    ini = os.path.join(profile, "profiles", "default", "QGIS", "QGIS3.ini")
    os.makedirs(os.path.dirname(ini), exist_ok=True)
    with open(ini, "w") as f:
        f.write("[PythonPlugins]\nmine_clusters=true\n")
    plugins = os.path.join(workdir, "plugins")
    os.makedirs(plugins, exist_ok=True)
    link = os.path.join(plugins, "mine_clusters")
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=profile, QGIS_PLUGINPATH=plugins,
               QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join(site.getsitepackages()))
    exe = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
    cmd = [exe, "--json", "run", "mineclusters:clusterlocaloptimum", "--",
           f"POLYGONS={paths['polygons']}", f"POINTS={paths['points']}",
           f"OUTPUT_POLYGONS={out}/polygons.gpkg", f"OUTPUT_POINTS={out}/points.gpkg",
           f"OUTPUT_CLUSTERS={out}/clusters.gpkg", f"OUTPUT_SENSITIVITY={out}/sensitivity.csv",
           f"OUTPUT_PLOT={out}/pareto.png", f"OUTPUT_HISTOGRAM={out}/thresholds.png"]
    if trace:
        cmd += [f"OUTPUT_LINKS={out}/links.gpkg", f"OUTPUT_CONCORDANCE={out}/concordance.csv"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    timings = [line for line in (json.loads(proc.stdout)["log"].get("info", [])
                                 if proc.returncode == 0 else []) if line.startswith("Timings")]
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit(proc.returncode)
    res = json.loads(proc.stdout)["results"]
    summary = {"variant": variant, "polygons": n_poly, "points": n_pt, "trace": bool(trace),
               "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb),
               "n_clusters": res["N_CLUSTERS"], "max_threshold_m": res["MAX_THRESHOLD_M"],
               "area_unassigned_pct": res["AREA_UNASSIGNED_PCT"],
               "area_multi_pct": res["AREA_MULTI_PCT"], "stages": timings}
    if not quiet:
        print(json.dumps(summary, indent=1))
    return summary


def compare_trace(variant, workdir, rounds):
    """Without and with the traceability outputs, alternating, `rounds` times each."""
    import statistics

    walls = {False: [], True: []}
    for k in range(rounds):
        for trace in (False, True):
            got = main(variant, workdir, trace=trace, quiet=True)
            walls[trace].append(got["wall_s"])
            print(f"round {k + 1} trace={trace}: {got['wall_s']} s, peak {got['peak_rss_mb']} MiB, "
                  f"{got['stages'][0] if got['stages'] else ''}", flush=True)
    base, with_trace = statistics.median(walls[False]), statistics.median(walls[True])
    print(json.dumps({"variant": variant, "rounds": rounds, "without_s": walls[False],
                      "with_s": walls[True], "median_without_s": base,
                      "median_with_s": with_trace, "ratio": round(with_trace / base, 3)}))


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--compare-trace" in argv:
        k = argv.index("--compare-trace")
        rounds = int(argv[k + 1])
        del argv[k:k + 2]
        compare_trace(*(argv + ["planet", None][len(argv):2]), rounds)
    else:
        trace = "--trace" in argv
        main(*[a for a in argv if a != "--trace"], trace=trace)
