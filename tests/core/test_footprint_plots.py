"""The grid map (paper Fig. 10): every colour drawn is in its legend (Unknown always), the axes span
the data and not the globe, country outlines for orientation; one grey for land with no
commodity in every plot, map style and grid."""
import json
import os

import numpy as np
import pytest
import shapely
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_hex

from mine_clusters.core import colours
from mine_clusters.core import footprint as fp
from mine_clusters.core import footprint_plots as fplots

DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def summary(geoms, primary, cell_size_m=50000.0):
    n = len(geoms)
    p = fp.mine_polygons(geoms, list(range(1, n + 1)), list(range(1, n + 1)), primary)
    return fp.summarise(p, cell_size_m=cell_size_m)


def drawn(fig):
    ax = fig.axes[0]
    cells = [c for c in ax.collections if isinstance(c, PolyCollection)
             and not isinstance(c, LineCollection)]
    assert len(cells) == 1
    faces = {to_hex(c) for c in cells[0].get_facecolors()}
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    handles = {to_hex(h.get_facecolor()) for h in legend.legend_handles} \
        if hasattr(legend, "legend_handles") else {to_hex(h.get_facecolor()) for h in legend.legendHandles}
    return ax, faces, labels, handles


def test_every_class_drawn_is_in_the_legend_unknown_included():
    # 14 commodities, each dominating one cell, and Unknown in the cell with the least area: the
    # old legend (12 entries, Unknown sorted last) left Unknown out
    geoms, primary = [], []
    for k in range(14):
        geoms.append(shapely.box(10.0 * k - 70, 0.0, 10.0 * k - 70 + 0.05 * (k + 2), 0.05))
        primary.append(f"Commodity {k:02d}")
    geoms.append(shapely.box(80.0, 0.0, 80.01, 0.01))
    primary.append(None)
    fig = fplots.grid_figure(summary(geoms, primary).grid)
    ax, faces, labels, handles = drawn(fig)
    assert "Unknown" in labels and "Other commodities" in labels and len(labels) == 12
    assert faces <= handles, faces - handles            # no colour without a legend entry
    assert to_hex(fplots.colour_for(fp.UNKNOWN)) in faces
    # the ten commodities with the most area keep their own colour, by decreasing area
    assert labels[:10] == [f"Commodity {k:02d}" for k in range(13, 3, -1)]


def test_few_classes_are_all_listed_and_nothing_is_merged():
    geoms = [shapely.box(0, 0, 0.1, 0.1), shapely.box(3, 0, 3.05, 0.05), shapely.box(6, 0, 6.01, 0.01)]
    fig = fplots.grid_figure(summary(geoms, ["Coal", "Gold", None]).grid)
    _ax, faces, labels, handles = drawn(fig)
    assert labels == ["Coal", "Gold", "Unknown"] and faces <= handles


def _india():
    path = os.path.join(DATA, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    feats = json.load(open(path))["features"]
    return [shapely.from_geojson(json.dumps(f["geometry"])) for f in feats]


def test_real_india_grid_spans_its_data_with_country_outlines():
    geoms = _india()
    rng = np.random.default_rng(7)
    primary = list(rng.choice(["Coal", "Iron", "Bauxite", None], size=len(geoms)))
    s = summary(geoms, primary)
    b = np.array([s.grid.grid.cell_bounds(r, c) for r, c in s.grid.cells]).reshape(-1, 4)
    # outlines: a few real-looking country shapes (India's bounding region and one far away)
    outlines = [shapely.box(68, 7, 97, 35).buffer(0.5), shapely.box(-10, 40, 5, 50)]
    fig = fplots.grid_figure(s.grid, outlines=outlines)
    ax, faces, labels, handles = drawn(fig)
    lo, hi = ax.get_ylim()
    assert -90 <= lo <= b[:, 1].min() and b[:, 3].max() <= hi <= 90
    assert hi - lo < 60   # India's mines span ~25° of latitude: not a globe-wide axis (was ~110°)
    left, right = ax.get_xlim()
    assert left <= b[:, 0].min() and b[:, 2].max() <= right and right - left < 60
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 1  # Europe's box is off the map
    assert "Unknown" in labels and faces <= handles
    assert s.grid.rows and {r["dominant"] for r in s.grid.rows} >= {"Unknown", "Coal"}


def test_one_grey_for_land_with_no_commodity():
    assert fplots.colour_for(fp.UNKNOWN) == colours.UNASSIGNED_COLOUR
    pytest.importorskip("qgis.core")
    from mine_clusters.algorithms import styles

    assert styles.UNASSIGNED == colours.UNASSIGNED_COLOUR
