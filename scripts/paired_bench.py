#!/usr/bin/env python3
"""Paired benchmark runs: one command at two commits, interleaved, in the same session.

    .venv/bin/python scripts/paired_bench.py --base REV [--head REV] [--rounds N] -- COMMAND...

Checks out each commit as a git worktree under /var/tmp/mc_paired/<rev> (the benchmark data cache
benchmarks/data/ shared with this checkout), then runs COMMAND in each worktree in turn, base
first, N rounds (base, head, base, head, ...), so that a change of the machine's load falls on both
alike. Reports each run's wall time and peak resident memory of the command's processes, the
medians and the ratio head / base. COMMAND runs with the worktree as working directory; write
paths inside it relative (e.g. `benchmarks/bench_footprint.py`), and the venv's Python by its
absolute path (the worktrees have no venv).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = "/var/tmp/mc_paired"


def worktree(rev):
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    path = os.path.join(TREES, sha[:10])
    if not os.path.isdir(path):
        os.makedirs(TREES, exist_ok=True)
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", path, sha], check=True,
                       capture_output=True)
    data = os.path.join(ROOT, "benchmarks", "data")
    link = os.path.join(path, "benchmarks", "data")
    if os.path.isdir(data) and not os.path.exists(link):
        os.symlink(data, link)
    return sha[:10], path


def run(command, cwd):
    """(wall seconds, peak RSS MiB of the command's processes, last line of its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{command} failed in {cwd}:\n{proc.stderr[-3000:]}")
    # ru_maxrss of the children is the largest child so far: a smaller later one does not show
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    try:  # a benchmark that prints one JSON object (scripts/bench_qgis_process.py): its numbers
        out = json.loads(proc.stdout)
        last = " ".join(f"{k}={out[k]}" for k in ("wall_s", "peak_rss_mb", "stages") if k in out)
    except ValueError:
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return wall, peak, last


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    trees = [worktree(args.base), worktree(args.head)]
    walls = {sha: [] for sha, _ in trees}
    for k in range(args.rounds):
        for sha, path in trees:
            wall, peak, last = run(command, path)
            walls[sha].append(wall)
            print(f"round {k + 1} {sha}: {wall:.2f} s (peak so far {peak:.0f} MiB) {last[:300]}",
                  flush=True)
    (base, _), (head, _) = trees
    mb, mh = statistics.median(walls[base]), statistics.median(walls[head])
    print(f"median base {base} {mb:.2f} s, head {head} {mh:.2f} s, head/base {mh / mb:.3f} "
          f"(spread base {min(walls[base]):.2f}..{max(walls[base]):.2f}, "
          f"head {min(walls[head]):.2f}..{max(walls[head]):.2f})")


if __name__ == "__main__":
    main()
