"""The candidate search of core/linkage.py: the pairs it gives against a brute-force reference
of the same bound, with parts across ±180, and the index types of its pairs."""
import numpy as np
import shapely

from mine_clusters.core import prepare_features
from mine_clusters.core import linkage
from mine_clusters.core.features import POLYGON
from mine_clusters.core.geodesy import bounds_centres, unwrapped_bounds

from layouts import box_m, random_layout


def _parts(polys, pts):
    """The parts of the features, and one more part drawn across ±180 as one ring (the coordinate
    rule cuts such polygons, so only a part made here has a box unwrapped across ±180)."""
    features = prepare_features(polys, range(len(polys)), None, pts, range(len(pts)),
                                ["Gold"] * len(pts))
    p = linkage.split_parts(features)
    across = np.array([shapely.Polygon([(179.9, 10.0), (-179.9, 10.0), (-179.9, 10.1), (179.9, 10.1)])])
    bounds = unwrapped_bounds(across)
    lon, lat = bounds_centres(bounds)
    out = linkage.Parts(np.r_[p.owner, len(features)], np.r_[p.kind, POLYGON], np.r_[p.geoms, across],
                        np.r_[p.bounds, bounds], np.r_[p.ref_lon, lon], np.r_[p.ref_lat, lat])
    out.rank, out.size_m = linkage.anchor_rank(out)
    return out


def _reference(parts, h_limit_m):
    """Every pair i < j of different features whose boxes meet the query boxes (a tree of a box
    of every part, queried as the search queries it)."""
    tree = shapely.STRtree(shapely.box(*parts.bounds.T))
    boxes = linkage.query_boxes(parts.bounds, h_limit_m)
    i, j = linkage._candidates_rows(tree, boxes, np.arange(len(parts)), parts.bounds[:, 0].min(),
                                    parts.bounds[:, 2].max())
    other = parts.owner[i] != parts.owner[j]
    return i[other], j[other]


def _layout():
    rng = np.random.default_rng(7)
    polys, pts, _ = random_layout(rng, 179.95, 10.0, 60, 30, 15000.0)
    more, more_pts, _ = random_layout(rng, 12.0, 47.0, 40, 20, 8000.0)
    return polys + more + [box_m(-179.85, 10.05, 0, 0, 500, 500)], pts + more_pts


def test_candidate_pairs_match_a_tree_of_boxes():
    parts = _parts(*_layout())
    assert (shapely.bounds(parts.geoms) != parts.bounds).any(axis=1).sum() == 1   # the one across ±180
    i, j, lower, n = linkage.candidate_pairs(parts, 10000.0)
    ri, rj = _reference(parts, 10000.0)
    assert n == len(ri)
    assert i.dtype == np.int32 and j.dtype == np.int32
    assert np.all(i < j)
    assert np.all(np.diff(lower) >= 0) and np.all(lower <= 10000.0)
    found = set(zip(i.tolist(), j.tolist()))
    assert found <= set(zip(ri.tolist(), rj.tolist()))
    # Every pair found is one the brute force would keep, and no kept pair is missing.
    d = linkage.part_distances(parts, ri, rj)
    within = {(a, b) for a, b, x in zip(ri.tolist(), rj.tolist(), d) if x <= 10000.0}
    assert within <= found


def test_index_dtype_falls_back_to_int64():
    assert linkage._index_dtype(10) == np.int32
    assert linkage._index_dtype(np.iinfo(np.int32).max) == np.int32
    assert linkage._index_dtype(np.iinfo(np.int32).max + 1) == np.int64


def test_tree_geometries_keep_every_box():
    parts = _parts(*_layout())
    geoms = linkage._tree_geometries(parts)
    np.testing.assert_array_equal(shapely.bounds(geoms), parts.bounds)
    same = np.flatnonzero((shapely.bounds(parts.geoms) == parts.bounds).all(axis=1))
    assert all(geoms[k] is parts.geoms[k] for k in same)      # no copy where the box is the part's
