"""Benchmark of the core engine on the planet-scale input, with the paper's method as baseline.

Each measured run is a fresh subprocess, so that its peak memory (``ru_maxrss``) belongs to that run
alone. A run loads the cached input (see ``generate.py``; not timed as part of the engine), then
times ``prepare_features`` and ``cluster_mines`` (H_limit 20 km, thresholds 1..20 km, meta-optimised
H_max, Eq. 1, w = 0.5), with a progress and a cancel callback as the QGIS wrapper passes them. The
engine's own per-stage timings (``result.timings``) and counts (``result.stats``) are reported, and
the medians over the runs.

The baseline runs, in the same invocation, on a real regional subset at its real position (Maus v1
India polygons and every ICMM, Jasansky and GEM point within 20 km of them): the paper's method,
i.e. for every pre-group a dense distance matrix (``core.linkage.dense_distance_matrix``, the same
distance model as the engine), fastcluster single linkage and a ``scipy.cluster.hierarchy.fcluster``
cut at every candidate threshold. Its pre-groups come from the engine's sparse graph (the paper also
pre-groups before building its matrices). Its partitions are checked against the engine's at every
threshold, and the ratio of the two times is reported.

Usage::

    .venv/bin/python benchmarks/bench_core.py                       # planet + dense, 3 runs each
    .venv/bin/python benchmarks/bench_core.py --variants planet --runs 1
    .venv/bin/python benchmarks/bench_core.py --variants planet --lon-fraction 0.1 --runs 1  # quick
"""

import argparse
import atexit
import csv
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import generate  # noqa: E402  (benchmarks/generate.py)

H_LIMIT_M = 20000.0
HARMONISATION_CSV = ("r-impl-harmonisation-tables", "harmonisation_metals_coal.csv")
#: Timing keys that are not stages of their own.
NOT_STAGES = ("total", "cluster_mines")


def import_core():
    """Import ``mine_clusters.core`` from this checkout (the repository root is the package)."""
    try:
        import mine_clusters.core as core
        if Path(core.__file__).resolve().parent.parent == REPO_DIR:
            return core
    except ImportError:
        pass
    link_dir = Path(tempfile.mkdtemp(prefix="mine_clusters_bench_"))
    (link_dir / "mine_clusters").symlink_to(REPO_DIR)
    atexit.register(shutil.rmtree, link_dir, True)      # removes the link, not the checkout
    sys.path.insert(0, str(link_dir))
    for name in [m for m in sys.modules if m == "mine_clusters" or m.startswith("mine_clusters.")]:
        del sys.modules[name]
    import mine_clusters.core as core
    return core


def peak_rss_mb():
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2.0 ** 20


def harmonisation(data_dir):
    path = Path(data_dir).joinpath(*HARMONISATION_CSV)
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["material"]: row["material_harmonized"] for row in csv.DictReader(fh)}


def lon_subset(d, fraction):
    """Features whose first coordinate lies in the first `fraction` of the longitudes (quick runs)."""
    import numpy as np
    import shapely
    limit = -180.0 + 360.0 * fraction
    out = dict(d)
    for layer, keys in (("polygons", ("polygons", "polygon_ids", "polygon_source",
                                      "polygon_template", "polygon_copy")),
                        ("points", ("points", "point_ids", "point_source", "point_template",
                                    "point_copy", "primary", "commodities"))):
        coords, idx = shapely.get_coordinates(d[layer], return_index=True)
        first = np.unique(idx, return_index=True)[1]
        keep = coords[first, 0] < limit
        for k in keys:
            out[k] = d[k][keep]
    return out


def digest(result):
    """Hash of the final partition (feature id, part, cluster id), to compare runs."""
    h = hashlib.sha256()
    for table in (result.polygons, result.points):
        for arr in (table.feature_id, table.part, table.cluster_id):
            h.update(arr.astype("int64").tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- workers

def run_engine(variant, seed, data_dir, lon_fraction):
    """One measured run of the engine (in a fresh process); returns a dict."""
    core = import_core()
    t0 = time.perf_counter()
    if variant.startswith("region-"):
        d = generate.load_region(variant.split("-", 1)[1], data_dir)
    else:
        d = generate.load(variant, seed, data_dir, log=lambda s: print(s, file=sys.stderr))
    if lon_fraction < 1.0:
        d = lon_subset(d, lon_fraction)
    table = harmonisation(data_dir)
    polygons, points = list(d["polygons"]), list(d["points"])
    primary, commodities = d["primary"].tolist(), d["commodities"].tolist()
    load_s = time.perf_counter() - t0
    rss_loaded = current_rss_mb()

    calls = [0]

    def progress(_fraction):
        calls[0] += 1

    def should_stop():
        return False

    t = time.perf_counter()
    features = core.prepare_features(
        polygons=polygons, polygon_ids=d["polygon_ids"], polygon_areas=None, points=points,
        point_ids=d["point_ids"], primary=primary, commodities=commodities, harmonisation=table)
    prepare_s = time.perf_counter() - t
    t = time.perf_counter()
    result = core.cluster_mines(features, h_limit_m=H_LIMIT_M, progress=progress,
                                should_stop=should_stop)
    cluster_s = time.perf_counter() - t
    timings = {"prepare_features": prepare_s}
    timings.update({k: float(v) for k, v in result.timings.items()})
    timings["cluster_mines"] = cluster_s
    timings["total"] = prepare_s + cluster_s
    return {
        "variant": variant, "lon_fraction": lon_fraction,
        "n_polygons": len(polygons), "n_points": len(points), "n_elements": len(features),
        "load_s": load_s, "timings": timings, "stats": dict(result.stats),
        "rss_after_load_mb": rss_loaded, "peak_rss_mb": peak_rss_mb(),
        "progress_calls": calls[0],
        "n_clusters": int(result.n_clusters), "max_threshold_m": result.max_threshold_m,
        "global_threshold_m": result.global_threshold_m,
        "area_unassigned_pct": result.area_unassigned_pct,
        "area_multi_pct": result.area_multi_pct, "partition": digest(result),
        "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    }


def _canonical(labels):
    """Labels renumbered by first occurrence, so that equal partitions compare equal."""
    import numpy as np
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


def _distance_graph(linkage, features, h_limit_m):
    """Every pair within h_limit_m with its distance (the paper's sparse pre-grouping graph),
    through the engine's candidate search and distance model."""
    if hasattr(linkage, "distance_graph"):
        return linkage.distance_graph(features, h_limit_m)
    tile_info = linkage.tiles(features)
    own = linkage.own_tile_projections(features, tile_info)
    radius = linkage.reach_m(features, own, tile_info)
    i, j, _lower, _n = linkage.candidate_pairs(features, h_limit_m, radius=radius)
    d = linkage.pair_distances(features, i, j, tile_info, own)
    keep = d <= h_limit_m + linkage.TIE_TOLERANCE_M
    return i[keep], j[keep], d[keep]


def run_baseline(region, data_dir):
    """The engine and the paper's dense method on a real regional subset (fresh process)."""
    import fastcluster
    import numpy as np
    from scipy.cluster.hierarchy import fcluster
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import squareform

    core = import_core()
    from mine_clusters.core import linkage

    d = generate.load_region(region, data_dir)
    features = core.prepare_features(
        polygons=list(d["polygons"]), polygon_ids=d["polygon_ids"], points=list(d["points"]),
        point_ids=d["point_ids"], primary=d["primary"].tolist(),
        commodities=d["commodities"].tolist(), harmonisation=harmonisation(data_dir))
    n = len(features)

    # The engine, stages as the benchmark above.
    t = time.perf_counter()
    result = core.cluster_mines(features, h_limit_m=H_LIMIT_M)
    engine_s = time.perf_counter() - t
    thresholds = result.thresholds_m
    # Everything up to and including the cuts (the stages the paper's method replaces).
    engine_linkage_s = sum(float(v) for k, v in result.timings.items()
                           if k not in ("optimisation", "trace", "total"))
    rss_engine = peak_rss_mb()

    # The paper's method: pre-groups, then per group a dense matrix, fastcluster, a cut per h.
    t = time.perf_counter()
    i, j, dist = _distance_graph(linkage, features, H_LIMIT_M)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    n_groups, group = connected_components(graph, directed=False)
    pregroup_s = time.perf_counter() - t
    t = time.perf_counter()
    labels = np.zeros((len(thresholds), n), dtype=np.int64)
    offset = 0
    order = np.argsort(group, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(group, minlength=n_groups))]
    dense_pairs = 0
    largest = 0
    for g in range(n_groups):
        members = order[bounds[g]:bounds[g + 1]]
        m = len(members)
        largest = max(largest, m)
        if m == 1:
            labels[:, members] = offset
            offset += 1
            continue
        matrix = linkage.dense_distance_matrix(features, members)
        dense_pairs += m * (m - 1) // 2
        tree = fastcluster.linkage(squareform(matrix, checks=False), method="single")
        for k, h in enumerate(thresholds):
            labels[k, members] = offset + fcluster(tree, t=h, criterion="distance")
        offset += m + 1
    dense_s = time.perf_counter() - t
    baseline_s = pregroup_s + dense_s

    # Same partitions at every threshold as the engine's forest?
    if hasattr(linkage, "single_linkage_forest"):
        forest = linkage.single_linkage_forest(features, H_LIMIT_M)
    else:
        forest = linkage.spanning_forest(n, i, j, dist, H_LIMIT_M)
    mismatches = [float(h) for k, h in enumerate(thresholds)
                  if not np.array_equal(_canonical(labels[k]), _canonical(forest.labels(h)))]
    return {
        "variant": f"region-{region}", "n_polygons": len(d["polygons"]),
        "n_points": len(d["points"]), "n_elements": n, "pregroups": int(n_groups),
        "largest_pregroup": int(largest), "dense_pairs": int(dense_pairs),
        "sparse_edges": int(len(i)), "engine_stats": dict(result.stats),
        "engine_cluster_mines_s": engine_s, "engine_linkage_s": engine_linkage_s,
        "engine_timings": {k: float(v) for k, v in result.timings.items()},
        "baseline_pregroups_s": pregroup_s, "baseline_dense_linkage_cuts_s": dense_s,
        "baseline_s": baseline_s, "ratio_baseline_over_engine_linkage": baseline_s / engine_linkage_s,
        "peak_rss_engine_mb": rss_engine, "peak_rss_mb": peak_rss_mb(),
        "thresholds_with_different_partitions": mismatches,
    }


# --------------------------------------------------------------------------- driver

def _spawn(args):
    cmd = [sys.executable, str(Path(__file__).resolve())] + args
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark run failed: {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(values):
    return statistics.median(values) if values else float("nan")


def summarise(runs):
    """Medians over runs of a variant, plus the run-to-run consistency."""
    first = runs[0]
    keys = list(first["timings"])
    return {
        "variant": first["variant"], "runs": len(runs), "n_polygons": first["n_polygons"],
        "n_points": first["n_points"], "n_elements": first["n_elements"],
        "timings_median_s": {k: _median([r["timings"].get(k, float("nan")) for r in runs])
                             for k in keys},
        "timings_all_s": {k: [round(r["timings"].get(k, float("nan")), 3) for r in runs]
                          for k in keys},
        "peak_rss_median_mb": _median([r["peak_rss_mb"] for r in runs]),
        "rss_after_load_median_mb": _median([r["rss_after_load_mb"] for r in runs]),
        "cpu_over_wall": _median([r["cpu_s"] / (r["load_s"] + r["timings"]["total"]) for r in runs]),
        "stats": first["stats"], "n_clusters": first["n_clusters"],
        "max_threshold_m": first["max_threshold_m"], "global_threshold_m": first["global_threshold_m"],
        "area_unassigned_pct": first["area_unassigned_pct"],
        "area_multi_pct": first["area_multi_pct"],
        "same_partition_every_run": len({r["partition"] for r in runs}) == 1,
    }


def _dense_size(n):
    """Size of a condensed float64 distance vector of n elements, as text."""
    b = n * (n - 1) / 2 * 8
    return f"{b / 2.0 ** 30:.1f} GiB" if b >= 2 ** 30 else f"{b / 2.0 ** 20:.1f} MiB"


def markdown(summaries, baselines, command):
    lines = [f"Command: `{command}`", "",
             f"Machine: {platform.node()} ({os.cpu_count()} cores), Python {platform.python_version()}", ""]
    for s in summaries:
        t = s["timings_median_s"]
        st = s["stats"]
        lines += [
            f"### {s['variant']}: {s['n_polygons']:,} polygons, {s['n_points']:,} points "
            f"({s['n_elements']:,} elements), median of {s['runs']} runs", "",
            "| stage | wall (s) |", "|---|---|"]
        for k in t:
            if k not in NOT_STAGES:
                lines.append(f"| {k} | {t[k]:.2f} |")
        lines += [f"| **total (prepare_features + cluster_mines)** | **{t['total']:.2f}** |", "",
                  f"- per run (total): {s['timings_all_s']['total']}",
                  f"- peak RSS of the run's process: {s['peak_rss_median_mb']:.0f} MiB "
                  f"(the loaded input alone: {s['rss_after_load_median_mb']:.0f} MiB)",
                  f"- CPU time / wall time: {s['cpu_over_wall']:.2f}",
                  "- engine counts: " + "; ".join(f"{k.replace('_', ' ')} {v:,}"
                                                    for k, v in st.items()),
                  f"- the paper's method would hold a dense matrix of that largest pre-group: "
                  f"{_dense_size(st.get('largest_pregroup', 0))} as a condensed float64 vector "
                  f"(fastcluster needs it in one piece)",
                  f"- result: {s['n_clusters']:,} clusters, H*_max = {s['max_threshold_m']:g} m, "
                  f"global h = {s['global_threshold_m']:g} m, A_u = {s['area_unassigned_pct']:.2f} %, "
                  f"A_m = {s['area_multi_pct']:.2f} %; same partition every run: "
                  f"{s['same_partition_every_run']}", ""]
    for b in baselines:
        lines += [
            f"### Baseline on {b['variant']}: {b['n_polygons']} polygons, {b['n_points']} points "
            f"({b['n_elements']} elements), median of {b['runs']} runs", "",
            "| method | wall (s) |", "|---|---|",
            f"| engine: pairs, distances, forest, cuts | {b['engine_linkage_s']:.3f} |",
            f"| engine: whole cluster_mines (incl. optimisation) | {b['engine_cluster_mines_s']:.3f} |",
            f"| paper: pre-groups (engine's sparse graph) | {b['baseline_pregroups_s']:.3f} |",
            f"| paper: dense matrices + fastcluster + fcluster per h | "
            f"{b['baseline_dense_linkage_cuts_s']:.3f} |",
            f"| **paper total / engine linkage** | **{b['ratio_baseline_over_engine_linkage']:.1f}x** |",
            "",
            f"- {b['pregroups']} pre-groups, largest {b['largest_pregroup']} elements; dense pairs "
            f"{b['dense_pairs']:,} vs sparse edges <= H_limit {b['sparse_edges']:,}",
            f"- peak RSS {b['peak_rss_mb']:.0f} MiB",
            f"- thresholds where the partitions differ: {b['thresholds_with_different_partitions'] or 'none'}",
            ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["planet", "dense"],
                        choices=list(generate.VARIANTS) + [f"region-{r}" for r in generate.REGIONS])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", nargs="+", default=["india", "world"],
                        choices=list(generate.REGIONS) + ["none"],
                        help="real regions for the baseline comparison ('none' to skip)")
    parser.add_argument("--lon-fraction", type=float, default=1.0,
                        help="keep only features in this fraction of the longitudes (quick checks)")
    parser.add_argument("--data", default=str(generate.DEFAULT_DATA_DIR))
    parser.add_argument("--json", help="also write all runs and summaries to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.worker.startswith("baseline-"):
            out = run_baseline(args.worker.split("-", 1)[1], args.data)
        else:
            out = run_engine(args.worker, args.seed, args.data, args.lon_fraction)
        print(json.dumps(out))
        return 0

    # Inputs are generated (or found in the cache) before anything is measured.
    for variant in args.variants:
        if not variant.startswith("region-"):
            generate.ensure("planet" if variant == "planet" else "dense", args.seed, args.data,
                            log=lambda s: print(s, file=sys.stderr))

    summaries, all_runs, baselines = [], {}, []
    for variant in args.variants:
        runs = []
        for r in range(args.runs):
            res = _spawn(["--worker", variant, "--seed", str(args.seed), "--data", args.data,
                          "--lon-fraction", str(args.lon_fraction)])
            print(f"{variant} run {r + 1}/{args.runs}: total {res['timings']['total']:.2f} s, "
                  f"peak {res['peak_rss_mb']:.0f} MiB, {json.dumps(res['timings'])}", file=sys.stderr)
            runs.append(res)
        all_runs[variant] = runs
        summaries.append(summarise(runs))
    for region in [r for r in args.baseline if r != "none"]:
        runs = [_spawn(["--worker", f"baseline-{region}", "--data", args.data])
                for _ in range(args.runs)]
        b = dict(runs[0])
        for k in ("engine_cluster_mines_s", "engine_linkage_s", "baseline_pregroups_s",
                  "baseline_dense_linkage_cuts_s", "baseline_s", "peak_rss_mb"):
            b[k] = _median([r[k] for r in runs])
        b["ratio_baseline_over_engine_linkage"] = b["baseline_s"] / b["engine_linkage_s"]
        b["runs"] = len(runs)
        b["thresholds_with_different_partitions"] = sorted(
            {h for r in runs for h in r["thresholds_with_different_partitions"]})
        all_runs[f"baseline-{region}"] = runs
        baselines.append(b)

    command = "python benchmarks/bench_core.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(markdown(summaries, baselines, command.strip()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"summaries": summaries, "baselines": baselines, "runs": all_runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
