"""Benchmark of the polygon merge of the harmonise algorithm on the planet-scale input.

The input is the core benchmark's (``generate.py``: about 217,000 real mining polygons copied
across the Earth, with their real sources: Maus v1 India and Brazil, the Sepin et al. demo
subsets, the GEM coal mine boundaries). Each measured run is a fresh subprocess, so that its peak
memory (``ru_maxrss``) belongs to that run alone. A run loads the cached input (not timed), splits
the polygons into one source per real data set, and times ``core.harmonise.merge_polygons`` with a
progress and a cancel callback as the QGIS wrapper passes them. It checks that every input polygon
is accounted for and that the merged area is not larger than the summed input areas.

Usage::

    .venv/bin/python benchmarks/bench_harmonise.py                    # planet + dense, 3 runs
    .venv/bin/python benchmarks/bench_harmonise.py --variants planet --runs 1
    .venv/bin/python benchmarks/bench_harmonise.py --write            # also update RESULTS.md

``--write`` replaces the section between the harmonise markers of ``benchmarks/RESULTS.md``
(appended when absent); the rest of the file is left alone.
"""

import argparse
import json
import os
import platform
import resource
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

RESULTS = BENCH_DIR / "RESULTS.md"
START = "<!-- bench_harmonise: start -->"
END = "<!-- bench_harmonise: end -->"
LIMIT_S = 60.0
LIMIT_MB = 2048.0


def import_harmonise():
    """``mine_clusters.core.harmonise`` from this checkout (the repository root is the package)."""
    try:
        import mine_clusters.core.harmonise as harmonise
        if Path(harmonise.__file__).resolve().parent.parent == REPO_DIR:
            return harmonise
    except ImportError:
        pass
    link_dir = Path(tempfile.mkdtemp(prefix="mine_clusters_bench_"))
    (link_dir / "mine_clusters").symlink_to(REPO_DIR)
    sys.path.insert(0, str(link_dir))
    for name in [m for m in sys.modules if m == "mine_clusters" or m.startswith("mine_clusters.")]:
        del sys.modules[name]
    import mine_clusters.core.harmonise as harmonise
    return harmonise


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2.0 ** 20


def run_merge(variant, seed, data_dir):
    """One measured merge (in a fresh process); returns a dict."""
    import numpy as np

    harmonise = import_harmonise()
    t0 = time.perf_counter()
    d = generate.load(variant, seed, data_dir, log=lambda s: print(s, file=sys.stderr))
    polygons, source, ids = d["polygons"], d["polygon_source"], d["polygon_ids"]
    del d  # the points are not part of this benchmark
    sources = []
    for k, name in enumerate(generate.POLYGON_SOURCES):
        keep = source == k
        sources.append(harmonise.PolygonSource(name, polygons[keep], ids[keep]))
    n_in = len(polygons)
    del polygons
    load_s = time.perf_counter() - t0
    rss_loaded = current_rss_mb()
    calls = [0]

    def progress(_fraction):
        calls[0] += 1

    t = time.perf_counter()
    result = harmonise.merge_polygons(sources, progress=progress, should_stop=lambda: False)
    merge_s = time.perf_counter() - t
    peak = peak_rss_mb()
    traced = int(result.n_inputs.sum()) + len(result.dropped)
    import shapely

    # the inputs measured with the merge's own edge model (straight lon/lat edges), repaired
    # first as the merge repairs them; inputs crossing the antimeridian split as it splits them
    geodesy = sys.modules[harmonise.__name__.rsplit(".", 1)[0] + ".geodesy"]
    geometry = sys.modules[harmonise.__name__.rsplit(".", 1)[0] + ".geometry"]
    inputs = np.concatenate([np.asarray(s.geometries, dtype=object) for s in sources])
    inputs, _changed = geometry.fix_antimeridian(geometry.settle_poles(inputs))
    bad = ~shapely.is_valid(inputs) & ~shapely.is_missing(inputs)
    inputs[bad] = shapely.make_valid(inputs[bad])
    input_area = float(geodesy.polygon_area_m2(inputs).sum())
    return {
        "variant": variant, "seed": seed, "n_in": n_in, "n_out": len(result.geometries),
        "n_repaired": len(result.repaired), "n_dropped": len(result.dropped),
        "n_antimeridian": len(result.antimeridian), "traced": traced,
        "area_km2": float(result.area_m2.sum()) / 1e6, "input_area_km2": input_area / 1e6,
        "combinations": len(set(result.sources)), "progress_calls": calls[0],
        "load_s": load_s, "merge_s": merge_s, "rss_loaded_mb": rss_loaded, "peak_rss_mb": peak,
    }


def measure(variant, seed, data_dir):
    cmd = [sys.executable, __file__, "--worker", variant, "--seed", str(seed),
           "--data", str(data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measured_commit():
    """The commit the runs measured (with '+ changes' when the work tree differs from it)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "core/harmonise.py", "benchmarks/bench_harmonise.py")
    return head + (" + uncommitted changes" if dirty else "")


def markdown(rows, runs, load, commit):
    lines = [
        START,
        "## Harmonise: merging the planet-scale polygons (`bench_harmonise.py`)",
        "",
        f"Commit measured: {commit}. "
        f"Command: `.venv/bin/python benchmarks/bench_harmonise.py --runs {runs} --write`; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; each run a fresh process. Time is "
        "`merge_polygons` alone (input loading not included); peak memory is the whole "
        "process, input included. Target: ≤ 60 s and ≤ 2 GB. The machine is shared: load "
        f"average {load:.1f} when the runs started.",
        "",
        "| input | polygons in | polygons out | repaired | source combinations | area km² "
        "(inputs summed) | merge s (median, runs) | peak RSS MB (max) | RSS after loading MB |"
        " within target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, rs in rows.items():
        r0 = rs[0]
        times = [r["merge_s"] for r in rs]
        peak = max(r["peak_rss_mb"] for r in rs)
        ok = statistics.median(times) <= LIMIT_S and peak <= LIMIT_MB
        lines.append(
            f"| {variant} | {r0['n_in']:,} | {r0['n_out']:,} | {r0['n_repaired']:,} | "
            f"{r0['combinations']} | {r0['area_km2']:,.1f} ({r0['input_area_km2']:,.1f}) | "
            f"{statistics.median(times):.1f} ({', '.join(f'{t:.1f}' for t in times)}) | "
            f"{peak:,.0f} | {r0['rss_loaded_mb']:,.0f} | {'yes' if ok else 'NO'} |")
    lines += ["", "Every input polygon is in exactly one output polygon or in the dropped "
              "report in every run (checked by the script). Areas: straight lon/lat edges "
              "(`core.geodesy.AREA_EDGE_MODEL`), inputs summed with the same edge model "
              "after the merge's repair and antimeridian split.", END]
    return "\n".join(lines)


def write_results(section):
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["planet", "dense"],
                    choices=["planet", "dense"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=str(generate.DEFAULT_DATA_DIR))
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_merge(args.worker, args.seed, args.data)))
        return
    for variant in args.variants:
        generate.ensure(variant, args.seed, args.data, log=lambda s: print(s, file=sys.stderr))
    load = os.getloadavg()[0]
    commit = measured_commit()
    rows = {}
    for variant in args.variants:
        rows[variant] = []
        for i in range(args.runs):
            r = measure(variant, args.seed, args.data)
            if r["traced"] != r["n_in"]:
                raise SystemExit(f"{variant}: {r['n_in']} polygons in, {r['traced']} traced")
            if r["area_km2"] > r["input_area_km2"] * (1 + 1e-9):
                raise SystemExit(f"{variant}: merged area exceeds the summed input area")
            print(f"{variant} run {i + 1}: merge {r['merge_s']:.1f} s, peak "
                  f"{r['peak_rss_mb']:.0f} MB, {r['n_in']} -> {r['n_out']} polygons",
                  file=sys.stderr)
            rows[variant].append(r)
    section = markdown(rows, args.runs, load, commit)
    print(section)
    if args.write:
        write_results(section)


if __name__ == "__main__":
    main()
