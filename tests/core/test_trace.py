"""Traceability (core/trace.py) against brute force: links, their lines, the via chain, the
stability range and the concordance table, each checked with the independent oracle of
tests/core/oracle.py (sphere distances from the input geometries, fastcluster cuts, plain Python
trees and sets) on random layouts anywhere on Earth and on real data."""
import math
from collections import defaultdict

import fastcluster
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import squareform

from mine_clusters.core import Cancelled, cluster_mines, prepare_features
from mine_clusters.core.features import POINT, POLYGON
from mine_clusters.core.trace import great_circle_lines, link_lines, threshold_name

from layouts import box_m, destination, offset, random_layout
from oracle import (POLYGON_TOLERANCE_M, POLYGON_TOLERANCE_REL, R_SPHERE_M, TIE_M, _cuts, canonical,
                    sphere_distance, sphere_distance_matrix, sphere_m)
from realdata import have_shared, read_geojson, read_gpkg, shared_path

CENTRES = [(10.0, 0.0), (25.0, 60.0), (-70.0, 85.0), (140.0, -85.0), (179.99, 0.5), (-179.995, 64.0),
           (180.0, -30.0), (0.0, 89.9)]
LAYER = {POLYGON: "polygons", POINT: "points"}


# ----------------------------------------------------------------------------- the oracle's view

class Case:
    """A run of the engine and the oracle's distances and cuts of the same features."""

    def __init__(self, features, h_limit=5000.0, step=1000.0, **kwargs):
        self.f = features
        self.res = cluster_mines(features, h_limit_m=h_limit, threshold_step_m=step, **kwargs)
        self.h = [float(h) for h in self.res.thresholds_m]
        self.needed = max(self.h) * 1.01 + 1.0
        self.dist, self.tol = sphere_distance_matrix(features.geoms, self.needed)
        n = len(features)
        self.prim = [frozenset(features.primary.indices[features.primary.indptr[e]:features.primary.indptr[e + 1]])
                     for e in range(n)]
        self.decided = self._decided_cuts()
        # where a link within the distance tolerance of h leaves the sphere's cut undecided, the
        # engine's own cut (as test_engine_oracle does)
        self.cuts = {h: (self.decided[h] if self.decided[h] is not None else list(self.res.trace.cut_labels[k]))
                     for k, h in enumerate(self.h)}
        self.element_threshold = self._element_thresholds()

    def _decided_cuts(self):
        n = len(self.f)
        if n == 1:
            return {h: [0] for h in self.h}
        low = _cuts(np.maximum(self.dist - self.tol, 0.0), self.h)
        high = _cuts(self.dist + self.tol, self.h)
        return {h: low[h] if canonical(low[h]) == canonical(high[h]) else None for h in self.h}

    def sphere(self, a, b):
        """(distance, tolerance) of elements a and b on the sphere, exact beyond the thresholds too
        (the matrix holds only a lower bound there)."""
        if self.dist[a, b] <= self.needed:
            return self.dist[a, b], self.tol[a, b]
        d = sphere_distance(self.f.geoms[a], self.f.geoms[b])
        return d, POLYGON_TOLERANCE_M + POLYGON_TOLERANCE_REL * d

    def rows(self, table, kind):
        """Element of each row of an ElementTable."""
        at = {(int(k), int(i), int(p)): e for e, (k, i, p) in
              enumerate(zip(self.f.kind, self.f.index, self.f.part))}
        return [at[(kind, int(i), int(p))] for i, p in zip(table.index, table.part)]

    def _element_thresholds(self):
        out = {}
        for table, kind in ((self.res.polygons, POLYGON), (self.res.points, POINT)):
            for r, e in enumerate(self.rows(table, kind)):
                out[e] = float(table.threshold_m[r])
        return out

    def members(self, labels):
        groups = defaultdict(list)
        for e, lab in enumerate(labels):
            groups[lab].append(e)
        return groups

    def names(self, codes):
        names = [self.f.names[c] for c in codes]
        return ",".join(sorted(names, key=lambda s: (s.casefold(), s))) if names else None


def _close(ours, sphere, tol):
    return abs(ours - sphere) <= tol + 1e-9


# ----------------------------------------------------------------------------- the checks

def check_links(case):
    """Per final cluster k - 1 links that connect it and nothing else, each the sphere's distance
    of its two features, none above the cluster's threshold, together a minimum spanning tree."""
    res, f, trace = case.res, case.f, case.res.trace
    links = res.links()
    n = len(f)
    assert len(links) == n - res.n_clusters
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    final = [int(c) for c in trace.cluster_id]
    for r in range(len(links)):
        a, b = int(links.from_element[r]), int(links.to_element[r])
        assert a < b and final[a] == final[b] == int(links.cluster_id[r])
        assert (links.from_layer[r], int(links.from_fid[r]), int(links.from_part[r])) == \
            (LAYER[int(f.kind[a])], int(f.feature_id[a]), int(f.part[a]))
        assert (links.to_layer[r], int(links.to_fid[r]), int(links.to_part[r])) == \
            (LAYER[int(f.kind[b])], int(f.feature_id[b]), int(f.part[b]))
        d = float(links.distance_m[r])
        assert links.threshold_m[r] == case.element_threshold[a] == case.element_threshold[b]
        assert d <= links.threshold_m[r] + TIE_M
        assert _close(d, case.dist[a, b], case.tol[a, b]), (d, case.dist[a, b])
        assert find(a) != find(b), "a link closes a loop"
        parent[find(a)] = find(b)
    assert canonical([find(e) for e in range(n)]) == canonical(final)
    # rows sorted by cluster, then distance
    key = list(zip(links.cluster_id.tolist(), links.distance_m.tolist()))
    assert key == sorted(key)
    # the links of a cluster are a minimum spanning tree: their lengths are the single-linkage
    # merge heights of the cluster on the sphere
    by_cluster = defaultdict(list)
    for c, d in zip(links.cluster_id.tolist(), links.distance_m.tolist()):
        by_cluster[c].append(d)
    for c, members in case.members(final).items():
        if len(members) < 2:
            continue
        sub = case.dist[np.ix_(members, members)]
        heights = sorted(fastcluster.linkage(squareform(sub, checks=False), method="single")[:, 2])
        for ours, sphere in zip(sorted(by_cluster[c]), heights):
            assert _close(ours, sphere, POLYGON_TOLERANCE_M + POLYGON_TOLERANCE_REL * sphere)
    return links


def _line_coords(line):
    return [np.asarray(p.coords) for p in line.geoms]


def check_lines(case, links, spacing=1000.0):
    """Each line starts on its from feature, ends on its to feature, is as long as the link on the
    sphere, follows the great circle in steps of at most `spacing` and never jumps across ±180°."""
    lines = link_lines(case.res, case.f, links, spacing_m=spacing)
    assert len(lines) == len(links)
    f = case.f
    worst = 0.0
    for r, line in enumerate(lines):
        assert line.geom_type == "MultiLineString"
        parts = _line_coords(line)
        a, b = int(links.from_element[r]), int(links.to_element[r])
        start, end = parts[0][0], parts[-1][-1]
        on_a = sphere_distance(shapely.Point(start), f.geoms[a])
        on_b = sphere_distance(shapely.Point(end), f.geoms[b])
        worst = max(worst, on_a, on_b)
        assert on_a <= 0.01 and on_b <= 0.01, (on_a, on_b, r)
        length = 0.0
        for k, p in enumerate(parts):
            assert len(p) >= 2
            assert np.all(np.abs(p[:, 0]) <= 180.0) and np.all(np.abs(p[:, 1]) <= 90.0)
            assert np.all(np.abs(np.diff(p[:, 0])) <= 180.0), "a step jumps across the map"
            if k:                               # a new part begins where the last one left ±180°
                assert abs(parts[k - 1][-1][0]) == 180.0 and p[0][0] == -parts[k - 1][-1][0]
                assert p[0][1] == parts[k - 1][-1][1]
            steps = [sphere_m(*p[i], *p[i + 1]) for i in range(len(p) - 1)]
            assert max(steps) <= spacing * (1 + 1e-6) + 1e-6
            length += sum(steps)
        d = float(links.distance_m[r])
        assert _close(length, d, POLYGON_TOLERANCE_M + POLYGON_TOLERANCE_REL * d), (length, d)
        if d == 0.0:
            assert len(parts) == 1 and len(parts[0]) == 2 and np.array_equal(parts[0][0], parts[0][1])
    return lines, worst


def brute_force_via(case, links):
    """Per element: (key, source, longest link) of its nearest primary point along the links,
    from a walk of the tree from every source in plain Python (key: chain length, links, fid,
    part)."""
    f = case.f
    adj = defaultdict(list)
    for a, b, w in zip(links.from_element.tolist(), links.to_element.tolist(), links.distance_m.tolist()):
        adj[a].append((b, w))
        adj[b].append((a, w))
    best = {}
    for s in range(len(f)):
        if f.kind[s] != POINT or not case.prim[s]:
            continue
        stack = [(s, -1, 0.0, 0, 0.0)]
        while stack:
            x, came, d, k, m = stack.pop()
            key = (d, k, int(f.feature_id[s]), int(f.part[s]))
            if x not in best or key < best[x][0]:
                best[x] = (key, s, m)
            stack.extend((y, x, d + w, k + 1, max(m, w)) for y, w in adj[x] if y != came)
    return best


def check_via(case, links):
    best = brute_force_via(case, links)
    f = case.f
    n_with = 0
    for table, kind in ((case.res.polygons, POLYGON), (case.res.points, POINT)):
        for r, e in enumerate(case.rows(table, kind)):
            if e not in best:
                assert table.via_point_fid[r] is None and table.via_links[r] is None
                assert math.isnan(table.via_distance_m[r]) and math.isnan(table.via_max_link_m[r])
                assert not any(case.prim[x] for x in range(len(f))
                               if case.res.trace.cluster_id[x] == case.res.trace.cluster_id[e])
                continue
            n_with += 1
            (d, k, fid, part), s, m = best[e]
            assert table.via_point_fid[r] == fid
            assert table.via_links[r] == k
            assert table.via_max_link_m[r] == m
            assert _close(float(table.via_distance_m[r]), *case.sphere(e, s))
            if s == e:
                assert table.via_distance_m[r] == 0.0 and k == 0
    return n_with


def check_stability(case):
    """From and to against the primary SETS of the element's cluster at every h (oracle cuts);
    the sets only grow with h, so the h with the same set are one run."""
    clusters = {h: case.members(case.cuts[h]) for h in case.h}
    label_of = {h: case.cuts[h] for h in case.h}
    for table, kind in ((case.res.polygons, POLYGON), (case.res.points, POINT)):
        for r, e in enumerate(case.rows(table, kind)):
            sets = []
            for h in case.h:
                members = clusters[h][label_of[h][e]]
                sets.append(frozenset().union(*(case.prim[x] for x in members)))
            for s1, s2 in zip(sets, sets[1:]):
                assert s1 <= s2
            chosen = case.h.index(case.element_threshold[e])
            same = [k for k, s in enumerate(sets) if s == sets[chosen]]
            assert same == list(range(same[0], same[-1] + 1))
            assert table.stable_from_m[r] == case.h[same[0]]
            assert table.stable_to_m[r] == case.h[same[-1]]
            assert table.stable_from_m[r] <= table.threshold_m[r] <= table.stable_to_m[r]


def check_concordance(case):
    c = case.res.concordance()
    f = case.f
    spelled = [threshold_name(h) for h in case.h]
    assert [name for name, _ in c.fields] == (["layer", "feature_id", "part"] + [f"cluster_{h}" for h in spelled]
                                              + [f"primary_{h}" for h in spelled])
    assert all(kind == ("string" if name == "layer" or name.startswith("primary_") else "int")
               for name, kind in c.fields)
    # rows: polygons then points, in input order, as the element tables
    want = ([("polygons", int(i), int(p)) for i, p in zip(case.res.polygons.feature_id, case.res.polygons.part)]
            + [("points", int(i), int(p)) for i, p in zip(case.res.points.feature_id, case.res.points.part)])
    assert list(zip(c.layer, c.feature_id.tolist(), c.part.tolist())) == want
    element = c.element.tolist()
    undecided = 0
    for h in case.h:
        col = c.columns[f"cluster_{threshold_name(h)}"]
        assert sorted(set(col.tolist())) == list(range(1, len(set(col.tolist())) + 1))
        by_element = [None] * len(f)
        for row, e in enumerate(element):
            by_element[e] = int(col[row])
        if case.decided[h] is None:
            undecided += 1
        else:
            assert canonical(by_element) == canonical(case.decided[h]), f"cut at {h} m"
        groups = case.members(case.cuts[h])
        label = case.cuts[h]
        prim = c.columns[f"primary_{threshold_name(h)}"]
        for row, e in enumerate(element):
            union = frozenset().union(*(case.prim[x] for x in groups[label[e]]))
            assert prim[row] == case.names(union)
    return undecided


def check_all(case, lines=True):
    links = check_links(case)
    worst = check_lines(case, links)[1] if lines else 0.0
    n_with = check_via(case, links)
    check_stability(case)
    undecided = check_concordance(case)
    return dict(links=len(links), via=n_with, undecided=undecided, worst_end_m=worst)


def _features(polys, pts, primary, **kw):
    return prepare_features(polys, range(len(polys)), None, pts, range(len(pts)), primary, **kw)


# ----------------------------------------------------------------------------- random layouts

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), centre=st.sampled_from(CENTRES),
       n_polygons=st.integers(0, 16), n_points=st.integers(0, 10), spread=st.sampled_from([800.0, 3000.0, 9000.0]),
       method=st.sampled_from(["local", "global"]), far_parts=st.booleans())
def test_random_layouts_trace_matches_brute_force(seed, centre, n_polygons, n_points, spread, method, far_parts):
    rng = np.random.default_rng(seed)
    polys, pts, primary = random_layout(rng, centre[0], centre[1], n_polygons, n_points, spread,
                                        far_parts=far_parts)
    if not polys and not pts:
        return
    out = check_all(Case(_features(polys, pts, primary), method=method))
    assert out["undecided"] <= 1


def test_multipart_features_far_apart():
    """MultiPolygons with parts 5-100° apart: a link runs between the nearest parts."""
    total = 0
    for seed, (lon, lat) in enumerate(CENTRES):
        rng = np.random.default_rng(300 + seed)
        polys, pts, primary = random_layout(rng, lon, lat, 8, 6, 4000.0, far_parts=True)
        total += check_all(Case(_features(polys, pts, primary), h_limit=6000.0))["links"]
    assert total > 50


def test_high_latitudes_and_the_antimeridian_with_every_kind_of_link():
    """Dense layouts at 64° N across ±180° and next to both poles: touching and overlapping
    polygons (zero-length links), a MultiPoint, ties at whole kilometres."""
    seen_cut = seen_zero = 0
    for seed, lon, lat, spread in [(40, -179.995, 64.0, 3000.0), (41, 179.99, 75.0, 3000.0),
                                   (42, -70.0, 85.0, 3000.0), (43, 140.0, -85.0, 3000.0),
                                   (52, -179.995, 64.0, 9000.0), (59, 179.99, -75.0, 9000.0)]:
        rng = np.random.default_rng(seed)
        polys, pts, primary = random_layout(rng, lon, lat, 18, 10, spread)
        case = Case(_features(polys, pts, primary))
        check_all(case)
        links = case.res.links()
        lines = link_lines(case.res, case.f, links)
        seen_cut += sum(len(g.geoms) == 2 for g in lines)
        seen_zero += int(np.sum(links.distance_m == 0.0))
    assert seen_cut >= 3 and seen_zero >= 3


def test_a_link_across_the_antimeridian_is_cut_there():
    """Two boxes 500 m apart either side of ±180 at 64° N: one link, drawn as two parts that meet
    at ±180° on the great circle, together as long as the link."""
    a = box_m(179.999, 64.0, -300.0, 0.0, 100.0, 100.0)
    b = box_m(-179.999, 64.0, 200.0, 0.0, 100.0, 100.0)
    f = prepare_features([a, b], [1, 2], None, [], None, None)
    res = cluster_mines(f, h_limit_m=2000.0, threshold_step_m=1000.0)
    links = res.links()
    assert len(links) == 1 and links.from_fid[0] == 1 and links.to_fid[0] == 2
    (line,) = link_lines(res, f)
    p, q = _line_coords(line)
    assert p[-1][0] == 180.0 and q[0][0] == -180.0 and p[-1][1] == q[0][1]
    length = sum(sphere_m(*c[i], *c[i + 1]) for c in (p, q) for i in range(len(c) - 1))
    assert length == pytest.approx(float(links.distance_m[0]), rel=1e-4)
    assert sphere_distance(shapely.Point(p[0]), a) < 1e-3 and sphere_distance(shapely.Point(q[-1]), b) < 1e-3


def test_great_circle_lines_follow_the_circle_and_cut_at_the_antimeridian():
    start = np.array([[179.9, 10.0], [-179.95, 70.0], [20.0, -5.0], [5.0, 5.0]])
    end = np.array([[-179.8, 10.05], [179.95, 70.01], [20.0, -5.0], [5.03, 5.0]])
    lines = great_circle_lines(start, end, 1000.0)
    assert [len(g.geoms) for g in lines] == [2, 2, 1, 1]
    for g, s, e in zip(lines, start, end):
        coords = np.vstack(_line_coords(g))
        assert np.array_equal(coords[0], s) and np.array_equal(coords[-1], e)
        # every vertex on the great circle of the ends (distance to its plane ~0)

        def u(c):
            lon, lat = math.radians(c[0]), math.radians(c[1])
            return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])

        nrm = np.cross(u(s), u(e))
        if np.linalg.norm(nrm) > 0:
            nrm /= np.linalg.norm(nrm)
            assert max(abs(float(u(c) @ nrm)) for c in coords) * R_SPHERE_M < 1e-6
    assert lines[2].geoms[0].coords[0] == lines[2].geoms[0].coords[1]     # zero length: two equal points


def test_via_ties_fewer_links_then_smallest_fid():
    """X holds point 5; Y touches X and holds point 3: X's via is 5 (one link of 0 m against two),
    Y's is 3. Z holds points 7 and 2: the smaller fid, 2. W, alone, has none."""
    lon, lat = 30.0, 10.0
    x = box_m(lon, lat, 0.0, 0.0, 400.0, 400.0)
    y = shapely.Polygon([x.exterior.coords[1], offset(lon, lat, 800.0, 0.0), offset(lon, lat, 800.0, 400.0),
                         x.exterior.coords[2]])
    z = box_m(lon, lat, 5000.0, 0.0, 400.0, 400.0)
    w = box_m(lon, lat, 15000.0, 0.0, 400.0, 400.0)
    pts = [shapely.Point(offset(lon, lat, 100.0, 200.0)), shapely.Point(offset(lon, lat, 700.0, 200.0)),
           shapely.Point(offset(lon, lat, 5100.0, 200.0)), shapely.Point(offset(lon, lat, 5300.0, 200.0))]
    f = prepare_features([x, y, z, w], [1, 2, 3, 4], None, pts, [5, 3, 7, 2], ["Gold", "Gold", "Zinc", "Zinc"])
    res = cluster_mines(f, h_limit_m=2000.0, threshold_step_m=1000.0)
    by_fid = dict(zip(res.polygons.feature_id.tolist(), range(len(res.polygons))))
    t = res.polygons
    assert [t.via_point_fid[by_fid[k]] for k in (1, 2, 3, 4)] == [5, 3, 2, None]
    assert [t.via_links[by_fid[k]] for k in (1, 2, 3, 4)] == [1, 1, 1, None]
    assert t.via_max_link_m[by_fid[1]] == 0.0 and math.isnan(t.via_max_link_m[by_fid[4]])
    assert res.points.via_point_fid == res.points.feature_id.tolist() == [5, 3, 7, 2]
    assert list(res.points.via_links) == [0, 0, 0, 0]


def test_via_chain_and_stability_on_a_line_of_polygons():
    """Polygons 600 m apart in a row, a Gold point at one end and a Copper point 2.5 km beyond the
    other: the chain, its longest link, and the thresholds over which the set stays the same."""
    lon, lat = -60.0, -20.0
    polys = [box_m(lon, lat, 1000.0 * k, 0.0, 400.0, 400.0) for k in range(4)]
    gold = shapely.Point(offset(lon, lat, -300.0, 200.0))
    copper = shapely.Point(offset(lon, lat, 3400.0 + 2500.0, 200.0))
    case = Case(_features(polys, [gold, copper], ["Gold", "Copper"]), h_limit=5000.0)
    check_all(case)
    t = case.res.polygons
    assert t.via_point_fid == [0, 0, 0, 0]
    assert t.via_links == [1, 2, 3, 4]
    assert np.allclose(t.via_max_link_m, [300.0, 600.0, 600.0, 600.0], rtol=1e-3)
    assert np.allclose(t.via_distance_m, [300.0, 1300.0, 2300.0, 3300.0], rtol=1e-3)
    # Gold alone from 1 km (the row joins) until the Copper point joins at 3 km
    assert list(t.threshold_m) == [1000.0] * 4
    assert list(t.stable_from_m) == [1000.0] * 4 and list(t.stable_to_m) == [2000.0] * 4


def test_concordance_names_non_integral_thresholds():
    pts = [shapely.Point(10.0, 10.0), shapely.Point(*destination(10.0, 10.0, 90.0, 1200.0))]
    res = cluster_mines(prepare_features(points=pts, point_ids=[4, 9], primary=["Gold", "Tin"]),
                        h_limit_m=2000.0, thresholds_m=[1000.0, 1500.5])
    c = res.concordance()
    assert [n for n, _ in c.fields] == ["layer", "feature_id", "part", "cluster_1000", "cluster_1500_5",
                                        "primary_1000", "primary_1500_5"]
    assert c.cluster_1000.tolist() == [1, 2] and c.cluster_1500_5.tolist() == [1, 1]
    assert c.primary_1000 == ["Gold", "Tin"] and c.primary_1500_5 == ["Gold,Tin", "Gold,Tin"]
    assert threshold_name(2.5e-7) == "2_5em07" and threshold_name(20000.0) == "20000"


def test_empty_and_single_results():
    f = prepare_features(points=[shapely.Point(1, 1)], point_ids=[3], primary=["Gold"])
    res = cluster_mines(f)
    assert len(res.links()) == 0 and len(link_lines(res, f)) == 0
    assert res.points.via_point_fid == [3] and res.points.via_links == [0]
    c = res.concordance()
    assert len(c) == 1 and c.primary_20000 == ["Gold"]
    res = cluster_mines(prepare_features())
    assert len(res.links()) == 0 and len(res.concordance()) == 0


def test_link_lines_cancel_and_wrong_features():
    rng = np.random.default_rng(5)
    polys, pts, primary = random_layout(rng, 25.0, 60.0, 30, 15, 6000.0)
    f = _features(polys, pts, primary)
    res = cluster_mines(f)
    with pytest.raises(Cancelled):
        link_lines(res, f, should_stop=lambda: True)
    with pytest.raises(ValueError):
        link_lines(res, _features(polys[1:], pts, primary))
    with pytest.raises(Cancelled):
        res.concordance(should_stop=lambda: True)


# ----------------------------------------------------------------------------- real data

def _real(polys, pts, prim, shift=0.0):
    """Real shapes, optionally turned about the polar axis by `shift` degrees (which keeps every
    distance on the sphere exactly)."""
    if shift:
        polys, pts = ([shapely.transform(g, lambda c: c + np.array([shift, 0.0])) for g in layer]
                      for layer in (polys, pts))
    return prepare_features(polys, range(len(polys)), None, pts, range(len(pts)), prim)


def _points(bbox):
    pts, prim = [], []
    g, p = read_geojson(shared_path("icmm-global-mining-dataset-2025", "mines.geojson"), bbox)
    pts += g
    prim += [q.get("primaryCommodity") for q in p]
    g, p = read_gpkg(shared_path("jasansky2022-facilities-prerelease", "facilities.gpkg"), "facilities", bbox)
    pts += [x for x in g if x is not None and not x.is_empty]
    prim += [q.get("primary_commodity") for x, q in zip(g, p) if x is not None and not x.is_empty]
    return pts, prim


@pytest.mark.skipif(not have_shared(), reason="the shared real data are not here")
@pytest.mark.parametrize("shift", [0.0, 329.17])
def test_real_alaska_at_high_latitudes_and_moved_across_the_antimeridian(shift):
    """Sepin et al. demo polygons and ICMM/Jasansky points round Fairbanks, Alaska (63-66° N); then
    the same turned 329.17° east about the pole axis, so that the district straddles ±180° and a
    link near 149.2° W crosses it."""
    bbox = (-150.0, 63.0, -145.0, 66.0)
    polys, _ = read_gpkg(shared_path("sepin2025-combined-polygons-demo", "commit-633645897-1000polygons",
                                     "mining_polygons_combined_demo.gpkg"), "mining_polygons_combined_demo", bbox)
    pts, prim = _points(bbox)     # the Fort Knox gold, Usibelli coal and a polymetallic mine
    assert len(polys) > 40 and len(pts) >= 3
    features = _real(polys, pts, prim, shift)
    case = Case(features, h_limit=20000.0)
    out = check_all(case)
    assert out["links"] > 20 and out["via"] > 5 and out["undecided"] <= 2
    if shift:
        lines = link_lines(case.res, features)
        assert any(len(g.geoms) == 2 for g in lines)


@pytest.mark.skipif(not have_shared(), reason="the shared real data are not here")
def test_real_india_polygons_and_points():
    """Maus v1 polygons and ICMM/Jasansky points of a coal district in eastern India."""
    bbox = (85.0, 21.0, 86.0, 22.0)
    polys, _ = read_geojson(shared_path("maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson"), bbox)
    pts, prim = _points(bbox)
    assert len(polys) > 30 and len(pts) > 5
    out = check_all(Case(_real(polys, pts, prim), h_limit=20000.0))
    assert out["links"] > 20 and out["via"] > 10 and out["undecided"] <= 2


def test_great_circle_lines_are_the_same_bits_on_every_thread():
    """The links' lines are drawn on worker threads: the same ends give the same vertices to the
    last bit whatever thread draws them (numpy's loops over strided columns did not)."""
    from concurrent.futures import ThreadPoolExecutor

    from mine_clusters.core.trace import great_circle_lines

    rng = np.random.default_rng(0)
    start = np.column_stack([rng.uniform(80, 90, 600), rng.uniform(20, 25, 600)])
    end = start + rng.uniform(-0.05, 0.05, (600, 2))
    first = shapely.to_wkb(great_circle_lines(start, end))
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: shapely.to_wkb(great_circle_lines(start, end)), range(200)))
    assert all(np.array_equal(run, first) for run in runs)
