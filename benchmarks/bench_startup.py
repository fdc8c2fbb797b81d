"""Start-up cost of the plugin: ``qgis_process list`` with the plugin minus without it, same run.

Target (release issue): loading the plugin (provider and algorithms registered) imports no
numpy-heavy science module (numpy, scipy, matplotlib, shapely, the core's engine) until an
algorithm runs or a dialog checks its dependencies; ``qgis_process list`` with the plugin takes
at most 0.1 s longer than without it.

What is measured:

1. Snapshots, never the live work tree (someone may be editing it): the code to measure is
   ``git stash create`` (the work tree's tracked changes as a commit; HEAD when clean) or the
   ``--current REV`` given, and the optional ``--baseline REV``; each is ``git archive``d into its
   own folder named ``mine_clusters`` under a temporary directory. Untracked files are not in a
   snapshot (the script warns about untracked ``.py`` files of the plugin).
2. Every configuration gets its own throw-away profile (``QGIS_CUSTOM_CONFIG_PATH``, as in
   ``tests/e2e/conftest.py``) and the same environment (offscreen, the venv's site-packages on
   ``PYTHONPATH``); only the plugin differs: "none" has an empty ``QGIS_PLUGINPATH`` folder and the
   plugin not enabled, "current" and "baseline" have their snapshot there, enabled.
3. One warm-up run each (not counted: profile creation, ``.pyc`` compilation), then ``--runs``
   rounds of ``qgis_process.bin list``, one run per configuration per round, the order rotated
   every round (so that the machine's drift hits all configurations alike). Each run: wall time,
   CPU time (user + system) and peak resident memory of that process (``os.wait4``). The output
   must list ``mineclusters:`` algorithms when the plugin is loaded and none when it is not.
4. Reported: median, min and interquartile range per configuration; the difference of the
   medians against "none" (the target: current - none <= 0.1 s), the median of the per-round
   paired differences and the difference of the minima.
5. The imports, two ways (not timed with the runs above):
   - in a fresh ``/usr/bin/python3`` (the Python ``qgis_process`` embeds): ``QgsApplication([],
     False)``, ``initQgis()``, then the snapshot is loaded (``import mine_clusters``,
     ``classFactory(None).initProcessing()``: the provider is added, QGIS calls
     ``loadAlgorithms`` and every algorithm's ``initAlgorithm``), before the Processing plugin as
     in ``qgis_process`` 3.22. Listed: the modules of numpy, scipy, shapely, matplotlib,
     fastcluster and ``mine_clusters.core`` that this load imported, and its in-process time
     (import of the provider module; ``initProcessing``), median of ``--probes`` processes;
   - one more ``qgis_process.bin list`` per configuration with ``PYTHONPROFILEIMPORTTIME=1``
     (Python's ``-X importtime``): which of those packages the real process imports, through
     which chain of imports, and the cumulative import time of the plugin's own top-level
     imports. (QGIS 3.22's Processing plugin imports numpy itself, with or without this plugin:
     ``processing.ProcessingPlugin`` -> ``processing.gui.HistoryDialog`` ->
     ``processing.gui.TestTools``.)

Usage (from the repository root, the project's venv)::

    .venv/bin/python benchmarks/bench_startup.py --runs 15 --baseline e32095f
    .venv/bin/python benchmarks/bench_startup.py --runs 5                 # current code only
    .venv/bin/python benchmarks/bench_startup.py --current HEAD --baseline HEAD~3 --json out.json
"""
import argparse
import io
import json
import os
import platform
import shutil
import site
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
TARGET_S = 0.1
SYSTEM_PYTHON = "/usr/bin/python3"
SCIENCE = ("numpy", "scipy", "shapely", "matplotlib", "fastcluster")
#: core modules that loading the provider may import (no numpy in them)
ALLOWED_CORE = ("mine_clusters.core", "mine_clusters.core.colours")

# Run by /usr/bin/python3 with the snapshot's parent folder first on sys.path; prints one JSON line.
PROBE = r'''
import json, sys, time
WATCH = %(watch)r
def watched():
    return {m for m in sys.modules
            if m.split(".")[0] in WATCH or m == "mine_clusters" or m.startswith("mine_clusters.")}
from qgis.core import QgsApplication
app = QgsApplication([], False)
QgsApplication.setPrefixPath("/usr", True)
app.initQgis()
before = watched()
all_before = set(sys.modules)
t0 = time.perf_counter()
import mine_clusters
plugin = mine_clusters.classFactory(None)
t1 = time.perf_counter()
import mine_clusters.algorithms.provider
t2 = time.perf_counter()
plugin.initProcessing()
t3 = time.perf_counter()
provider = QgsApplication.processingRegistry().providerById("mineclusters")
algs = {a.id(): len(a.parameterDefinitions()) for a in provider.algorithms()}
new = sorted(watched() - before)
print(json.dumps({
    "plugin_file": mine_clusters.__file__,
    "before": sorted(before),
    "new": new,
    "new_module_count": len(set(sys.modules) - all_before),
    "other_new": sorted(m for m in set(sys.modules) - all_before if m not in new),
    "algorithms": algs,
    "import_s": t2 - t0, "class_factory_s": t1 - t0, "init_processing_s": t3 - t2,
}))
'''


def git(*args, text=True):
    return subprocess.run(["git", "-C", str(REPO_DIR), *args], check=True, capture_output=True,
                          text=text).stdout


def snapshot(rev, dest):
    """git archive REV into dest/mine_clusters; REV None: the work tree's tracked state."""
    label = rev
    if rev is None:
        stash = git("stash", "create").strip()
        head = git("rev-parse", "--short", "HEAD").strip()
        if stash:
            rev = stash
            changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no")
                       .splitlines()]
            label = f"work tree = HEAD {head} + changes to {', '.join(changed)} " \
                    f"(stash commit {stash[:9]})"
        else:
            rev, label = "HEAD", f"HEAD {head} (clean work tree)"
        untracked = [p for p in git("ls-files", "--others", "--exclude-standard").splitlines()
                     if p.endswith(".py") and not p.startswith(("tests/", "benchmarks/", "scripts/"))]
        if untracked:
            print(f"warning: untracked Python files not in the snapshot: {', '.join(untracked)}",
                  file=sys.stderr)
    else:
        label = f"{git('rev-parse', '--short', rev).strip()} ({rev})"
    sha = git("rev-parse", rev).strip()
    target = Path(dest) / "mine_clusters"
    target.mkdir(parents=True)
    data = git("archive", "--format=tar", sha, text=False)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(target)
    return {"sha": sha[:9], "label": label, "dir": str(target)}


class Config:
    def __init__(self, name, root, runtime, site_packages, plugin=None):
        self.name, self.plugin = name, plugin
        plugins = Path(root) / name / "plugins"
        plugins.mkdir(parents=True)
        if plugin:
            os.symlink(plugin["dir"], plugins / "mine_clusters")
        profile = Path(root) / name / "config"
        ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
        ini.parent.mkdir(parents=True)
        ini.write_text("[PythonPlugins]\n" + ("mine_clusters=true\n" if plugin else ""))
        self.env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile),
                        QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen",
                        XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=site_packages)
        self.out = Path(root) / name / "stdout.txt"
        self.err = Path(root) / name / "stderr.txt"
        self.wall, self.cpu, self.rss = [], [], []


def run_list(exe, config):
    """One `qgis_process.bin list`: wall s, CPU s, peak RSS MiB of that process; output checked."""
    with open(config.out, "wb") as out, open(config.err, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([exe, "list"], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=config.env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = config.out.read_text(errors="replace")
    n_algs = sum(1 for line in text.splitlines() if line.strip().startswith("mineclusters:"))
    problem = None
    if proc.returncode != 0:
        problem = f"exit code {proc.returncode}"
    elif config.plugin and n_algs == 0:
        problem = "the plugin is loaded but no mineclusters: algorithm is listed"
    elif not config.plugin and n_algs:
        problem = "no plugin, yet mineclusters: algorithms are listed"
    elif "Available algorithms" not in text:
        problem = "no algorithm list in the output"
    if problem:
        sys.exit(f"{config.name}: {problem}\n--- stdout (end)\n{text[-2000:]}\n--- stderr (end)\n"
                 f"{config.err.read_text(errors='replace')[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, n_algs


def probe_imports(config, site_packages):
    env = dict(config.env, PYTHONPATH=os.pathsep.join(
        [str(Path(config.plugin["dir"]).parent), site_packages]))
    code = PROBE % {"watch": SCIENCE}
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"import probe failed for {config.name}:\n{proc.stdout[-2000:]}\n"
                 f"{proc.stderr[-3000:]}")
    doc = json.loads(lines[-1])
    if not doc["plugin_file"].startswith(config.plugin["dir"]):
        sys.exit(f"import probe of {config.name} loaded {doc['plugin_file']}, not the snapshot")
    return doc


def import_tree(config, exe):
    """`qgis_process.bin list` with PYTHONPROFILEIMPORTTIME=1: the science packages imported, each
    with the chain of imports that first pulled it in, and the plugin's own import time."""
    env = dict(config.env, PYTHONPROFILEIMPORTTIME="1")
    proc = subprocess.run([exe, "list"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        # "import time:  self_us | cumulative_us | <two spaces per level>name"
        self_us, cumulative, name = line[len("import time:"):].split("|", 2)
        name = name[1:]
        level = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((level, name.strip(), int(cumulative), int(self_us)))
    # -X importtime prints a module after its imports: read backwards, the parents come first
    stack, chains = [], {}
    for level, name, cumulative, _ in reversed(rows):
        while stack and stack[-1][0] >= level:
            stack.pop()
        chains.setdefault(name, ([n for _, n in stack], cumulative))
        stack.append((level, name))
    science = {}
    for top in SCIENCE:
        if top in chains:
            own = [r for r in rows if r[1] == top or r[1].startswith(top + ".")]
            science[top] = {"via": chains[top][0], "modules": len(own),
                            "self_s": sum(r[3] for r in own) / 1e6}
    plugin_s = sum(c for level, n, c, _ in rows
                   if level == 0 and (n == "mine_clusters" or n.startswith("mine_clusters.")))
    return {"science": science, "plugin_import_s": plugin_s / 1e6, "modules": len(rows)}


def summary(values):
    q1, _, q3 = (statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1
                 else values * 3)
    return {"median": statistics.median(values), "min": min(values), "q1": q1, "q3": q3}


def qgis_versions(exe, env):
    proc = subprocess.run([exe, "--version"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    keep = ("QGIS ", "Qt version", "Python version", "GEOS version")
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith(keep)]


def summarise_imports(doc):
    new = doc["new"]
    science = {}
    for m in new:
        top = m.split(".")[0]
        if top in SCIENCE:
            science[top] = science.get(top, 0) + 1
    core = [m for m in new if m == "mine_clusters.core" or m.startswith("mine_clusters.core.")]
    unexpected = [m for m in core if m not in ALLOWED_CORE] + sorted(science)
    return {"science_new": science, "core_new": core, "unexpected": unexpected,
            "science_before": sorted({m.split(".")[0] for m in doc["before"]
                                      if m.split(".")[0] in SCIENCE})}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15, help="measured rounds (default 15)")
    p.add_argument("--baseline", help="git revision measured in the same run for comparison")
    p.add_argument("--current", help="git revision to measure instead of the work tree's state")
    p.add_argument("--probes", type=int, default=3,
                   help="import probes per snapshot (fresh processes; the load time is their "
                        "median; default 3)")
    p.add_argument("--json", help="also write everything to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = p.parse_args(argv)

    exe = shutil.which("qgis_process.bin") or sys.exit("qgis_process.bin not found")
    site_packages = site.getsitepackages()[0]
    root = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        runtime = root / "runtime"
        runtime.mkdir(mode=0o700)
        configs = [Config("none", root, runtime, site_packages)]
        current = snapshot(a.current, root / "snap-current")
        configs.append(Config("current", root, runtime, site_packages, current))
        if a.baseline:
            baseline = snapshot(a.baseline, root / "snap-baseline")
            configs.append(Config("baseline", root, runtime, site_packages, baseline))
        info = {
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.node()}",
            "qgis": qgis_versions(exe, configs[0].env),
            "system_python": subprocess.run([SYSTEM_PYTHON, "--version"], capture_output=True,
                                            text=True).stdout.strip(),
            "bench_python": platform.python_version(),
            "site_packages": site_packages,
            "head": git("rev-parse", "--short", "HEAD").strip(),
            "code": {c.name: c.plugin["label"] for c in configs if c.plugin},
            "runs": a.runs,
            "command": " ".join([".venv/bin/python", "benchmarks/bench_startup.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "loadavg_start": os.getloadavg(),
        }
        for key in ("date", "machine", "qgis", "system_python", "head", "code", "loadavg_start"):
            print(f"{key}: {info[key]}", file=sys.stderr)

        warmup = {}
        for c in configs:  # warm-up: profile files, .pyc of the snapshot
            warmup[c.name] = run_list(exe, c)[0]
        info["warmup_wall"] = warmup
        n_algs = {}
        for r in range(a.runs):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for c in order:
                wall, cpu, rss, n = run_list(exe, c)
                c.wall.append(wall)
                c.cpu.append(cpu)
                c.rss.append(rss)
                n_algs[c.name] = n
            print(f"round {r + 1}/{a.runs}: "
                  + ", ".join(f"{c.name} {c.wall[-1]:.3f} s" for c in configs), file=sys.stderr)
        info["loadavg_end"] = os.getloadavg()

        probes = {}
        for c in configs[1:]:
            docs = [probe_imports(c, site_packages) for _ in range(a.probes)]
            doc = dict(docs[-1])
            for key in ("import_s", "class_factory_s", "init_processing_s"):
                doc[key] = statistics.median(d[key] for d in docs)
                doc[key + "_runs"] = [d[key] for d in docs]
            doc.update(summarise_imports(doc))
            probes[c.name] = doc
        trees = {c.name: import_tree(c, exe) for c in configs}

        none = configs[0]
        stats = {}
        for c in configs:
            s = {"wall": summary(c.wall), "cpu": summary(c.cpu), "rss_mib": summary(c.rss),
                 "runs_wall": c.wall, "runs_cpu": c.cpu, "runs_rss_mib": c.rss,
                 "mineclusters_algorithms": n_algs.get(c.name, 0)}
            if c is not none:
                s["minus_none"] = {
                    "median_diff": s["wall"]["median"] - statistics.median(none.wall),
                    "paired_median": statistics.median(x - y for x, y in zip(c.wall, none.wall)),
                    "min_diff": min(c.wall) - min(none.wall),
                    "cpu_median_diff": s["cpu"]["median"] - statistics.median(none.cpu),
                    "rss_median_diff": s["rss_mib"]["median"] - statistics.median(none.rss),
                }
            stats[c.name] = s

        print()
        print(f"QGIS: {'; '.join(info['qgis'])}; probe Python: {info['system_python']}")
        print(f"code: " + "; ".join(f"{k}: {v}" for k, v in info["code"].items()))
        print(f"command: {info['command']}; {a.runs} rounds, interleaved; load average "
              f"{info['loadavg_start'][0]:.1f} at the start, {info['loadavg_end'][0]:.1f} at "
              f"the end")
        print()
        print("| configuration | `mineclusters:` algorithms | wall median (s) | min (s) | IQR (s) "
              "| − none: medians (s) | − none: paired median (s) | − none: minima (s) "
              "| CPU median (s) | peak RSS median (MiB) | − none RSS (MiB) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in configs:
            s = stats[c.name]
            w, d = s["wall"], s.get("minus_none")
            diff = (f"**{d['median_diff']:+.3f}** | {d['paired_median']:+.3f} | "
                    f"{d['min_diff']:+.3f}" if d else "– | – | –")
            print(f"| {c.name} | {s['mineclusters_algorithms']} | {w['median']:.3f} | "
                  f"{w['min']:.3f} | {w['q1']:.3f}–{w['q3']:.3f} | {diff} | "
                  f"{s['cpu']['median']:.2f} | {s['rss_mib']['median']:.0f} | "
                  + (f"{d['rss_median_diff']:+.0f} |" if d else "– |"))
        print()
        cur = stats["current"]["minus_none"]["median_diff"]
        verdict = "met" if cur <= TARGET_S else "MISSED"
        print(f"target current − none ≤ {TARGET_S} s (medians): {cur:+.3f} s: {verdict}")
        print()
        print("Modules imported by loading the provider (import mine_clusters, "
              f"classFactory(None).initProcessing()) after initQgis(), {SYSTEM_PYTHON}; times: "
              f"median of {a.probes} fresh processes:")
        for name, doc in probes.items():
            sci = ", ".join(f"{k} ({v} modules)" for k, v in sorted(doc["science_new"].items()))
            print(f"- {name}: science modules: {sci or 'none'}; mine_clusters.core modules: "
                  f"{', '.join(doc['core_new']) or 'none'}; {doc['new_module_count']} modules in "
                  f"all (others: {', '.join(doc['other_new']) or 'none'}); algorithms {len(doc['algorithms'])}; import of the provider "
                  f"{doc['import_s']:.3f} s, initProcessing {doc['init_processing_s']:.3f} s; "
                  f"unexpected: {', '.join(doc['unexpected']) or 'none'}")
        before = probes["current"]["science_before"]
        print(f"  (already loaded by QGIS before the plugin: {', '.join(before) or 'none of them'})")
        print()
        print("Inside `qgis_process.bin list` (PYTHONPROFILEIMPORTTIME=1, one run each; times "
              "inflated by the profiling): the science packages imported, their modules' own "
              "import time, and the chain that first imported each")
        for name, tree in trees.items():
            sci = "; ".join(f"{k} ({v['modules']} modules, {v['self_s']:.3f} s of their own) via "
                            f"{' -> '.join(v['via']) or '(top level)'}"
                            for k, v in tree["science"].items())
            print(f"- {name}: plugin's own imports {tree['plugin_import_s']:.3f} s (cumulative); "
                  f"{tree['modules']} modules imported in all; {sci or 'no science package'}")
        print(f"(warm-up runs, not counted: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in warmup.items()) + ")")
        result = {"bench": "startup", **info, "target_s": TARGET_S, "met": cur <= TARGET_S,
                  "stats": stats,
                  "imports": {k: {kk: v[kk] for kk in (
                      "new", "other_new", "science_new", "core_new", "unexpected", "science_before",
                      "new_module_count", "algorithms", "import_s", "import_s_runs",
                      "init_processing_s", "init_processing_s_runs")}
                      for k, v in probes.items()},
                  "qgis_process_imports": trees}
        line = json.dumps(result)
        print()
        print(line)
        if a.json:
            Path(a.json).write_text(json.dumps(result, indent=1))
        return 0 if not probes["current"]["unexpected"] else 1
    finally:
        if a.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
