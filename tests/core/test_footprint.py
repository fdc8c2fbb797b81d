"""Footprint summary: hand-checked small cases and reconciliation on real data."""
import json
import math
import os

import numpy as np
import pytest
import shapely

from mine_clusters.core import footprint as fp
from mine_clusters.core.errors import Cancelled, InputError

DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
R = 6371008.8


def box(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1)


def polys(geoms, primary, cluster_ids=None, area=None, sources=None, status=None):
    n = len(geoms)
    return fp.mine_polygons(geoms, list(range(1, n + 1)),
                            cluster_ids if cluster_ids is not None else list(range(1, n + 1)),
                            primary, status=status, area_m2=area, sources=sources)


def by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# ------------------------------------------------------------------ commodity split

def test_area_split_equally_among_primaries_and_unknown():
    p = polys([box(0, 0, .01, .01)] * 3, ["Coal", "Gold,Copper", None],
              cluster_ids=[1, 2, 3], area=[3e6, 2e6, 1e6])
    rows = by(fp.commodity_table(p), "commodity")
    # hand: Coal 3 km², Gold 1, Copper 1 (2 km² split in two), Unknown 1; total 6
    assert rows["Coal"]["area_km2"] == pytest.approx(3.0)
    assert rows["Gold"]["area_km2"] == pytest.approx(1.0)
    assert rows["Copper"]["area_km2"] == pytest.approx(1.0)
    assert rows["Unknown"]["area_km2"] == pytest.approx(1.0)
    assert rows["Coal"]["area_pct"] == pytest.approx(50.0)
    assert sum(r["area_km2"] for r in rows.values()) == pytest.approx(6.0)
    # order: by area, Unknown last
    assert [r["commodity"] for r in fp.commodity_table(p)][0] == "Coal"
    assert [r["commodity"] for r in fp.commodity_table(p)][-1] == "Unknown"


def test_status_derived_and_checked():
    p = polys([box(0, 0, .01, .01)] * 3, ["Coal", "Gold,Copper", "NA"])
    assert p.status == ["assigned", "multiple", "unassigned"]
    with pytest.raises(InputError, match="Feature 1 .*'status'"):
        polys([box(0, 0, .01, .01)], ["Coal"], status=["bogus"])
    with pytest.raises(InputError, match="Feature 1 .*unassigned"):
        polys([box(0, 0, .01, .01)], ["Coal"], status=["unassigned"])
    with pytest.raises(InputError, match="cluster_id"):
        polys([box(0, 0, .01, .01)], ["Coal"], cluster_ids=[None])


def test_missing_area_is_spherical_area():
    # a 0.1 x 0.1 degree box at the equator: R² Δλ (sin φ1 − sin φ0)
    g = box(10, 0, 10.1, 0.1)
    exact = R * R * math.radians(0.1) * math.sin(math.radians(0.1))
    p = polys([g], ["Coal"], area=[None])
    assert p.area_m2[0] == pytest.approx(exact, rel=1e-4)


# ------------------------------------------------------------------ regions

def two_countries():
    return fp.regions([box(0, 0, 1, 1), box(1, 0, 2, 1)], ["West", "East"])


def test_region_split_by_intersection_no_double_counting():
    # one polygon astride the border at lon 1 (3/4 west, 1/4 east), one outside both
    p = polys([box(0.97, 0.5, 1.01, 0.51), box(5, 5, 5.01, 5.01)], ["Coal", "Gold"],
              area=[4e6, 1e6])
    rows = by(fp.region_table(p, two_countries()), "region", "commodity")
    assert rows[("West", "Coal")]["area_km2"] == pytest.approx(3.0, rel=1e-4)
    assert rows[("East", "Coal")]["area_km2"] == pytest.approx(1.0, rel=1e-4)
    assert rows[("Outside", "Gold")]["area_km2"] == pytest.approx(1.0)
    assert sum(r["area_km2"] for r in rows.values()) == pytest.approx(5.0)
    assert [r["region"] for r in fp.region_table(p, two_countries())][-1] == "Outside"


def test_region_centroid_rule():
    # centroid (0.99) is in West: all to West; the far polygon goes to the nearest region (East)
    p = polys([box(0.97, 0.5, 1.01, 0.51), box(2.5, 0.5, 2.51, 0.51)], ["Coal", "Gold"],
              area=[4e6, 1e6])
    rows = by(fp.region_table(p, two_countries(), allocation="centroid"), "region", "commodity")
    assert rows[("West", "Coal")]["area_km2"] == pytest.approx(4.0)
    assert rows[("East", "Gold")]["area_km2"] == pytest.approx(1.0)
    assert ("Outside", "Gold") not in rows


def test_centroid_nearest_is_measured_on_the_earth():
    # at 80°N a degree of longitude is ~5.8 times shorter than a degree of latitude:
    # the region 1° east is nearer on the Earth than the one 0.5° north
    regs = fp.regions([box(11, 70, 12, 80.2), box(9, 80.5, 11, 81)], ["East", "North"])
    p = polys([box(9.99, 79.99, 10.01, 80.01)], ["Coal"], area=[1e6])
    rows = by(fp.region_table(p, regs, allocation="centroid"), "region")
    assert set(rows) == {"East"}


def test_region_without_name_and_bad_allocation():
    regs = fp.regions([box(0, 0, 1, 1)], [None])
    p = polys([box(0.1, 0.1, 0.2, 0.2)], ["Coal"], area=[1e6])
    assert fp.region_table(p, regs)[0]["region"] == fp.NO_NAME
    with pytest.raises(InputError, match="allocation"):
        fp.region_table(p, regs, allocation="nope")


# ------------------------------------------------------------------ tables 2 and 3

def test_table2_hand_case():
    # clusters: 1 (Coal; 2 polygons, 2 points), 2 (unassigned; 1 polygon), 3 (Gold,Copper; 1
    # polygon, 1 point), and two clusters of points only: 9 (Gold, 1 point) and 8 (no commodity,
    # 1 point); a point without a cluster id is in no cluster
    p = polys([box(0, 0, .01, .01)] * 4, ["Coal", "Coal", None, "Copper,Gold"],
              cluster_ids=[1, 1, 2, 3], area=[2e6, 4e6, 1e6, 3e6])
    pids = [1, 1, 3, 9, 8, None]
    pprim = ["Coal", "Coal", "Copper,Gold", "Gold", None, None]
    rows = by(fp.table2(p, point_cluster_ids=pids, point_primary=pprim), "status")
    a, u, t = rows["Assigned"], rows["Unassigned"], rows["Total"]
    # hand: assigned clusters {1, 3, 9}, unassigned {2, 8}: every cluster, points-only included
    assert (a["n_clusters"], a["n_polygons"], a["n_points"]) == (3, 3, 4)
    assert (u["n_clusters"], u["n_polygons"], u["n_points"]) == (2, 1, 1)
    assert (t["n_clusters"], t["n_polygons"], t["n_points"]) == (5, 4, 5)
    assert a["area_km2"] == pytest.approx(9.0) and u["area_km2"] == pytest.approx(1.0)
    assert a["area_pct"] == pytest.approx(90.0)
    assert a["clusters_pct"] == pytest.approx(60.0) and a["points_pct"] == pytest.approx(80.0)
    # averages over all the row's clusters (a points-only cluster has 0 km² and 0 polygons)
    assert a["cluster_area_km2"] == pytest.approx(9.0 / 3)
    assert a["polygons_per_cluster"] == pytest.approx(3 / 3)
    assert a["points_per_cluster"] == pytest.approx(4 / 3)
    assert a["polygon_area_km2"] == pytest.approx(9.0 / 3)
    assert u["cluster_area_km2"] == pytest.approx(1.0 / 2)
    assert u["polygons_per_cluster"] == pytest.approx(1 / 2)
    assert u["points_per_cluster"] == pytest.approx(1 / 2)
    assert t["area_km2"] == pytest.approx(10.0)
    # without points: the clusters holding polygons, the point columns empty
    rows = by(fp.table2(p), "status")
    assert (rows["Assigned"]["n_clusters"], rows["Total"]["n_clusters"]) == (2, 3)
    assert rows["Assigned"]["n_points"] is None
    # points of a points-only cluster need their commodities to say whether it is assigned
    with pytest.raises(InputError, match="Cluster 9 has points but no polygon"):
        fp.table2(p, point_cluster_ids=[1, 9])
    # points of polygon clusters alone need no commodities
    assert by(fp.table2(p, point_cluster_ids=[1, 3]), "status")["Total"]["n_points"] == 2
    # polygons and points of different runs are refused
    with pytest.raises(InputError, match="Cluster 2 is unassigned in the clustered polygons "
                                         "but assigned in the clustered points"):
        fp.table2(p, point_cluster_ids=[2], point_primary=["Coal"])


def test_table2_counts_every_cluster_of_the_real_sample():
    """The bundled sample clustered by the engine: Table 2 counts the distinct cluster ids of
    the polygons and of the points, and every point (counted here from the cluster output)."""
    from realdata import read_gpkg

    from mine_clusters.core import cluster_mines, prepare_features

    sample = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "sample")
    pg, pp = read_gpkg(os.path.join(sample, "mine_polygons.gpkg"), "mine_polygons")
    qg, qp = read_gpkg(os.path.join(sample, "mine_points.gpkg"), "mine_points")
    res = cluster_mines(prepare_features(
        polygons=pg, polygon_ids=[r["fid"] for r in pp], polygon_areas=[r["area_m2"] for r in pp],
        points=qg, point_ids=[r["fid"] for r in qp], primary=[r["primary_commodity"] for r in qp],
        commodities=[r["commodities"] for r in qp]))
    t, q = res.polygons, res.points
    # independent count: distinct cluster ids over polygons ∪ points, assigned when the
    # cluster's primary commodity list is not empty
    prim = {int(c): x for c, x in zip(t.cluster_id, t.primary_commodities)}
    prim.update({int(c): x for c, x in zip(q.cluster_id, q.primary_commodities)})
    every = set(prim)
    assigned = {c for c, x in prim.items() if x}
    points_only = every - {int(c) for c in t.cluster_id}
    assert points_only                      # the sample has clusters of points only
    p = fp.mine_polygons([pg[i] for i in t.index], t.feature_id, t.cluster_id,
                         t.primary_commodities, status=t.status, area_m2=t.area_m2)
    rows = by(fp.table2(p, q.cluster_id, q.primary_commodities), "status")
    assert rows["Total"]["n_clusters"] == len(every)
    assert rows["Assigned"]["n_clusters"] == len(assigned)
    assert rows["Unassigned"]["n_clusters"] == len(every - assigned)
    assert rows["Total"]["n_points"] == len(q.cluster_id)
    assert rows["Assigned"]["n_points"] == sum(1 for c in q.cluster_id if int(c) in assigned)
    assert rows["Total"]["n_polygons"] == len(pp)
    assert rows["Total"]["area_km2"] * 1e6 == pytest.approx(sum(r["area_m2"] for r in pp),
                                                            rel=1e-9)


def test_table2_rejects_mixed_cluster_status():
    p = polys([box(0, 0, .01, .01)] * 2, ["Coal", None], cluster_ids=[1, 1], area=[1, 1])
    with pytest.raises(InputError, match="Cluster 1 .*both assigned and unassigned"):
        fp.table2(p)


def test_table3_status_by_source():
    p = polys([box(0, 0, .01, .01)] * 4, ["Coal", "Coal", None, "Gold"],
              area=[2e6, 4e6, 1e6, 3e6], sources=["Maus/Tang", "Maus", "OSM", "Maus"])
    rows = fp.table3(p)
    assert [(r["status"], r["sources"]) for r in rows] == [
        ("Assigned", "Maus"), ("Assigned", "Maus/Tang"), ("Unassigned", "OSM")]
    assert rows[0]["area_km2"] == pytest.approx(7.0) and rows[0]["n_polygons"] == 2
    assert rows[0]["polygon_area_km2"] == pytest.approx(3.5)
    assert sum(r["area_pct"] for r in rows) == pytest.approx(100.0)
    assert fp.table3(polys([box(0, 0, 1, 1)], ["Coal"], area=[1])) == []


# ------------------------------------------------------------------ grid

@pytest.mark.parametrize("size", [1000.0, 50000.0, 250000.0, 2000000.0])
def test_grid_cells_cover_the_sphere_with_equal_areas(size):
    g = fp.EqualAreaGrid(size)
    areas = np.array([g.cell_area_m2(r) for r in range(g.n_rows)])
    total = float((areas * g.counts).sum())
    assert total == pytest.approx(4 * math.pi * R * R, rel=1e-12)
    # every band but the two polar ones holds cells of exactly size²
    assert np.allclose(areas[1:-1], size * size, rtol=1e-9)
    assert g.lat_edges[0] == -90.0 and g.lat_edges[-1] == 90.0
    assert np.all(np.diff(g.lat_edges) > 0)


def test_grid_cells_are_nearly_square_on_the_ground():
    g = fp.EqualAreaGrid(50000.0)
    for lat in (0.0, 45.0, 70.0):
        r = int(g.row_of_lat(lat))
        x0, y0, x1, y1 = g.cell_bounds(r, 0)
        height = R * math.radians(y1 - y0)
        width = R * math.radians(x1 - x0) * math.cos(math.radians((y0 + y1) / 2))
        assert height == pytest.approx(50000.0, rel=0.02)
        assert width == pytest.approx(50000.0, rel=0.02)


def test_grid_splits_polygons_and_picks_dominant():
    g = fp.EqualAreaGrid(50000.0)
    r = int(g.row_of_lat(10.0))
    x0, y0, x1, y1 = g.cell_bounds(r, 400)
    ym = (y0 + y1) / 2
    # polygon A (Coal) straddles the east edge of the cell, half in each; B (Gold) inside
    a = box(x1 - 0.01, ym, x1 + 0.01, ym + 0.01)
    b = box(x0 + 0.01, ym, x0 + 0.02, ym + 0.01)
    p = polys([a, b], ["Coal", "Gold"], area=[4e6, 3e6])
    gt = fp.grid_table(p, 50000.0)
    rows = {row["col"]: row for row in gt.rows}
    assert set(rows) == {400, 401}
    assert rows[400]["km2_Coal"] == pytest.approx(2.0, rel=1e-3)
    assert rows[400]["km2_Gold"] == pytest.approx(3.0)
    assert rows[400]["dominant"] == "Gold"
    assert rows[401]["dominant"] == "Coal" and rows[401]["mine_area_km2"] == pytest.approx(2.0, rel=1e-3)
    assert sum(row["mine_area_km2"] for row in gt.rows) == pytest.approx(7.0)
    assert [n for n, _ in gt.fields][:len(fp.GRID_BASE_FIELDS)] == [n for n, _ in fp.GRID_BASE_FIELDS]
    geoms = gt.geometries()
    assert shapely.contains(geoms[0], shapely.centroid(b))
    # made at once, the same polygons as cell by cell
    assert all(shapely.equals_exact(g, gt.grid.cell_geometry(r, c), 0)
               for g, (r, c) in zip(geoms, gt.cells))


def test_grid_field_names_are_safe_and_unique():
    names = [n for n, _ in fp.grid_fields(["Rare earths", "Rare-earths", "PGM (platinum)"])]
    assert names[-3:] == ["km2_Rare_earths", "km2_Rare_earths_2", "km2_PGM_platinum"]


def test_grid_size_limits():
    with pytest.raises(InputError, match="at least 1000 m"):
        fp.EqualAreaGrid(10.0)


# ------------------------------------------------------------------ summarise

def test_summarise_empty_and_cancel():
    with pytest.raises(InputError, match="no polygon"):
        fp.summarise(polys([], []))
    p = polys([box(0, 0, .01, .01)], ["Coal"], area=[1e6])
    with pytest.raises(Cancelled):
        fp.summarise(p, should_stop=lambda: True)


def test_summarise_is_deterministic_and_reports_progress():
    rng = np.random.default_rng(1)
    xs, ys = rng.uniform(0, 2, 50), rng.uniform(0, 1, 50)
    geoms = [box(x, y, x + 0.05, y + 0.05) for x, y in zip(xs, ys)]
    prim = [["Coal", "Gold", None, "Coal,Gold"][i % 4] for i in range(50)]
    seen = []
    a = fp.summarise(polys(geoms, prim), countries=two_countries(), progress=seen.append)
    b = fp.summarise(polys(geoms, prim), countries=two_countries())
    assert a.country_rows == b.country_rows and a.grid.rows == b.grid.rows
    assert seen[-1] == 1.0 and all(0 <= s <= 1 for s in seen)


# ------------------------------------------------------------------ real data

def _topojson_countries(path):
    """Minimal TopoJSON reader (quantised arcs, Polygon/MultiPolygon) for the Natural Earth file."""
    topo = json.load(open(path))
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=float), axis=0)
        arcs.append(np.column_stack([q[:, 0] * sx + tx, q[:, 1] * sy + ty]))

    def ring(ids):
        pts = []
        for k in ids:
            a = arcs[k] if k >= 0 else arcs[~k][::-1]
            pts.extend(a[1:] if pts else a)
        return pts

    geoms, names = [], []
    for o in topo["objects"]["countries"]["geometries"]:
        if o["type"] == "Polygon":
            parts = [o["arcs"]]
        elif o["type"] == "MultiPolygon":
            parts = o["arcs"]
        else:
            continue
        ps = []
        for p in parts:
            rings = [r for r in (ring(ids) for ids in p) if len(r) >= 4]
            if rings and len(p) and len(ring(p[0])) >= 4:
                ps.append(shapely.Polygon(rings[0], rings[1:]))
        if not ps:
            continue
        geoms.append(shapely.make_valid(shapely.MultiPolygon(ps)))
        names.append(o.get("properties", {}).get("name"))
    return geoms, names


def _india_polygons():
    path = os.path.join(DATA, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    feats = json.load(open(path))["features"]
    geoms = [shapely.from_geojson(json.dumps(f["geometry"])) for f in feats]
    return feats, geoms


@pytest.fixture(scope="module")
def countries_10m():
    path = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    return fp.regions(*_topojson_countries(path))


def test_real_india_polygons_reconcile_with_countries(countries_10m):
    feats, geoms = _india_polygons()
    # commodity by a stand-in rule (real clusters are tested end to end): grId parity
    prim = ["Coal" if f["properties"]["grId"] % 3 == 0 else
            ("Iron,Coal" if f["properties"]["grId"] % 3 == 1 else None) for f in feats]
    area = [f["properties"]["AREA"] * 1e6 for f in feats]
    p = fp.mine_polygons(geoms, [f["properties"]["fid"] for f in feats],
                         [f["properties"]["grId"] for f in feats], prim, area_m2=area)
    total = sum(area)
    for allocation in fp.ALLOCATIONS:
        s = fp.summarise(p, countries=countries_10m, allocation=allocation)
        for rows in (s.commodity_rows, s.country_rows, s.grid.rows):
            key = "mine_area_km2" if rows is s.grid.rows else "area_km2"
            assert sum(r[key] for r in rows) * 1e6 == pytest.approx(total, rel=1e-9)
        assert sum(r["area_pct"] for r in s.country_rows) == pytest.approx(100.0)
        india = sum(r["area_km2"] for r in s.country_rows if r["region"] == "India")
        # the published AREA sums to 1,884.96 km² (SOURCE.md); nearly all of it lies in India
        assert india > 0.99 * 1884.96
        t2 = {r["status"]: r for r in s.table2_rows}
        assert t2["Assigned"]["n_polygons"] + t2["Unassigned"]["n_polygons"] == len(feats)
        assert t2["Total"]["n_clusters"] == len({f["properties"]["grId"] for f in feats})
        # the AREA field is geodesic: the spherical areas agree within 0.5 %
    sph = fp.mine_polygons(geoms, range(len(geoms)), range(len(geoms)), prim).area_m2
    assert sph.sum() == pytest.approx(total, rel=5e-3)


def test_real_biomes_reconcile():
    geoms, names = _biomes()
    biomes = fp.regions(geoms, names)
    feats, pgeoms = _india_polygons()
    area = [f["properties"]["AREA"] * 1e6 for f in feats]
    p = fp.mine_polygons(pgeoms, range(len(feats)), range(len(feats)), ["Coal"] * len(feats),
                         area_m2=area)
    rows = fp.region_table(p, biomes)
    assert sum(r["area_km2"] for r in rows) * 1e6 == pytest.approx(sum(area), rel=1e-9)
    regions = {r["region"] for r in rows}
    assert "Tropical & Subtropical Dry Broadleaf Forests" in regions
    assert regions <= set(names) | {fp.OUTSIDE}


def _biomes():
    osgeo = pytest.importorskip("osgeo.ogr")
    path = os.path.join(DATA, "resolve-ecoregions2017-simplified", "biomes.shp")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    ds = osgeo.Open(path)
    geoms, names = [], []
    for f in ds.GetLayer(0):
        geoms.append(shapely.from_wkb(bytes(f.GetGeometryRef().ExportToWkb())))
        names.append(f.GetField("BIOME_NAME"))
    return geoms, names


def test_no_spurious_outside_on_the_real_sample(countries_10m):
    """The bundled sample with the 10m countries and the biomes: every polygon lies inside them
    (checked here in lon/lat with shapely), so no 'Outside' row, and the tables still add up
    to the total area. A clipped polygon's spherical pieces used to miss ~1e-7 of it: an
    'Outside, Coal, 3.4e-08 km²' row."""
    from realdata import read_gpkg

    sample = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "sample")
    pg, pp = read_gpkg(os.path.join(sample, "mine_polygons.gpkg"), "mine_polygons")
    path = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
    cg, cn = _topojson_countries(path)
    bg, bn = _biomes()
    area = [r["area_m2"] for r in pp]
    p = fp.mine_polygons(pg, range(len(pg)), range(len(pg)), ["Coal"] * len(pg), area_m2=area)
    for geoms, regs in ((cg, countries_10m), (bg, fp.regions(bg, bn))):
        cover = shapely.union_all([shapely.make_valid(g) for g in geoms
                                   if shapely.intersects(g, shapely.box(84, 20, 88, 25))])
        assert all(shapely.difference(g, cover).area == 0 for g in pg)
        rows = fp.region_table(p, regs)
        assert fp.OUTSIDE not in {r["region"] for r in rows}
        assert sum(r["area_km2"] for r in rows) * 1e6 == pytest.approx(sum(area), rel=1e-12)


def test_outside_is_kept_for_a_polygon_really_outside(countries_10m):
    """A polygon at sea (Bay of Bengal) is all 'Outside'; one across the coast of West Bengal
    has its sea part 'Outside' (about half, measured here on the difference with India)."""
    from mine_clusters.core.geodesy import geodesic_area_m2

    path = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
    cg, cn = _topojson_countries(path)
    india = cg[cn.index("India")]
    sea, coast = box(88.5, 17.0, 88.52, 17.02), box(87.5, 21.6, 87.55, 21.65)
    assert not shapely.intersects(sea, india)
    wet = geodesic_area_m2([shapely.difference(coast, india)])[0] / geodesic_area_m2([coast])[0]
    assert 0.3 < wet < 0.7
    p = polys([sea, coast], ["Coal", "Gold"], area=[2e6, 3e6])
    rows = by(fp.region_table(p, countries_10m), "region", "commodity")
    assert rows[(fp.OUTSIDE, "Coal")]["area_km2"] == pytest.approx(2.0, rel=1e-12)
    assert rows[(fp.OUTSIDE, "Gold")]["area_km2"] == pytest.approx(3.0 * wet, rel=1e-5)
    assert rows[("India", "Gold")]["area_km2"] == pytest.approx(3.0 * (1 - wet), rel=1e-5)
    assert sum(r["area_km2"] for r in rows.values()) == pytest.approx(5.0, rel=1e-12)
    biomes = by(fp.region_table(p, fp.regions(*_biomes())), "region", "commodity")
    assert biomes[(fp.OUTSIDE, "Coal")]["area_km2"] == pytest.approx(2.0, rel=1e-12)


# ------------------------------------------------------------------ plots and report

def test_plots_and_report_are_written(tmp_path):
    from mine_clusters.core import footprint_plots as fplots
    from mine_clusters.core import report

    p = polys([box(0.1, 0.1, 0.2, 0.2), box(1.1, 0.1, 1.2, 0.2), box(5, 5, 5.1, 5.1)],
              ["Coal", "Gold,Copper", None], area=[3e6, 2e6, 1e6],
              sources=["Maus", "Maus/<OSM>", None])
    s = fp.summarise(p, countries=two_countries(), biomes=two_countries())
    png = fplots.commodity_plot(s.commodity_rows, str(tmp_path / "c.png"))
    svg = fplots.regions_plot(s.country_rows, s.commodity_rows, str(tmp_path / "r.svg"),
                              "Countries", top_n=1)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    gmap = fplots.grid_plot(s.grid, str(tmp_path / "g.svg"))
    assert "Unknown" in open(gmap, encoding="utf-8").read()
    text = open(svg, encoding="utf-8").read()
    assert "<svg" in text and "Rest of the world" in text and "Outside" in text
    html = report.footprint_report(s, str(tmp_path / "r.html"), images=[(png, "By commodity")],
                                   csv_dir=str(tmp_path))
    page = open(html, encoding="utf-8").read()
    assert "data:image/png;base64," in page
    assert "Maus/&lt;OSM&gt;" in page and "<OSM>" not in page        # escaped
    assert "Table 2" in page and "Table 3" in page and "Unknown" in page
    import csv
    rows = list(csv.DictReader(open(tmp_path / "commodity.csv", encoding="utf-8")))
    assert [r["commodity"] for r in rows] == ["Coal", "Copper", "Gold", "Unknown"]
    assert sum(float(r["area_km2"]) for r in rows) == pytest.approx(6.0)
    assert (tmp_path / "grid.csv").exists() and (tmp_path / "country.csv").exists()


def test_colours_are_stable():
    from mine_clusters.core import footprint_plots as fplots

    assert fplots.colour_for("Coal") == "#7f5a2b"
    assert fplots.colour_for("Unobtainium") == fplots.colour_for("Unobtainium")
    assert fplots.colour_for(fp.UNKNOWN) == fplots.UNKNOWN_COLOUR


def test_region_pieces_keep_the_area_of_real_countries(countries_10m):
    """Countries are cut into small pieces; per name the pieces tile the country exactly
    (compared in lon/lat, where the cuts are straight lines)."""
    path = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
    geoms, names = _topojson_countries(path)
    assert len(countries_10m) > len(geoms)              # big countries were cut
    assert max(shapely.get_num_coordinates(countries_10m.geoms)) <= fp.MAX_PIECE_VERTICES
    assert shapely.is_valid(countries_10m.geoms).all()
    for name in ("India", "Chile", "Kazakhstan"):
        whole = shapely.area(geoms[names.index(name)])
        pieces = [g for g, n in zip(countries_10m.geoms, countries_10m.names) if n == name]
        assert shapely.area(pieces).sum() == pytest.approx(whole, rel=1e-9)


def test_invalid_region_is_repaired():
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    regs = fp.regions([bowtie], ["Bow"])
    assert shapely.is_valid(regs.geoms).all()
    assert sum(shapely.area(regs.geoms)) == pytest.approx(0.5)
    p = polys([box(0.9, 0.45, 0.95, 0.55)], ["Coal"], area=[1e6])
    rows = by(fp.region_table(p, regs), "region")
    assert rows["Bow"]["area_km2"] == pytest.approx(1.0, rel=1e-6)


def test_centroid_rule_for_a_polygon_split_at_the_antimeridian():
    # a mine split at ±180° belongs to the island on the antimeridian, not to the one at 0°
    regs = fp.regions([box(179.0, -17.5, 180.0, -16.5), box(-0.5, -17.5, 0.5, -16.5)],
                      ["Antimeridian isle", "Null isle"])
    split = shapely.MultiPolygon([box(179.99, -17.01, 180.0, -17.0), box(-180.0, -17.01, -179.99, -17.0)])
    p = polys([split], ["Gold"], area=[1e6])
    rows = by(fp.region_table(p, regs, allocation="centroid"), "region")
    assert set(rows) == {"Antimeridian isle"}


# ------------------------------------------------------------------ odd coordinates

def test_nan_vertex_is_refused_in_one_sentence_naming_the_feature():
    nan = shapely.from_wkt("POLYGON ((9.3 47, NaN 47, 9.31 47.01, 9.3 47))")
    with pytest.raises(InputError, match=r"^Feature 2 of the clustered polygons has a coordinate "
                                         r"that is not a number \(nan, 47\.0\)") as exc:
        polys([box(9, 47, 9.01, 47.01), nan], ["Gold", "Coal"])
    assert str(exc.value).count(". ") == 0


def test_infinite_vertex_is_refused_in_one_sentence_naming_the_feature():
    # what a UTM easting of 1e30 becomes in longitude/latitude
    far = shapely.Polygon([(math.inf, math.inf), (math.inf, 47.0), (9.0, 47.0)])
    with pytest.raises(InputError, match=r"^Feature 2 of the clustered polygons has the infinite "
                                         r"coordinate \(inf, inf\).*CRS") as exc:
        polys([box(9, 47, 9.01, 47.01), far], ["Gold", "Coal"])
    assert str(exc.value).count(". ") == 0


def test_pole_vertex_at_any_longitude_is_no_antimeridian_crossing():
    # a pole reprojected from EPSG:3035 comes back at longitude -170: the rings below jump by
    # 180.1° to or from it, yet they are the caps between the pole and two vertices at ±89.99°
    # 0.1° apart; on the sphere each is R² Δλ (1 − sin 89.99°)
    north = shapely.from_wkt("POLYGON ((0 89.99, 0.1 89.99, -170 90, -170 90, 0 89.99))")
    south = shapely.from_wkt("POLYGON ((-170 -90, -170 -90, 10.1 -89.99, 10 -89.99, -170 -90))")
    cap = R * R * math.radians(0.1) * (1.0 - math.sin(math.radians(89.99)))
    p = polys([north, south], ["Gold", "Coal"])
    assert p.area_m2 == pytest.approx([cap, cap], rel=1e-4)
    # the southern ring (a jump of 180.1°) is drawn on one side of ±180°, not cut into a band
    # round the globe; the northern one (jumps under 180°) is kept as drawn
    x0, _, x1, _ = shapely.bounds(p.geoms[1])
    assert (x0, x1) == pytest.approx((10.0, 10.1))
    assert sum(r["area_km2"] for r in fp.commodity_table(p)) * 1e6 == pytest.approx(2 * cap,
                                                                                   rel=1e-4)


def test_case_variants_of_different_polygons_are_one_commodity():
    # METHOD.md: names are compared trimmed and case-folded, so Gold, " gold " and GOLD are one
    # commodity of 3 km² (one row), shown in one spelling; Coal,gold splits 2 km² in two
    p = polys([box(0, 0, .01, .01)] * 5, ["Gold", " gold ", "GOLD", "Coal", "Coal,gold"],
              area=[1e6, 1e6, 1e6, 1e6, 2e6])
    rows = fp.commodity_table(p)
    assert len(rows) == 2
    gold = next(r for r in rows if r["commodity"].casefold() == "gold")
    assert gold["commodity"] in ("Gold", "gold", "GOLD")
    assert gold["area_km2"] == pytest.approx(4.0)
    assert gold["n_polygons"] == 4
    assert {r["commodity"] for r in rows} == {gold["commodity"], "Coal"}
    assert {c for names in p.primary for c in names} == {gold["commodity"], "Coal"}
    grid = fp.grid_table(p, 50000.0)
    assert grid.commodities == [gold["commodity"], "Coal"]
