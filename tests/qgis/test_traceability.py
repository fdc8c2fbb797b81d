"""Why a polygon got its commodity (issue 12), through the cluster algorithm on the real sample
data: the links layer, the polygons' via_* and stable_* fields and the concordance table, each
checked against the others and against plain-Python walks of what was written (the core's own
oracle tests are tests/core/test_trace.py)."""
import math
from collections import defaultdict, deque

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsCoordinateReferenceSystem,
    QgsGeometry,
    QgsVectorLayer,
)

from qgis_helpers import LogFeedback, memory_layer  # noqa: E402

ALG = "mineclusters:clusterlocaloptimum"
R = 6371008.8
TIE_M = 1e-6
THRESHOLDS = [1000 * k for k in range(1, 21)]


def run(params):
    from qgis import processing

    feedback = LogFeedback()
    return processing.run(ALG, params, feedback=feedback), feedback


def rows(path):
    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid(), path
    names = layer.fields().names()
    return layer, [(f, {n: (None if f[n] is None or (hasattr(f[n], "isNull") and f[n].isNull())
                            else f[n]) for n in names}) for f in layer.getFeatures()]


def haversine(a, b):
    (x1, y1), (x2, y2) = a, b
    p1, p2 = math.radians(y1), math.radians(y2)
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(x2 - x1) / 2) ** 2)
    return 2 * R * math.asin(min(1.0, math.sqrt(h)))


@pytest.fixture(scope="module")
def traced(provider, sample_polygons, sample_points, tmp_path_factory):
    d = tmp_path_factory.mktemp("traced")
    params = {"POLYGONS": sample_polygons, "POINTS": sample_points,
              "OUTPUT_POLYGONS": str(d / "polygons.gpkg"), "OUTPUT_POINTS": str(d / "points.gpkg"),
              "OUTPUT_LINKS": str(d / "links.gpkg"), "OUTPUT_CONCORDANCE": str(d / "conc.gpkg"),
              "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": ""}
    res, feedback = run(params)
    inputs = {}
    for kind, path, key in (("polygons", sample_polygons, "polygon_id"),
                            ("points", sample_points, "point_id")):
        layer = QgsVectorLayer(str(path), kind, "ogr")
        inputs[kind] = {f[key]: f for f in layer.getFeatures()}   # own id -> input feature
    members = defaultdict(set)      # cluster id -> nodes (layer, input fid, part)
    node_cluster, polygon_rows = {}, {}
    _l, prow = rows(d / "polygons.gpkg")
    for _f, r in prow:
        node = ("polygons", inputs["polygons"][r["polygon_id"]].id(), 0)
        members[r["cluster_id"]].add(node)
        node_cluster[node] = r["cluster_id"]
        polygon_rows[node] = r
    _l, trow = rows(d / "points.gpkg")
    point_rows = {}
    for _f, r in trow:
        node = ("points", inputs["points"][r["point_id"]].id(), 0)   # the sample's are single
        members[r["cluster_id"]].add(node)
        node_cluster[node] = r["cluster_id"]
        point_rows[node] = r
    return dict(res=res, feedback=feedback, dir=d, inputs=inputs, members=members,
                node_cluster=node_cluster, polygons=polygon_rows, points=point_rows)


def link_nodes(r):
    return (r["from_layer"], r["from_fid"], r["from_part"]), (r["to_layer"], r["to_fid"], r["to_part"])


def test_links_hold_each_cluster_together_and_only_it(traced):
    layer, links = rows(traced["dir"] / "links.gpkg")
    assert layer.crs().authid() == "EPSG:4326"
    assert [f.name() for f in layer.fields()][1:] == [
        "cluster_id", "from_layer", "from_fid", "from_part", "to_layer", "to_fid", "to_part",
        "distance_m", "threshold_m"]
    members = traced["members"]
    per = defaultdict(list)
    for _f, r in links:
        a, b = link_nodes(r)
        assert traced["node_cluster"][a] == traced["node_cluster"][b] == r["cluster_id"], r
        assert r["distance_m"] <= r["threshold_m"] + TIE_M
        per[r["cluster_id"]].append((a, b))
    assert len(links) == sum(len(m) - 1 for m in members.values()) > 100
    for cid, nodes in members.items():
        edges = per.get(cid, [])
        assert len(edges) == len(nodes) - 1, cid
        parent = {n: n for n in nodes}

        def find(n):
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for a, b in edges:
            parent[find(a)] = find(b)
        assert len({find(n) for n in nodes}) == 1, f"cluster {cid} is not connected by its links"
    # every link's threshold is its cluster's chosen threshold on the polygons
    for _f, r in links:
        a, _b = link_nodes(r)
        row = traced["polygons"].get(a) or traced["points"][a]
        assert r["threshold_m"] == row["threshold_m"]


def test_link_lines_join_the_two_features_along_the_great_circle(traced):
    _layer, links = rows(traced["dir"] / "links.gpkg")
    geoms = {(kind, f.id()): f.geometry() for kind, feats in traced["inputs"].items()
             for f in feats.values()}
    longest = 0.0
    for f, r in links:
        a, b = link_nodes(r)
        parts = f.geometry().asMultiPolyline()
        assert len(parts) == 1                                     # India: no ±180° here
        line = parts[0]
        start, end = QgsGeometry.fromPointXY(line[0]), QgsGeometry.fromPointXY(line[-1])
        assert geoms[a[:2]].distance(start) < 1e-6, (r, geoms[a[:2]].distance(start))  # ~0.1 m
        assert geoms[b[:2]].distance(end) < 1e-6, (r, geoms[b[:2]].distance(end))
        length = sum(haversine((p.x(), p.y()), (q.x(), q.y())) for p, q in zip(line, line[1:]))
        assert length == pytest.approx(r["distance_m"], rel=1e-4, abs=0.05), r
        assert all(haversine((p.x(), p.y()), (q.x(), q.y())) <= 1000.0 + 1e-6
                   for p, q in zip(line, line[1:]))
        longest = max(longest, r["distance_m"])
    assert longest > 1000.0   # some links are densified


def _tree(links):
    adj = defaultdict(list)
    for _f, r in links:
        a, b = link_nodes(r)
        adj[a].append((b, r["distance_m"]))
        adj[b].append((a, r["distance_m"]))
    return adj


def _walk(adj, start):
    """(sum of link lengths, links, longest link) from `start` to every node of its tree."""
    out = {start: (0.0, 0, 0.0)}
    todo = deque([start])
    while todo:
        n = todo.popleft()
        d, k, m = out[n]
        for nb, w in adj[n]:
            if nb not in out:
                out[nb] = (d + w, k + 1, max(m, w))
                todo.append(nb)
    return out


def test_via_fields_follow_the_written_links(traced):
    """The via point is the primary point nearest along the links (ties: fewest links, then the
    smallest fid), checked by walking the written links layer from every polygon."""
    _layer, links = rows(traced["dir"] / "links.gpkg")
    adj = _tree(links)
    primary_points = {n for n, r in traced["points"].items() if r["primary_commodities"]
                      and traced["inputs"]["points"][r["point_id"]]["primary_commodity"]}
    assigned = 0
    for node, r in traced["polygons"].items():
        if r["status"] == "unassigned":
            assert all(r[k] is None for k in ("via_point_fid", "via_distance_m", "via_links",
                                              "via_max_link_m")), r
            continue
        assigned += 1
        reach = _walk(adj, node)
        candidates = sorted((d, k, n[1], m) for n, (d, k, m) in reach.items()
                            if n in primary_points)
        d, k, fid, m = candidates[0]
        assert r["via_point_fid"] == fid, (node, candidates[:3], r)
        assert r["via_links"] == k and k >= 1
        assert r["via_max_link_m"] == pytest.approx(m, rel=1e-12, abs=1e-9)
        assert r["via_max_link_m"] <= r["threshold_m"] + TIE_M
        # the direct distance to the via point, measured by PROJ in an azimuthal equidistant
        # plane centred on the point (a chain through wide polygons can be shorter than it)
        point = traced["inputs"]["points"][traced["points"][("points", fid, 0)]["point_id"]]
        polygon = [f for f in traced["inputs"]["polygons"].values() if f.id() == node[1]][0]
        assert r["via_distance_m"] == pytest.approx(_aeqd_distance(point.geometry(),
                                                                   polygon.geometry()),
                                                    rel=1e-4, abs=0.01), (node, fid)
    assert assigned > 20


def _aeqd_distance(point, polygon):
    from qgis.core import QgsCoordinateTransform, QgsProject

    p = point.asPoint()
    plane = QgsCoordinateReferenceSystem.fromProj(
        f"+proj=aeqd +lat_0={p.y()} +lon_0={p.x()} +R={R} +units=m +no_defs")
    t = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), plane,
                               QgsProject.instance())
    a, b = QgsGeometry(point), QgsGeometry(polygon)
    a.transform(t)
    b.transform(t)
    return a.distance(b)


def test_stability_and_concordance_agree(traced):
    layer, conc = rows(traced["dir"] / "conc.gpkg")
    names = layer.fields().names()[1:]
    assert names == (["layer", "feature_id", "part"] + [f"cluster_{h}" for h in THRESHOLDS]
                     + [f"primary_{h}" for h in THRESHOLDS])
    by_node = {(r["layer"], r["feature_id"], r["part"]): r for _f, r in conc}
    assert set(by_node) == set(traced["node_cluster"])                # every feature, once
    # the final cluster of each feature is its cluster in the column of its threshold
    for cid, nodes in traced["members"].items():
        some = next(iter(nodes))
        row = traced["polygons"].get(some) or traced["points"][some]
        col = f"cluster_{int(row['threshold_m'])}"
        ids = {by_node[n][col] for n in nodes}
        assert len(ids) == 1, cid
        assert {n for n, r in by_node.items() if r[col] in ids} == nodes, cid
    # the cuts are nested: a cluster at h lies in one cluster at every larger h
    for h1, h2 in zip(THRESHOLDS, THRESHOLDS[1:]):
        up = defaultdict(set)
        for r in by_node.values():
            up[r[f"cluster_{h1}"]].add(r[f"cluster_{h2}"])
        assert all(len(v) == 1 for v in up.values()), h1
    # the primary set at the chosen h is the polygon's, and it stays so from stable_from_m to
    # stable_to_m and no further (read in the concordance's primary_<h> columns)
    for node, r in traced["polygons"].items():
        c = by_node[node]
        h = int(r["threshold_m"])
        assert c[f"primary_{h}"] == r["primary_commodities"]
        lo, hi = int(r["stable_from_m"]), int(r["stable_to_m"])
        assert lo <= h <= hi
        for t in THRESHOLDS:
            same = c[f"primary_{t}"] == r["primary_commodities"]
            assert same == (lo <= t <= hi), (node, t, lo, hi)


@pytest.fixture(scope="module")
def utm_run(provider, sample_polygons, sample_points, tmp_path_factory):
    from qgis import processing

    d = tmp_path_factory.mktemp("utm")
    moved = {}
    for name, path in (("POLYGONS", sample_polygons), ("POINTS", sample_points)):
        moved[name] = str(d / f"in_{name.lower()}.gpkg")
        processing.run("native:reprojectlayer", {
            "INPUT": str(path), "TARGET_CRS": QgsCoordinateReferenceSystem("EPSG:32645"),
            "OUTPUT": moved[name]})
    run({**moved, "OUTPUT_POLYGONS": str(d / "polygons.gpkg"), "OUTPUT_LINKS": str(d / "links.gpkg"),
         "OUTPUT_POINTS": "", "OUTPUT_CLUSTERS": "", "OUTPUT_SENSITIVITY": "", "OUTPUT_PLOT": "",
         "OUTPUT_HISTOGRAM": "", "OUTPUT_REPORT": ""})
    return d, moved


def test_links_are_written_in_the_polygons_crs(traced, utm_run):
    d, moved = utm_run
    layer, links = rows(d / "links.gpkg")
    assert layer.crs().authid() == "EPSG:32645"
    _l, lonlat = rows(traced["dir"] / "links.gpkg")
    key = lambda r: (*link_nodes(r), )  # noqa: E731
    a = {key(r): r["distance_m"] for _f, r in lonlat}
    b = {key(r): r["distance_m"] for _f, r in links}
    assert a.keys() == b.keys()
    assert all(b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-3) for k in a)
    feats = {}
    for kind, name in (("polygons", "POLYGONS"), ("points", "POINTS")):
        for f in QgsVectorLayer(moved[name], kind, "ogr").getFeatures():
            feats[(kind, f.id())] = f.geometry()
    for f, r in links:
        line = f.geometry().asMultiPolyline()[0]
        start, end = link_nodes(r)
        assert feats[start[:2]].distance(QgsGeometry.fromPointXY(line[0])) < 0.05   # metres
        assert feats[end[:2]].distance(QgsGeometry.fromPointXY(line[-1])) < 0.05


def test_a_link_across_the_antimeridian_is_cut_there(provider, tmp_path):
    west = "POLYGON((179.95 0, 179.99 0, 179.99 0.02, 179.95 0.02, 179.95 0))"
    east = "POLYGON((-179.99 0, -179.95 0, -179.95 0.02, -179.99 0.02, -179.99 0))"
    polys = memory_layer("Polygon", "EPSG:4326", [("name", "string")],
                         [(west, ["west"]), (east, ["east"])], name="dateline")
    pts = memory_layer("Point", "EPSG:4326", [("primary_commodity", "string")],
                       [("POINT(179.97 0.03)", ["Gold"])], name="mine")
    out = tmp_path / "links.gpkg"
    res, _fb = run({"POLYGONS": polys, "POINTS": pts, "OUTPUT_POLYGONS": str(tmp_path / "p.gpkg"),
                    "OUTPUT_LINKS": str(out), "OUTPUT_PLOT": "", "OUTPUT_HISTOGRAM": "",
                    "OUTPUT_REPORT": ""})
    _layer, links = rows(out)
    assert len(links) == 2                     # three features, one cluster
    across = [(f, r) for f, r in links if {r["from_layer"], r["to_layer"]} == {"polygons"}]
    (f, r), = across
    assert r["distance_m"] == pytest.approx(0.02 * math.pi / 180 * R, rel=1e-3)
    parts = f.geometry().asMultiPolyline()
    assert len(parts) == 2
    for part in parts:
        xs = [p.x() for p in part]
        assert max(xs) - min(xs) < 0.05 and all(-180 <= x <= 180 for x in xs)
    assert sorted(abs(p[-1].x()) if abs(p[-1].x()) == 180 else abs(p[0].x()) for p in parts) \
        == [180.0, 180.0]
    # the west polygon holds the point's commodity directly, the east one through it
    _l, polys_out = rows(tmp_path / "p.gpkg")
    by_name = {r["name"]: r for _f, r in polys_out}
    assert by_name["west"]["via_links"] == 1 and by_name["east"]["via_links"] == 2
    assert by_name["east"]["via_max_link_m"] == pytest.approx(r["distance_m"], rel=1e-12)
    assert by_name["west"]["via_point_fid"] == by_name["east"]["via_point_fid"]
    assert by_name["east"]["via_distance_m"] > by_name["west"]["via_distance_m"] > 1000.0


def test_links_open_thin_and_dark(traced):
    from mine_clusters.algorithms import styles

    layer = QgsVectorLayer(str(traced["dir"] / "links.gpkg"), "links", "ogr")
    styles.style_layer(layer, "links")
    symbol = layer.renderer().symbol()
    assert symbol.color().name() == "#202020" and symbol.width() <= 0.3
    stored = QgsVectorLayer(str(traced["dir"] / "links.gpkg"), "links", "ogr")  # default style
    assert stored.renderer().type() == "singleSymbol"
    assert stored.renderer().symbol().color().name() == "#202020"
