"""A cancel at any point of each core computation raises Cancelled (and nothing else): a
cancelled run never returns a result that looks complete."""
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from fuzz_cases import examples, layers
from mine_clusters.core import Cancelled, cluster_mines, prepare_features
from mine_clusters.core.footprint import mine_polygons, regions, summarise
from mine_clusters.core.harmonise import (PointSource, PolygonSource, harmonise_points,
                                          merge_polygons)
from mine_clusters.core.validate import validate


class StopAt:
    """should_stop that answers True from its k-th call on (k = None: never); counts calls."""

    def __init__(self, k=None):
        self.k, self.calls = k, 0

    def __call__(self):
        self.calls += 1
        return self.k is not None and self.calls >= self.k


def check_every_stop_point(compute, data, n_inputs=1):
    full = StopAt()
    compute(full)                      # runs to the end: how often does it ask?
    if n_inputs == 0 and full.calls == 0:
        return                         # nothing to do, nothing to cancel
    assert full.calls >= 1, "the computation never checks for a cancel"
    for k in sorted(set(data.draw(st.lists(st.integers(1, full.calls), min_size=1,
                                           max_size=4)))):
        with pytest.raises(Cancelled):
            compute(StopAt(k))


CLEAN = dict(polygon_kinds=["box", "triangle", "multi", "bowtie", "empty", "null"],
             point_kinds=["point", "multipoint", "empty", "null"], allow_bad_areas=False)


@examples(60)
@given(case=layers(**CLEAN), data=st.data())
def test_cluster_mines_can_be_cancelled_anywhere(case, data):
    features = prepare_features(polygons=case.polygons, polygon_ids=case.polygon_ids,
                                points=case.points, point_ids=case.point_ids,
                                primary=case.primary)
    check_every_stop_point(lambda stop: cluster_mines(features, h_limit_m=5000.0,
                                                      should_stop=stop), data)


@examples(40)
@given(case=layers(**CLEAN), data=st.data())
def test_harmonise_can_be_cancelled_anywhere(case, data):
    check_every_stop_point(lambda stop: merge_polygons(
        [PolygonSource("Maus", case.polygons, list(range(len(case.polygons))))],
        should_stop=stop), data, len(case.polygons))
    check_every_stop_point(lambda stop: harmonise_points(
        [PointSource("ICMM", case.points, list(range(len(case.points))), case.primary)],
        table={}, should_stop=stop), data, len(case.points))


REGIONS = regions([shapely.box(-1, -1, 0, 1), shapely.box(0, -1, 1, 1)], ["West", "East"])


@examples(40)
@given(case=layers(**{**CLEAN, "polygon_kinds": ["box", "triangle", "multi", "hole"]}),
       allocation=st.sampled_from(["intersection", "centroid"]), data=st.data())
def test_footprint_and_validation_can_be_cancelled_anywhere(case, allocation, data):
    if not case.polygons:
        return
    n = len(case.polygons)
    polys = mine_polygons(case.polygons, list(range(n)), [1] * n, ["Gold"] * n)
    check_every_stop_point(lambda stop: summarise(polys, countries=REGIONS, biomes=REGIONS,
                                                  allocation=allocation,
                                                  should_stop=stop), data)
    check_every_stop_point(lambda stop: validate(
        case.polygons, list(range(n)), [1] * n, ["Gold"] * n, case.polygons, list(range(n)),
        ["Gold"] * n, should_stop=stop), data)
