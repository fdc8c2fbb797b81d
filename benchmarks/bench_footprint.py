"""Footprint summary benchmark: the planet-scale cluster output with the 10m countries and biomes.

Target (issue 6): summary of the planet-scale cluster output with the Natural Earth 10m countries
and the RESOLVE biomes in <= 30 s and <= 2 GB.

Steps:
1. (not timed, cached) the planet input of ``generate.py`` clustered by ``core.cluster_mines``
   with the defaults; the clustered polygons (WKB, cluster id, primary commodities, status, area)
   and the points' cluster ids are stored in ``benchmarks/data/footprint-planet-seed1.npz``;
2. each measured run is a fresh subprocess: it loads that archive, the countries (TopoJSON) and the
   biomes (shapefile, read with GDAL's Python bindings) -- not timed -- then times
   ``core.footprint.mine_polygons`` + ``core.footprint.summarise`` (countries, biomes, 50 km grid,
   Table 2 with the points) with a progress and a cancel callback, as the QGIS algorithm calls
   them, and reports wall/CPU time, the stage times and the peak resident memory (``ru_maxrss``).

End to end (``--qgis-process``): the same cluster output written as two GeoPackages (clustered
polygons with cluster_id, primary_commodities, status, area_m2 and sources; clustered points with
cluster_id and primary_commodities; not timed), then ``qgis_process.bin --json run
mineclusters:footprintsummary`` on them with the 10m countries (TopoJSON, read by OGR) and the
biomes, every output written (the five tables as CSV, the grid as a GeoPackage, the four plots,
the HTML report with its CSV folder), timed as a whole: wall time and the peak resident memory of
the qgis_process process (``RUSAGE_CHILDREN``: that mode runs no other child process). The
algorithm's "Timings" log line gives its stages.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_footprint.py                    # both allocations, 1 run
    .venv/bin/python benchmarks/bench_footprint.py --runs 3 --allocation intersection
    .venv/bin/python benchmarks/bench_footprint.py --qgis-process     # end to end, 1 run
    .venv/bin/python benchmarks/bench_footprint.py --validation     # Table 4, India vs GEM
"""
import argparse
import statistics
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = Path(os.environ.get("MINE_CLUSTERS_DATA", ROOT.parent / "shared" / "data"))
CACHE = HERE / "data"


def _import_package():
    """Make the checkout importable as `mine_clusters` (the repository root is the package)."""
    import tempfile

    link_dir = Path(tempfile.gettempdir()) / "mine_clusters_bench_pkg"
    link_dir.mkdir(exist_ok=True)
    link = link_dir / "mine_clusters"
    if not link.exists():
        link.symlink_to(ROOT)
    sys.path.insert(0, str(link_dir))
    sys.path.insert(0, str(HERE))


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cluster_output(seed=1):
    """The cached cluster output of the planet input (clustered once with the defaults): the
    clustered polygons and points as the cluster algorithm writes them."""
    path = CACHE / f"footprint-planet-v2-seed{seed}.npz"
    if path.exists():
        return path
    import shapely

    import generate
    from mine_clusters.core import cluster_mines, prepare_features

    d = generate.load("planet", seed=seed)
    t0 = time.perf_counter()
    res = cluster_mines(prepare_features(
        polygons=list(d["polygons"]), polygon_ids=list(d["polygon_ids"]),
        points=list(d["points"]), point_ids=list(d["point_ids"]),
        primary=[None if not p else str(p) for p in d["primary"]],
        commodities=[None if not c else str(c) for c in d["commodities"]]))
    print(f"clustered the planet input in {time.perf_counter() - t0:.1f} s: "
          f"{res.n_clusters} clusters", file=sys.stderr)
    t, q = res.polygons, res.points
    geoms = [d["polygons"][i] for i in t.index]
    wkb = shapely.to_wkb(np.asarray(geoms, dtype=object), output_dimension=2)
    # one row per point part, as the cluster algorithm's points output
    pts = shapely.get_geometry(np.asarray([d["points"][i] for i in q.index], dtype=object),
                               np.asarray(q.part))
    sources = [generate.POLYGON_SOURCES[k] for k in d["polygon_source"][t.index]]
    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, wkb=np.array(wkb, dtype=object), feature_id=np.asarray(t.feature_id),
        cluster_id=np.asarray(t.cluster_id),
        primary=np.array(["" if p is None else p for p in t.primary_commodities]),
        status=np.array(list(t.status)), area_m2=np.asarray(t.area_m2, dtype=float),
        sources=np.array(sources),
        point_cluster_id=np.asarray(q.cluster_id),
        point_primary=np.array(["" if p is None else p for p in q.primary_commodities]),
        point_wkb=np.array(shapely.to_wkb(pts, output_dimension=2), dtype=object))
    os.replace(tmp, path)
    return path


def read_countries():
    """Natural Earth 10m countries (TopoJSON) with GDAL, as (geometries, names)."""
    import shapely
    from osgeo import ogr

    ds = ogr.Open(str(DATA / "natural-earth-countries" / "world-atlas-2.0.2" / "countries-10m.json"))
    lyr = ds.GetLayerByName("countries")
    geoms, names = [], []
    for f in lyr:
        g = f.GetGeometryRef()
        if g is None:
            continue
        geoms.append(shapely.from_wkb(bytes(g.ExportToWkb())))
        names.append(f.GetField("name"))
    return geoms, names


def read_biomes():
    import shapely
    from osgeo import ogr

    ds = ogr.Open(str(DATA / "resolve-ecoregions2017-simplified" / "biomes.shp"))
    lyr = ds.GetLayer(0)
    geoms, names = [], []
    for f in lyr:
        g = f.GetGeometryRef()
        if g is None:
            continue
        geoms.append(shapely.from_wkb(bytes(g.ExportToWkb())))
        names.append(f.GetField("BIOME_NAME"))
    return geoms, names


def worker(path, allocation, cell_size_m):
    import shapely

    from mine_clusters.core import footprint as fp

    with np.load(path, allow_pickle=True) as z:
        geoms = shapely.from_wkb(z["wkb"])
        args = dict(feature_ids=z["feature_id"], cluster_ids=z["cluster_id"],
                    primary=[p or None for p in z["primary"]], status=list(z["status"]),
                    area_m2=z["area_m2"])
        points = z["point_cluster_id"]
        point_primary = [p or None for p in z["point_primary"]]
    cg, cn = read_countries()
    bg, bn = read_biomes()
    load_mb = peak_mb()
    ticks = []
    c0, t0 = time.process_time(), time.perf_counter()
    polys = fp.mine_polygons(geoms, **args)
    countries = fp.regions(cg, cn)
    biomes = fp.regions(bg, bn)
    t1 = time.perf_counter()
    s = fp.summarise(polys, countries, biomes, allocation=allocation, cell_size_m=cell_size_m,
                     point_cluster_ids=points, point_primary=point_primary,
                     progress=lambda r: ticks.append((r, time.perf_counter())),
                     should_stop=lambda: False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stage = {}
    for (r0, a), (r1, b) in zip(ticks, ticks[1:]):
        key = "countries" if r1 <= 0.4 else ("biomes" if r1 <= 0.8 else "grid")
        stage[key] = stage.get(key, 0.0) + (b - a)
    out = {
        "allocation": allocation, "cell_size_m": cell_size_m, "n_polygons": len(polys),
        "n_points": int(len(points)), "n_countries": len(countries), "n_biomes": len(biomes),
        "total_area_km2": s.total_area_m2 / 1e6, "assigned_pct": s.assigned_area_pct,
        "n_cells": len(s.grid.rows) if s.grid else 0,
        "outside_country_km2": sum(r["area_km2"] for r in s.country_rows
                                   if r["region"] == fp.OUTSIDE),
        "prepare_s": t1 - t0, "wall_s": wall, "cpu_s": cpu,
        "stages_s": {k: round(v, 2) for k, v in stage.items()},
        "peak_mb": peak_mb(), "load_peak_mb": load_mb,
        "sum_check": abs(sum(r["area_km2"] for r in s.country_rows) * 1e6 - s.total_area_m2)
        / s.total_area_m2,
    }
    print(json.dumps(out))


def write_gpkgs(npz, workdir):
    """The cached cluster output as the cluster algorithm's two GeoPackages (not timed)."""
    import shapely
    from osgeo import ogr, osr

    ogr.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    paths = {k: Path(workdir) / f"clustered_{k}.gpkg" for k in ("polygons", "points")}
    stamp = Path(workdir) / "clustered.json"
    if stamp.exists() and json.loads(stamp.read_text()) == str(npz) \
            and all(p.exists() for p in paths.values()):
        return paths
    with np.load(npz, allow_pickle=True) as z:
        data = {k: z[k] for k in z.files}
    kinds = {"int": ogr.OFTInteger64, "double": ogr.OFTReal, "string": ogr.OFTString}
    for kind, fields, gtype in (
            ("polygons", (("cluster_id", "int"), ("primary_commodities", "string"),
                          ("status", "string"), ("area_m2", "double"), ("sources", "string")),
             ogr.wkbMultiPolygon),
            ("points", (("cluster_id", "int"), ("primary_commodities", "string")),
             ogr.wkbPoint)):
        path = paths[kind]
        if path.exists():
            path.unlink()
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        lyr = ds.CreateLayer(kind, srs, gtype)
        for name, k in fields:
            lyr.CreateField(ogr.FieldDefn(name, kinds[k]))
        defn = lyr.GetLayerDefn()
        if kind == "polygons":
            geoms = shapely.from_wkb(data["wkb"])
            multi = shapely.get_type_id(geoms) == 3
            geoms[multi] = [shapely.MultiPolygon([g]) for g in geoms[multi]]
            wkbs = shapely.to_wkb(geoms, output_dimension=2)
            cols = (data["cluster_id"], data["primary"], data["status"], data["area_m2"],
                    data["sources"])
        else:
            wkbs = data["point_wkb"]
            cols = (data["point_cluster_id"], data["point_primary"])
        lyr.StartTransaction()
        for i, wkb in enumerate(wkbs):
            f = ogr.Feature(defn)
            for (name, k), col in zip(fields, cols):
                v = col[i]
                if k == "string":
                    v = str(v) or None
                f.SetField(name, None if v is None else (int(v) if k == "int" else
                                                         float(v) if k == "double" else v))
            f.SetGeometry(ogr.CreateGeometryFromWkb(bytes(wkb)))
            lyr.CreateFeature(f)
        lyr.CommitTransaction()
        ds = None
    stamp.write_text(json.dumps(str(npz)))
    return paths


def qgis_process_run(npz, workdir, allocation="intersection", cell_size_m=50000.0, raster_deg=None):
    """`qgis_process run mineclusters:footprintsummary` on the planet cluster output, with the
    10m countries and the biomes, every output written (and the commodity raster of `raster_deg`
    degrees when given); returns the measurements."""
    import shutil
    import site

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = write_gpkgs(npz, workdir)
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    profile = workdir / "config"
    ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text("[PythonPlugins]\nmine_clusters=true\n")
    plugins = workdir / "plugins"
    plugins.mkdir(exist_ok=True)
    if not (plugins / "mine_clusters").exists():
        (plugins / "mine_clusters").symlink_to(ROOT)
    runtime = workdir / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile), QGIS_PLUGINPATH=str(plugins),
               QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime),
               PYTHONPATH=os.pathsep.join(site.getsitepackages()))
    exe = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
    countries = DATA / "natural-earth-countries" / "world-atlas-2.0.2" / "countries-10m.json"
    biomes = DATA / "resolve-ecoregions2017-simplified" / "biomes.shp"
    params = {
        "INPUT": paths["polygons"], "POINTS": paths["points"],
        "COUNTRIES": f"{countries}|layername=countries", "COUNTRY_FIELD": "name",
        "BIOMES": biomes, "BIOME_FIELD": "BIOME_NAME", "CELL_SIZE": cell_size_m,
        "ALLOCATION": ["intersection", "centroid"].index(allocation),
        "OUTPUT_COMMODITY": out / "commodity.csv", "OUTPUT_COUNTRY": out / "country.csv",
        "OUTPUT_BIOME": out / "biome.csv", "OUTPUT_TABLE2": out / "table2.csv",
        "OUTPUT_TABLE3": out / "table3.csv", "OUTPUT_GRID": out / "grid.gpkg",
        "PLOT_COMMODITY": out / "commodity.png", "PLOT_COUNTRY": out / "countries.png",
        "PLOT_BIOME": out / "biomes.png", "PLOT_GRID": out / "grid.png",
        "REPORT": out / "report.html"}
    if raster_deg:
        params.update(OUTPUT_RASTER=out / "raster.tif", RASTER_CELL_DEG=raster_deg)
    cmd = [exe, "--json", "run", "mineclusters:footprintsummary", "--",
           *[f"{k}={v}" for k, v in params.items()]]
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb, cpu = usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        sys.exit(f"qgis_process failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    doc = json.loads(proc.stdout)
    res = doc["results"]
    missing = [k for k, v in params.items() if k.startswith(("OUTPUT", "PLOT", "REPORT"))
               and not Path(v).exists()]
    if missing:
        sys.exit(f"qgis_process did not write {', '.join(missing)}")
    log = doc.get("log", {}).get("info", []) if isinstance(doc.get("log"), dict) else []
    return {
        "command": " ".join(str(c) for c in cmd[:4]) + " -- " + " ".join(
            f"{k}=..." for k in params), "allocation": allocation, "raster_deg": raster_deg,
        "load_average_before": [round(x, 2) for x in load], "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1), "peak_rss_mb": round(peak_mb),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "total_area_km2": res["TOTAL_AREA_KM2"],
        "n_polygons": res["N_POLYGONS"], "n_cells": res["N_CELLS"],
        "timings": [line for line in log if line.startswith("Timings")],
        "output_mb": round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20, 1),
    }


def validation(region="india"):
    """Table 4 against the GEM coal mine boundaries: the real Maus v1 polygons of a region and
    every real ICMM, Jasansky and GEM point within 20 km of them (``generate.load_region``), at
    their real positions, harmonised with the plugin's default table and clustered with the
    defaults. Prints JSON with the summary and the counts."""
    import shapely

    import generate
    from mine_clusters.core import cluster_mines, prepare_features
    from mine_clusters.core import validate as va
    from mine_clusters.core.harmonise import read_harmonisation_table

    table = {k: ("" if v.strip().casefold() == "not relevant" else v)
             for k, v in read_harmonisation_table().items()}
    d = generate.load_region(region)
    res = cluster_mines(prepare_features(
        polygons=list(d["polygons"]), polygon_ids=list(d["polygon_ids"]),
        points=list(d["points"]), point_ids=list(d["point_ids"]),
        primary=[str(p) or None for p in d["primary"]],
        commodities=[str(c) or None for c in d["commodities"]], harmonisation=table))
    gem = json.load(open(DATA / "gem-coal-mine-boundaries-v1.0.2"
                         / "coal-mine-boundaries-methane.geojson", encoding="utf-8"))
    ref = [f for f in gem["features"] if f["geometry"]
           and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    t = res.polygons
    out = {}
    for include in (True, False):
        r = va.validate([d["polygons"][i] for i in t.index], t.feature_id, t.cluster_id,
                        t.primary_commodities,
                        [shapely.from_geojson(json.dumps(f["geometry"])) for f in ref],
                        list(range(len(ref))), ["Coal"] * len(ref), include_unassigned=include)
        out["with_unassigned" if include else "assigned_only"] = {
            "pairs": r.n_pairs, "summary": r.summary,
            "primary_sets": sorted({p["primary_commodities"] or "(unassigned)" for p in r.pairs}),
            "reference_polygons": len({p["reference_id"] for p in r.pairs})}
    out.update({"region": region, "n_polygons": len(t.feature_id), "n_points": len(d["points"]),
                "max_threshold_m": res.max_threshold_m})
    print(json.dumps(out, indent=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--allocation", choices=["intersection", "centroid", "both"], default="both")
    p.add_argument("--cell-size", type=float, default=50000.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--validation", action="store_true",
                   help="print Table 4 of India's real clusters against the GEM boundaries")
    p.add_argument("--qgis-process", action="store_true",
                   help="time mineclusters:footprintsummary end to end through qgis_process")
    p.add_argument("--workdir", default=str(CACHE / "footprint-qgis-process"),
                   help="folder for the GeoPackages and outputs of --qgis-process")
    p.add_argument("--raster", type=float, default=None, metavar="DEG",
                   help="with --qgis-process: also write the commodity raster (cells of DEG "
                        "degrees); with --compare-raster N: N runs without and with it, "
                        "alternating")
    p.add_argument("--compare-raster", type=int, default=0, metavar="N")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    _import_package()
    if a.validation:
        validation()
        return
    if a.qgis_process:
        path = cluster_output(a.seed)
        alloc = "intersection" if a.allocation == "both" else a.allocation
        if a.compare_raster:
            walls = {None: [], a.raster or 0.5: []}
            for _ in range(a.compare_raster):
                for deg in walls:
                    got = qgis_process_run(path, a.workdir, alloc, a.cell_size, deg)
                    walls[deg].append(got["wall_s"])
                    print(json.dumps({k: got[k] for k in ("raster_deg", "wall_s", "peak_rss_mb",
                                                          "timings")}), flush=True)
            base, with_raster = (statistics.median(v) for v in walls.values())
            print(json.dumps({"without_s": walls[None], "with_s": list(walls.values())[1],
                              "ratio": round(with_raster / base, 3)}))
            return
        print(json.dumps(qgis_process_run(path, a.workdir, alloc, a.cell_size, a.raster),
                         indent=1))
        return
    if a.worker:
        worker(a.worker, a.allocation, a.cell_size)
        return
    path = cluster_output(a.seed)
    allocations = ["intersection", "centroid"] if a.allocation == "both" else [a.allocation]
    rows = []
    for alloc in allocations:
        for _ in range(a.runs):
            proc = subprocess.run([sys.executable, __file__, "--worker", str(path), "--allocation",
                                   alloc, "--cell-size", str(a.cell_size)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(proc.stderr)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print("| allocation | polygons | wall (s) | CPU (s) | countries / biomes / grid (s) | "
          "peak RSS (MB) | cells |")
    print("|---|---|---|---|---|---|---|")
    for alloc in allocations:
        rs = [r for r in rows if r["allocation"] == alloc]
        med = lambda k: float(np.median([r[k] for r in rs]))  # noqa: E731
        st = rs[0]["stages_s"]
        print(f"| {alloc} | {rs[0]['n_polygons']:,} | {med('wall_s'):.1f} | {med('cpu_s'):.1f} | "
              f"{st.get('countries', 0):.1f} / {st.get('biomes', 0):.1f} / {st.get('grid', 0):.1f}"
              f" | {med('peak_mb'):.0f} | {rs[0]['n_cells']:,} |")


if __name__ == "__main__":
    main()
