"""The core benchmark's workers on real data (no QGIS): the paper's dense method and the engine
give the same partitions, and the engine run reports its stages.

Run: .venv/bin/python -m pytest benchmarks/test_bench_core.py
"""
import pytest

import bench_core
import generate

pytestmark = pytest.mark.skipif(not generate.DEFAULT_DATA_DIR.exists(),
                                reason="the shared real data folder is not available")


def test_paper_method_and_engine_agree_on_india():
    out = bench_core.run_baseline("india", generate.DEFAULT_DATA_DIR)
    assert out["n_polygons"] == 781                        # Maus v1 India (SOURCE.md)
    assert out["n_points"] > 500                           # ICMM, Jasansky and GEM points nearby
    assert out["pregroups"] > 10 and out["largest_pregroup"] > 100
    assert out["dense_pairs"] > out["sparse_edges"] > 0
    assert out["thresholds_with_different_partitions"] == []


def test_engine_run_reports_stages_and_is_repeatable():
    a = bench_core.run_engine("region-india", 1, generate.DEFAULT_DATA_DIR, 1.0)
    b = bench_core.run_engine("region-india", 1, generate.DEFAULT_DATA_DIR, 1.0)
    assert a["partition"] == b["partition"]
    assert a["stats"]["largest_pregroup"] > 100
    assert "prepare_features" in a["timings"] and "optimisation" in a["timings"]
    assert a["peak_rss_mb"] > 0 and a["progress_calls"] > 0
    assert 1000.0 <= a["max_threshold_m"] <= 20000.0
