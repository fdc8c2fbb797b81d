"""Regression tests for what the fuzz suite found in the footprint core (each failed before
its fix)."""
import math

import pytest
import shapely

from mine_clusters.core import InputError
from mine_clusters.core.footprint import mine_polygons, summarise
from mine_clusters.core.geodesy import geodesic_area_m2


def test_a_degenerate_polygon_without_area_counts_zero():
    """A zero-area polygon (a line once repaired) used to be refused as 'no geometry'."""
    line_like = shapely.Polygon([(10, 10), (10.01, 10), (10.02, 10)])
    polys = mine_polygons([line_like, shapely.box(10, 10, 10.01, 10.01)], [1, 2], [1, 1],
                          ["Gold", "Gold"])
    assert polys.area_m2[0] == 0.0
    s = summarise(polys, cell_size_m=50000.0)
    assert sum(r["mine_area_km2"] for r in s.grid.rows) * 1e6 == pytest.approx(
        geodesic_area_m2([shapely.box(10, 10, 10.01, 10.01)])[0], rel=1e-9)


def test_a_polygon_drawn_across_the_antimeridian_is_cut_there():
    """A ring 179.99 -> -179.96 used to stretch round the globe and break the grid clip."""
    wrapped = shapely.Polygon([(179.99, 10.0), (-179.96, 10.0), (-179.96, 10.05),
                               (179.99, 10.05)])
    bowtie = shapely.Polygon([(180, 0), (-179.95, 0.05), (-179.95, 0), (180, 0.05)])
    polys = mine_polygons([wrapped, bowtie], [1, 2], [1, 2], ["Coal", "Gold"])
    assert all(g.bounds[2] - g.bounds[0] < 1.0 or g.geom_type == "MultiPolygon"
               for g in polys.geoms)
    # 0.05° x 0.05° at 10° N: about 30 km²; a ring round the globe would be ~200,000 km²
    a = polys.area_m2[0] / 1e6
    assert 29.0 < a < 31.0
    s = summarise(polys, cell_size_m=1000.0)
    assert sum(r["mine_area_km2"] for r in s.grid.rows) * 1e6 == pytest.approx(
        polys.total_area_m2, rel=1e-9)
    assert all(-180.0 <= b <= 180.0 for r, c in s.grid.cells for b in s.grid.grid.cell_bounds(r, c)[::2])


def test_an_infinite_area_is_refused_in_one_sentence():
    with pytest.raises(InputError, match=r"^Feature 7 of the clustered polygons has an infinite "
                                         r"'area_m2'"):
        mine_polygons([shapely.box(0, 0, 1, 1)], [7], [1], ["Gold"], area_m2=[math.inf])


def test_a_multipolygon_with_an_empty_part_stays_in_its_own_cells():
    """An EMPTY part used to give NaN cell indices (a RuntimeWarning, cell column garbage)."""
    import warnings
    g = shapely.multipolygons([shapely.box(0, 0, 0.02, 0.02), shapely.Polygon()])
    polys = mine_polygons([g], [1], [1], ["Gold"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarise(polys, cell_size_m=1000.0)
    for r, c in s.grid.cells:
        x0, y0, x1, y1 = s.grid.grid.cell_bounds(r, c)
        assert x0 < 0.03 and x1 > -0.01 and y0 < 0.03 and y1 > -0.01
    assert sum(r["mine_area_km2"] for r in s.grid.rows) * 1e6 == pytest.approx(
        polys.total_area_m2, rel=1e-9)


def test_a_grid_of_polygons_that_all_have_zero_area():
    """Every polygon with area_m2 = 0 used to end in 'argmax of an empty sequence'."""
    polys = mine_polygons([shapely.box(0, 0, 1e-5, 1e-5), shapely.box(5, 5, 5.01, 5.01)],
                          [1, 2], [1, 2], ["Gold", "Coal"], area_m2=[0.0, 0.0])
    s = summarise(polys, cell_size_m=1000.0)
    assert len(s.grid.rows) >= 2                 # every cell the two polygons touch
    assert sum(r["mine_area_km2"] for r in s.grid.rows) == 0.0
    assert {r["dominant"] for r in s.grid.rows} <= {"Gold", "Coal"}


def test_a_bowtie_touching_the_pole_is_read_by_the_one_rule():
    """A bow-tie with two vertices on the north pole (no jump over 180°). The footprint core used
    to read it in plate carrée as two lobes while harmonise settled its pole vertices; the core's
    one rule (core/geometry.py) says a pole vertex has no longitude: the ring is A -> pole -> B ->
    pole -> A, which encloses nothing. Every operation agrees: footprint keeps the polygon with
    area 0 (and summarises it), the clustering measures 0 and harmonise drops it."""
    from mine_clusters.core import prepare_features
    from mine_clusters.core.harmonise import PolygonSource, merge_polygons
    bowtie = shapely.Polygon([(0, 89.999), (0.001, 90), (0.001, 89.999), (0, 90)])
    polys = mine_polygons([bowtie], [1], [1], ["Gold"])
    assert polys.area_m2[0] == 0.0 and geodesic_area_m2([bowtie])[0] == 0.0
    s = summarise(polys, cell_size_m=50000.0)
    assert s.total_area_m2 == 0.0 and sum(r["mine_area_km2"] for r in s.grid.rows) == 0.0
    assert prepare_features(polygons=[bowtie], polygon_ids=[1]).area_m2[0] == 0.0
    merged = merge_polygons([PolygonSource("S", [bowtie], [1])])
    assert merged.geometries == [] and merged.dropped == [("S", 1, "invalid geometry with no area after repair")]
