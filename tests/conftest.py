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
