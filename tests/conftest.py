"""Makes the checkout importable as `mine_clusters` (the repository root *is* the package).

A symlink `<tmpdir>/mine_clusters -> <checkout>` goes first on sys.path; `plugins_dir` exposes
`<tmpdir>` (reused as QGIS_PLUGINPATH by the end-to-end tests).
"""
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(ROOT, "resources", "sample")

if os.environ.get("MINE_CLUSTERS_REQUIRE_QGIS"):
    # CI: the QGIS and qgis_process layers must run, not skip, when QGIS is missing.
    import shutil

    import qgis.core  # noqa: F401  (ImportError here fails the run)

    if not (shutil.which("qgis_process.bin") or shutil.which("qgis_process")):
        raise RuntimeError("MINE_CLUSTERS_REQUIRE_QGIS is set but qgis_process is not on PATH.")

_PLUGINS_DIR = tempfile.mkdtemp(prefix="mine_clusters_plugins_")
_LINK = os.path.join(_PLUGINS_DIR, "mine_clusters")
if not os.path.exists(_LINK):
    os.symlink(ROOT, _LINK)
if _PLUGINS_DIR not in sys.path:
    sys.path.insert(0, _PLUGINS_DIR)


@pytest.fixture(scope="session")
def plugins_dir():
    return _PLUGINS_DIR


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def sample_polygons():
    return os.path.join(SAMPLE_DIR, "mine_polygons.gpkg")


@pytest.fixture(scope="session")
def sample_points():
    return os.path.join(SAMPLE_DIR, "mine_points.gpkg")
