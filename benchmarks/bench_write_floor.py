"""The floor for writing the cluster algorithm's outputs (issue 14): GDAL copying the very rows
the plugin wrote, in one transaction, with a spatial index, as `ogr2ogr -f GPKG` would.

    .venv/bin/python benchmarks/bench_write_floor.py [OUT_DIR] [--runs 3]

OUT_DIR holds the outputs of a planet run (`scripts/bench_qgis_process.py planet WORKDIR` writes
them to WORKDIR/out: polygons.gpkg, points.gpkg, clusters.gpkg, sensitivity.csv). Each layer is
copied by `gdal.VectorTranslate` (C++ all the way: read, convert, insert, index) into a fresh
GeoPackage, `--runs` times; the median per layer and their sum is the floor to set beside the
plugin's `write` stage (the qgis_process log's Timings line). The time to read the source is
included, so the floor is, if anything, high.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

from osgeo import gdal, ogr

LAYERS = ("polygons.gpkg", "points.gpkg", "clusters.gpkg")


def copy_time(src, runs):
    """Median seconds of `runs` copies of `src` into a new GeoPackage, and its row count."""
    times = []
    with tempfile.TemporaryDirectory(prefix="mc_floor_") as tmp:
        for k in range(runs):
            dst = os.path.join(tmp, f"copy{k}.gpkg")
            t0 = time.perf_counter()
            gdal.VectorTranslate(dst, src, format="GPKG",
                                 layerCreationOptions=["SPATIAL_INDEX=YES"])
            times.append(time.perf_counter() - t0)
            os.remove(dst)
    ds = ogr.Open(src)
    rows = ds.GetLayer(0).GetFeatureCount()
    ds = None
    return statistics.median(times), times, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", nargs="?", default="/var/tmp/qpbench/out")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)
    gdal.UseExceptions()
    result, total = {}, 0.0
    for name in LAYERS:
        src = os.path.join(a.out_dir, name)
        if not os.path.exists(src):
            continue
        median, times, rows = copy_time(src, a.runs)
        result[name] = {"rows": rows, "median_s": round(median, 2),
                        "runs_s": [round(t, 2) for t in times],
                        "mb": round(os.path.getsize(src) / 2**20, 1)}
        total += median
    result["floor_s"] = round(total, 2)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
