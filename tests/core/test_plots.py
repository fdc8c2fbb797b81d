"""Pareto plot (Fig. 4b) and histogram (Fig. A.11) from a real ClusterResult; A_m over 100 %
is drawn, never clipped."""
import matplotlib
import numpy as np
import pytest
import shapely

from mine_clusters.core import cluster_mines, prepare_features
from mine_clusters.core import plots


def _square(lon, lat, d=0.005):
    return shapely.box(lon, lat, lon + d, lat + d)


@pytest.fixture(scope="module")
def result():
    # a chain of polygons 1.5 km apart near the equator, points with different primaries:
    # larger thresholds merge them into clusters with 2-3 primaries (A_m up to 200 %)
    polys = [_square(10.0 + 0.0185 * i, 0.0) for i in range(6)]
    points = [shapely.Point(10.0025 + 0.0185 * i, 0.0025) for i in (0, 2, 4)]
    feats = prepare_features(polygons=polys, polygon_ids=list(range(1, 7)), polygon_areas=None,
                             points=points, point_ids=[1, 2, 3],
                             primary=["Coal", "Iron", "Gold"])
    return cluster_mines(feats, h_limit_m=5000.0, threshold_step_m=500.0)


def test_pareto_plot_png_and_svg(result, tmp_path):
    png = plots.pareto_plot(result, str(tmp_path / "p.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = plots.pareto_plot(result, str(tmp_path / "p.svg"))
    text = open(svg, encoding="utf-8").read()
    assert "<svg" in text


def test_pareto_axes_hold_every_point_including_am_over_100(result):
    fig = plots.pareto_figure(result)
    ax = fig.axes[0]
    xs = np.r_[result.global_curve.area_multi_pct, result.local_curve.area_multi_pct]
    ys = np.r_[result.global_curve.area_unassigned_pct, result.local_curve.area_unassigned_pct]
    assert xs.max() > 100  # this layout does reach A_m > 100 %
    lo, hi = ax.get_xlim()
    assert lo < xs.min() and hi > xs.max()
    lo, hi = ax.get_ylim()
    assert lo < ys.min() and hi > ys.max()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("global optimum h = ") for lab in labels)
    assert any(lab.startswith("local optimum, H*_max = ") for lab in labels)
    g = result.global_curve
    assert f"global optimum h = {g.threshold_m[g.chosen_index] / 1000:g} km" in labels
    texts = [t.get_text() for t in ax.texts]
    assert texts  # thresholds are labelled in km
    assert "pyplot" not in str(type(fig.canvas))


def test_histogram_counts_groups_with_area(result, tmp_path):
    fig = plots.histogram_figure(result)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert sum(heights) == int(np.sum(np.asarray(result.groups.area_m2) > 0))
    out = plots.threshold_histogram(result, str(tmp_path / "h.png"))
    with open(out, "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_plots_do_not_switch_the_matplotlib_backend(result, tmp_path):
    before = matplotlib.get_backend()
    plots.pareto_plot(result, str(tmp_path / "x.png"))
    assert matplotlib.get_backend() == before
