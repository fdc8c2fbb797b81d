"""Loads core/deps.py by itself, so the dependency check works even when importing the core
package would fail because a required package (e.g. shapely 2) is missing."""
import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core", "deps.py")
_spec = importlib.util.spec_from_file_location("_mine_clusters_core_deps", _PATH)
deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deps)
