"""Hand-computed cases for every METHOD.md rule (areas given, positions on the equator)."""
import math

import numpy as np
import pytest
import shapely

from mine_clusters.core import cluster_mines, prepare_features
from mine_clusters.core.optimise import choose, pareto_distance

#: METHOD.md's sphere (metres), written here rather than imported from the engine.
EARTH_RADIUS_M = 6371008.8


def east(km):
    """Longitude of a point `km` east of (0, 0) along the equator."""
    return math.degrees(km * 1000.0 / EARTH_RADIUS_M)


def tiny_square(km):
    d = east(0.0005)
    x = east(km)
    return shapely.box(x - d, -d, x + d, d)


def chain(polygon_areas=(100.0, 300.0), weight=0.5, formula="eq1", **kw):
    """P1 at 0 km, Gold at 0.5 km, P2 at 1.8 km, Copper at 3.6 km (see the docstring of the tests).

    Links: P1-Gold 0.5 km, Gold-P2 1.3 km, P2-Copper 1.8 km. At h = 1 km: {P1, Gold}, {P2}, {Copper};
    at 2 and 3 km everything is one cluster with primaries {Gold, Copper}.
    """
    f = prepare_features([tiny_square(0.0), tiny_square(1.8)], [1, 2], list(polygon_areas),
                         [shapely.Point(east(0.5), 0), shapely.Point(east(3.6), 0)], [1, 2], ["Gold", "Copper"])
    return cluster_mines(f, h_limit_m=3000.0, threshold_step_m=1000.0, weight=weight, formula=formula, **kw)


def test_unassigned_and_multiple_area_by_hand():
    r = chain()
    # h = 1 km: P2 (300 of 400) unassigned, nothing multiple; h >= 2 km: all 400 counted once more.
    np.testing.assert_allclose(r.global_curve.area_unassigned_pct, [75.0, 0.0, 0.0])
    np.testing.assert_allclose(r.global_curve.area_multi_pct, [0.0, 100.0, 100.0])
    # Eq. 1, w = 0.5: E = [0.5, 0.5, 0.5]: a three-way tie goes to the smallest h.
    np.testing.assert_allclose(r.global_curve.distance, [0.5, 0.5, 0.5])
    assert r.global_threshold_m == 1000.0
    # Local: every H_max picks h = 1 km (tie) -> the local curve is flat, H*_max = 1 km.
    np.testing.assert_allclose(r.local_curve.area_unassigned_pct, [75.0, 75.0, 75.0])
    assert r.max_threshold_m == 1000.0
    assert r.polygons.status == ["assigned", "unassigned"]
    assert r.polygons.primary_commodities == ["Gold", None]
    assert r.area_unassigned_pct == pytest.approx(75.0)


@pytest.mark.parametrize("weight, expected", [(0.0, 2000.0), (0.4, 2000.0), (0.6, 1000.0), (1.0, 1000.0)])
def test_weight_moves_the_global_optimum(weight, expected):
    # norm(A_u) = [1, 0, 0], norm(A_m) = [0, 1, 1]: E = [(1-w), w, w].
    r = chain(weight=weight)
    np.testing.assert_allclose(r.global_curve.distance, [1 - weight, weight, weight])
    assert r.global_threshold_m == expected


def test_published_r_formula():
    # E_R = norm(A_m) + norm(A_u)^2 = [0 + 1, 1 + 0, 1 + 0] -> tie -> 1 km.
    r = chain(formula="r")
    np.testing.assert_allclose(r.global_curve.distance, [1.0, 1.0, 1.0])
    assert r.global_threshold_m == 1000.0
    e = pareto_distance(np.array([4.0, 2.0, 0.0]), np.array([0.0, 1.0, 3.0]), formula="r")
    np.testing.assert_allclose(e, [0 + 1.0, 1 / 3 + 0.25, 1.0])


def test_three_primaries_count_area_twice():
    f = prepare_features([tiny_square(0.0)], [1], [250.0],
                         [shapely.Point(east(x), 0) for x in (0.2, 0.3, 0.4)], [1, 2, 3],
                         ["Gold", "Copper", "Zinc"])
    r = cluster_mines(f, h_limit_m=1000.0, threshold_step_m=1000.0)
    assert r.area_multi_pct == pytest.approx(200.0)  # 250 m² x (3 - 1) / 250 m²
    assert r.clusters.status == ["multiple"]
    assert r.clusters.primary_commodities == ["Copper,Gold,Zinc"]


def two_sites(group_a, group_b, thresholds, **kw):
    """Polygons and points of two sites 50 km apart: each site's items are (km east of its start,
    area for a polygon or commodity for a point)."""
    polys, areas, pts, prim = [], [], [], []
    for start, items in ((0.0, group_a), (50.0, group_b)):
        for x, what in items:
            if isinstance(what, str):
                pts.append(shapely.Point(east(start + x), 0))
                prim.append(what)
            else:
                polys.append(tiny_square(start + x))
                areas.append(what)
    f = prepare_features(polys, range(len(polys)), areas, pts, range(len(pts)), prim)
    return cluster_mines(f, h_limit_m=max(thresholds), thresholds_m=thresholds, **kw)


def test_the_optimised_curve_counts_area_times_primaries_minus_one():
    """Site A: polygon P (100 m²) with Gold and Copper at 0.2-0.3 km, Zinc at 1.5 km; site B:
    polygon Q (100 m²) alone, Gold at 1.5 km. At h = 1 km: A_m = 100 (P with 2 primaries),
    A_u = 100 (Q). At 2 km: A_m = 200 (P with 3 primaries counts its area twice), A_u = 0.
    w = 0.6: E = [sqrt(0.4² + (0.6 x 0.5)²), 0.6 x 1] = [0.5, 0.6] -> 1 km. Counting P once at
    2 km would give norm(A_m) = [1, 1], E = [0.72, 0.6] and choose 2 km."""
    r = two_sites([(0.0, 100.0), (0.2, "Gold"), (0.3, "Copper"), (1.5, "Zinc")],
                  [(0.0, 100.0), (1.5, "Gold")], [1000.0, 2000.0], method="global", weight=0.6)
    np.testing.assert_allclose(r.global_curve.area_multi_pct, [50.0, 100.0])
    np.testing.assert_allclose(r.global_curve.area_unassigned_pct, [50.0, 0.0])
    np.testing.assert_allclose(r.global_curve.distance, [0.5, 0.6])
    assert r.global_threshold_m == 1000.0
    assert r.area_multi_pct == pytest.approx(50.0)


def test_normalisation_floor_for_tiny_areas():
    # With areas of 1e-6 m² the normalisation must still use max(x), not a floor of 1:
    # norm(A_u) = [1, 0, 0], norm(A_m) = [0, 1, 1] exactly as with large areas.
    r = chain(polygon_areas=(1e-7, 3e-7), weight=0.4)
    np.testing.assert_allclose(r.global_curve.distance, [0.6, 0.4, 0.4])
    assert r.global_threshold_m == 2000.0


def test_the_normalisation_floor_is_1e_12():
    """P1 = 4e-12 m², P2 = 3e-13 m²: A_u = [3e-13, 0, 0] is below the floor, so norm(A_u) =
    3e-13 / 1e-12 = [0.3, 0, 0]; A_m = [0, 4.3e-12, 4.3e-12] is above it: norm(A_m) = [0, 1, 1].
    w = 0.4: E = [0.6 x 0.3, 0.4, 0.4] = [0.18, 0.4, 0.4] -> 1 km. Without the floor (max(A_u) =
    3e-13) E would be [0.6, 0.4, 0.4] and 2 km would win."""
    r = chain(polygon_areas=(4e-12, 3e-13), weight=0.4)
    np.testing.assert_allclose(r.global_curve.distance, [0.18, 0.4, 0.4], rtol=1e-9)
    assert r.global_threshold_m == 1000.0
    np.testing.assert_allclose(pareto_distance(np.array([3e-13, 0.0]), np.array([0.0, 2e-13]), 0.5),
                               [0.15, 0.1], rtol=1e-12)


def test_floor_when_an_objective_is_zero_everywhere():
    # Only points with one commodity each, apart: A_m = 0 at every h -> norm(A_m) = 0 / 1e-12 = 0.
    e = pareto_distance(np.array([3.0, 1.0, 1.0]), np.zeros(3))
    np.testing.assert_allclose(e, [0.5, 0.5 / 3, 0.5 / 3])
    assert choose(e)[0] == 1


def test_ties_within_float_noise_go_to_the_smallest_h():
    assert choose(np.array([0.5, 0.5 * (1 - 1e-12), 0.5]))[0] == 0   # noise: a tie
    assert choose(np.array([0.5, 0.5 * (1 - 1e-8), 0.5]))[0] == 1    # a real difference is not a tie
    assert choose(np.array([0.5, 0.5 * (1 - 1e-6), 0.5]))[0] == 1


def test_sums_in_another_order_do_not_decide_the_threshold():
    """Three unassigned polygons of 0.1, 0.2 and 0.3 m²: apart at h = 1 km, the last two one
    cluster at 2 km. A_u is the same area at both thresholds, but summed per cluster it is
    (0.1 + 0.2) + 0.3 = 0.6000000000000001 at 1 km and 0.1 + (0.2 + 0.3) = 0.6 at 2 km, so E(2 km)
    is smaller by float noise. That is a tie (METHOD.md), and ties go to 1 km."""
    r = two_sites([(0.0, 0.1)], [(0.0, 0.2), (1.5, 0.3)], [1000.0, 2000.0], method="global")
    au = r.global_curve.area_unassigned_pct * r.total_area_m2 / 100.0
    assert au[1] < au[0] and r.global_curve.distance[1] < r.global_curve.distance[0]   # the noise is real
    assert r.global_curve.distance[0] - r.global_curve.distance[1] < 1e-9 * r.global_curve.distance[0]
    assert r.global_threshold_m == 1000.0
    assert r.max_threshold_m == 1000.0


def test_published_r_formula_maps_a_to_multiple_and_b_to_unassigned():
    """The R code's distances = sqrt(A_m/max A_m)^2 + (A_u/max A_u)^2 (see core/optimise.py).
    Four groups 50 km apart give A_u = [100, 30, 0] and A_m = [0, 85, 100] over 1, 2, 3 km:
    U1 (70 m²) meets Gold at 2 km, U2 (30 m²) meets Gold at 3 km, M1 (85 m², Gold) meets Copper at
    2 km, M2 (15 m², Gold) meets Copper at 3 km. norm(A_u) = [1, 0.3, 0], norm(A_m) = [0, 0.85, 1]:
    E_R = norm(A_m) + norm(A_u)² = [1, 0.94, 1] -> 2 km; with a and b swapped it would be
    norm(A_u) + norm(A_m)² = [1, 1.0225, 1] -> 1 km."""
    sites = [[(0.0, 70.0), (1.5, "Gold")], [(0.0, 30.0), (2.5, "Gold")],
             [(0.0, 85.0), (0.2, "Gold"), (1.5, "Copper")], [(0.0, 15.0), (0.2, "Gold"), (2.5, "Copper")]]
    polys, areas, pts, prim = [], [], [], []
    for s, items in enumerate(sites):
        for x, what in items:
            if isinstance(what, str):
                pts.append(shapely.Point(east(50.0 * s + x), 0))
                prim.append(what)
            else:
                polys.append(tiny_square(50.0 * s + x))
                areas.append(what)
    f = prepare_features(polys, range(len(polys)), areas, pts, range(len(pts)), prim)
    r = cluster_mines(f, h_limit_m=3000.0, threshold_step_m=1000.0, method="global", formula="r")
    np.testing.assert_allclose(r.global_curve.area_unassigned_pct, [50.0, 15.0, 0.0])
    np.testing.assert_allclose(r.global_curve.area_multi_pct, [0.0, 42.5, 50.0])
    np.testing.assert_allclose(r.global_curve.distance, [1.0, 0.94, 1.0])
    assert r.global_threshold_m == 2000.0
    u, m = np.array([1.0, 0.3, 0.0]), np.array([0.0, 0.85, 1.0])
    assert int(np.argmin(u + m ** 2)) == 0                       # the swapped mapping would differ
    e1 = cluster_mines(f, h_limit_m=3000.0, threshold_step_m=1000.0, method="global").global_curve.distance
    np.testing.assert_allclose(e1, 0.5 * np.hypot(u, m))          # Eq. 1, w = 0.5, on the same curve


def test_points_only_groups_take_the_smallest_h_and_add_nothing():
    pts = [shapely.Point(east(x), 0) for x in (0.0, 1.5, 10.0)]
    f = prepare_features([], [], None, pts, [1, 2, 3], ["Gold", "Copper", None])
    r = cluster_mines(f, h_limit_m=3000.0, threshold_step_m=1000.0)
    assert list(r.groups.chosen_threshold_m) == [1000.0, 1000.0, 1000.0]
    assert list(r.points.cluster_id) == [1, 2, 3]
    assert r.total_area_m2 == 0 and r.area_unassigned_pct == 0 and r.area_multi_pct == 0
    # Beside a group with area, a points-only group still takes 1 km and changes no sum.
    f2 = prepare_features([tiny_square(50.0)], [9], [10.0], pts, [1, 2, 3], ["Gold", "Copper", None])
    r2 = cluster_mines(f2, h_limit_m=3000.0, threshold_step_m=1000.0)
    assert list(r2.points.threshold_m) == [1000.0, 1000.0, 1000.0]
    np.testing.assert_allclose(r2.global_curve.area_unassigned_pct, [100.0, 100.0, 100.0])


def test_ties_at_exactly_h_join_like_cutree():
    from layouts import destination
    a = (10.0, 45.0)
    b = destination(*a, 37.0, 1000.0)          # exactly 1 km (to float precision)
    c = destination(*a, 37.0, 2000.01)         # 1 cm beyond 2 km from a, 1000.01 m from b
    f = prepare_features([], [], None, [shapely.Point(*p) for p in (a, b, c)], [1, 2, 3], ["Gold", "Gold", "Gold"])
    r = cluster_mines(f, h_limit_m=2000.0, threshold_step_m=1000.0, method="global")
    from mine_clusters.core.linkage import single_linkage_forest
    forest = single_linkage_forest(f, 2000.0)
    assert list(forest.labels(1000.0)) == [0, 0, 1]      # a-b at 1000 m join at h = 1 km
    assert list(forest.labels(2000.0)) == [0, 0, 0]
    assert r.points.cluster_id[0] == r.points.cluster_id[1]


def test_unknown_values_and_case_variants():
    pts = [shapely.Point(east(x), 0) for x in (0.0, 0.1, 0.2, 0.3)]
    f = prepare_features([], [], None, pts, [1, 2, 3, 4], ["NA", "  ", None, "gold"], ["Iron ore", "", "GOLD", "Gold"])
    r = cluster_mines(f, h_limit_m=1000.0, threshold_step_m=1000.0)
    # one commodity, shown in the spelling that sorts first ("GOLD" < "Gold" < "gold")
    assert r.clusters.primary_commodities == ["GOLD"]
    assert r.clusters.commodities == ["GOLD,Iron ore"]
    f3 = prepare_features([], [], None, pts[:2], [1, 2], ["steel", "Iron Ore "],
                          harmonisation={"steel": "", "iron ore": "Iron"})
    r3 = cluster_mines(f3, h_limit_m=1000.0, threshold_step_m=1000.0)
    assert r3.clusters.primary_commodities == ["Iron"]


def test_the_tables_spelling_wins_over_raw_case_variants():
    pts = [shapely.Point(east(x), 0) for x in (0.0, 0.1)]
    f = prepare_features([], [], None, pts, [1, 2], ["cu", "COPPER"], harmonisation={"cu": "Copper"})
    r = cluster_mines(f, h_limit_m=1000.0, threshold_step_m=1000.0)
    assert r.clusters.primary_commodities == ["Copper"]  # not "COPPER", although it sorts first
