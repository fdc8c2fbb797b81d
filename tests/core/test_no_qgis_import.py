"""The core must stay QGIS-free: importing it (and its plots and deps) loads no qgis/PyQt."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_core_imports_no_qgis_or_qt(plugins_dir):
    code = (
        "import sys, importlib, pkgutil\n"
        "import mine_clusters.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('mine_clusters.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('qgis', 'PyQt5', 'PyQt6', 'sip', 'processing'))\n"
        "print('LOADED', len([n for n in sys.modules if n.startswith('mine_clusters.core')]))\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=plugins_dir + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=plugins_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mine_clusters.core" not in proc.stderr
    assert int(proc.stdout.split("LOADED")[1]) >= 5  # engine, plots, deps, ... were imported


def test_deps_reports_missing_and_old_packages():
    sys.path.insert(0, os.path.join(ROOT, "core"))
    try:
        import deps
    finally:
        sys.path.pop(0)
    assert deps.missing() == []
    problems = deps.missing((("no_such_module_xyz", "no-such-pkg", "1.0"),
                             ("numpy", "numpy", "999.0")))
    assert problems[0] == "no-such-pkg>=1.0 (not installed)"
    assert problems[1].startswith("numpy>=999.0 (found ")
    assert deps._version_tuple("2.0.7") == (2, 0, 7)
    assert deps._version_tuple("1.24.2+dfsg") == (1, 24, 2)
