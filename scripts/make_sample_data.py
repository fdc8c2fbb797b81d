#!/usr/bin/env python3
"""Write the bundled sample data with the plugin's own harmonise algorithms, from the real sources.

Region: the Jharkhand / Odisha / West Bengal coal and iron belt of eastern India, lon 84..87 E,
lat 21..24 N (features that intersect it).
- mine_polygons.gpkg: `mineclusters:harmonisepolygons` on the Maus et al. (2020) v1 India polygons.
- mine_points.gpkg:   `mineclusters:harmonisepoints` on ICMM (2025), Jasansky et al. (2022
                      pre-release) and the GEM Global Coal Mine Tracker (July 2022, a latin-1 CSV
                      read by QGIS's delimited-text provider; its mines are coal mines).
Nothing is edited by hand: the files are exactly what the algorithms give (see SOURCE.md).

Run with the project's venv after `make setup` (it starts `qgis_process` with a throw-away profile):
    .venv/bin/python scripts/make_sample_data.py [SHARED_DATA_DIR]
"""
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "sample")
REGION = "84,87,21,24 [EPSG:4326]"


def qgis_process():
    for name in ("qgis_process.bin", "qgis_process"):  # Debian 12's wrapper is broken: prefer .bin
        path = shutil.which(name)
        if path:
            return path
    sys.exit("qgis_process was not found; run `make setup` first.")


def environment(tmp):
    """qgis_process settings: a throw-away profile with this checkout as the enabled plugin."""
    plugins = os.path.join(tmp, "plugins")
    os.makedirs(plugins)
    os.symlink(ROOT, os.path.join(plugins, "mine_clusters"))
    ini = os.path.join(tmp, "profiles", "default", "QGIS")
    os.makedirs(ini)
    with open(os.path.join(ini, "QGIS3.ini"), "w") as fh:
        fh.write("[PythonPlugins]\nmine_clusters=true\n")
    return dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=tmp, QGIS_PLUGINPATH=plugins,
                QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=tmp,
                PYTHONPATH=os.pathsep.join(site.getsitepackages()))


def run(env, algorithm, *params):
    proc = subprocess.run([qgis_process(), "--json", "run", algorithm, "--", *params], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{algorithm} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)["results"]


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    data = os.path.abspath(data)
    gcmt = os.path.join(data, "gem-global-coal-mine-tracker-2022-07", "Global-Coal-Mine-Tracker-July-2022.csv")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mine_clusters_sample_") as tmp:
        env = environment(tmp)
        polygons = os.path.join(OUT, "mine_polygons.gpkg")
        points = os.path.join(OUT, "mine_points.gpkg")
        for path in (polygons, points):
            if os.path.exists(path):
                os.remove(path)
        res = run(env, "mineclusters:harmonisepolygons",
                  "LAYERS=" + os.path.join(data, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson"),
                  "SOURCE_NAMES=Maus et al. 2020 v1", f"EXTENT={REGION}", f"OUTPUT={polygons}")
        print(f"{polygons}: {res['N_POLYGONS']:.0f} polygons from {res['N_INPUT']:.0f} inputs")
        res = run(env, "mineclusters:harmonisepoints",
                  "LAYERS=" + os.path.join(data, "icmm-global-mining-dataset-2025", "mines.geojson"),
                  "LAYERS=" + os.path.join(data, "jasansky2022-facilities-prerelease", "facilities.gpkg"),
                  f"LAYERS=delimitedtext://file://{gcmt}?encoding=latin-1&type=csv&xField=Longitude"
                  "&yField=Latitude&crs=EPSG:4326&geomType=point&detectTypes=no",
                  "SOURCE_NAMES=ICMM 2025,Jasansky et al. 2022,GEM GCMT 2022-07",
                  "DEFAULT_COMMODITY=GEM GCMT 2022-07=Coal", f"EXTENT={REGION}", f"OUTPUT={points}")
        print(f"{points}: {res['N_POINTS']:.0f} points")


if __name__ == "__main__":
    main()
