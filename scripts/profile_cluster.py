#!/usr/bin/env python3
"""Where the cluster algorithm's time goes: one in-process run on the inputs that
`bench_qgis_process.py` wrote, with a timeline of its steps by thread and the CPU in use.

    .venv/bin/python scripts/bench_qgis_process.py planet qpwork        # writes the inputs once
    .venv/bin/python scripts/profile_cluster.py qpwork [--min 0.05]

Runs QGIS (offscreen) in this process with the plugin of this checkout, runs
mineclusters:clusterlocaloptimum as bench_qgis_process.py does (every output into WORKDIR/profile)
and prints each timed call (start, end, seconds, thread; consecutive calls of one step merged)
that took at least --min seconds, then the process's CPU use (cores busy) every half second. The
steps timed are listed in STEPS. Wrapping costs a few microseconds a call; the wall time is about
qgis_process's minus its start-up (1.5 s).
"""
import argparse
import importlib
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (module, object or None, function) of the steps timed.
STEPS = [
    ("algorithms.layer_io", None, "read"), ("core", None, "prepare_features"),
    ("core.geometry", None, "repair"), ("core", None, "cluster_mines"),
    ("core.linkage", None, "candidate_pairs"), ("core.linkage", None, "_measure"),
    ("core.geometry", None, "cluster_polygons_wkb"),
    ("algorithms.cluster", "ClusterLocalOptimumAlgorithm", "_write_elements"),
    ("algorithms.layer_io", "Outputs", "feed_columns"), ("algorithms.layer_io", "Outputs", "settle"),
    ("algorithms.layer_io", "Background", "result"), ("algorithms.gpkg", "Table", "finish"),
    ("algorithms.styles", None, "save_default_style"),
    ("algorithms.provenance", None, "save_metadata"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("--min", type=float, default=0.05, help="shortest step shown (s)")
    args = parser.parse_args()
    inputs = {k: os.path.join(args.workdir, f"planet_{k}.gpkg") for k in ("polygons", "points")}
    if not all(os.path.exists(p) for p in inputs.values()):
        raise SystemExit(f"no inputs in {args.workdir}: run bench_qgis_process.py there first")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    plugins = tempfile.mkdtemp(prefix="mc_profile_")
    os.symlink(ROOT, os.path.join(plugins, "mine_clusters"))
    sys.path[:0] = [plugins, "/usr/share/qgis/python/plugins"]
    from qgis.core import QgsApplication, QgsProcessingFeedback

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from mine_clusters.algorithms.provider import MineClustersProvider

    provider = MineClustersProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    from qgis import processing

    events, t0 = [], [time.perf_counter()]

    def timed(owner, name, label):
        fn = getattr(owner, name)

        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                events.append((start - t0[0], time.perf_counter() - t0[0],
                               threading.current_thread().name, label))
        setattr(owner, name, staticmethod(wrapper) if isinstance(
            owner.__dict__.get(name), staticmethod) else wrapper)

    for module, cls, name in STEPS:
        mod = importlib.import_module(f"mine_clusters.{module}")
        owner = getattr(mod, cls) if cls else mod
        timed(owner, name, f"{cls or module.split('.')[-1]}.{name}")

    cpu = []

    def sample():
        while True:
            t = os.times()
            cpu.append((time.perf_counter() - t0[0], t.user + t.system))
            time.sleep(0.25)

    out = os.path.join(args.workdir, "profile")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    params = dict(POLYGONS=inputs["polygons"], POINTS=inputs["points"],
                  OUTPUT_POLYGONS=f"{out}/polygons.gpkg", OUTPUT_POINTS=f"{out}/points.gpkg",
                  OUTPUT_CLUSTERS=f"{out}/clusters.gpkg",
                  OUTPUT_SENSITIVITY=f"{out}/sensitivity.csv")
    t0[0] = time.perf_counter()
    threading.Thread(target=sample, daemon=True).start()
    processing.run("mineclusters:clusterlocaloptimum", params, feedback=QgsProcessingFeedback())
    print(f"wall {time.perf_counter() - t0[0]:.2f} s")
    merged = []
    for start, end, thread, label in sorted(events):
        last = merged[-1] if merged else None
        if last and last[2:4] == [thread, label] and start - last[1] < 0.05:
            last[1], last[4] = end, last[4] + 1
        else:
            merged.append([start, end, thread, label, 1])
    print(f"{'start':>7} {'end':>7} {'s':>6}  thread        step")
    for start, end, thread, label, n in merged:
        if end - start >= args.min:
            print(f"{start:7.2f} {end:7.2f} {end - start:6.2f}  {thread[:12]:12s}  {label}"
                  + (f" x{n}" if n > 1 else ""))
    print("cores busy (every 0.5 s): " + " ".join(
        f"{cpu[k][0]:.1f}:{(cpu[k + 2][1] - cpu[k][1]) / (cpu[k + 2][0] - cpu[k][0]):.2f}"
        for k in range(0, len(cpu) - 2, 2)))
    QgsApplication.processingRegistry().removeProvider(provider)


if __name__ == "__main__":
    main()
